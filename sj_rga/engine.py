"""The evaluation engine: the one batch loop under :func:`sj_rga.evaluate`, :func:`sj_rga.shuffle_test`,
``sj-rga evaluate``, ``attack`` and ``shuffle``, and the benchmarks that evaluate.

:func:`run` cuts the data into global batches (:mod:`sj_rga.batching`, as one process cuts it), skips those a
run folder already holds (:mod:`sj_rga.runs`), deals the others in rounds over the ranks of a torch.distributed
job (:func:`sj_rga.distributed.run_in_rounds`) and calls ``work(batch)`` for each inside
:func:`sj_rga.seeding.sample_indices` ``(batch.indices)``: every random draw (random starts, Poisson spikes,
the shuffle test's permutations) comes from the stream of the sample it is for, seeded with (seed, data-set
index, part). So the per-sample results do not depend on the batch size, the number of ranks, or on how
often the run was stopped and resumed (method §3, "Seeding and batching"; the exceptions are listed there).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

from . import distributed
from .batching import Batch, Data, batches, check_batch_size
from .progress import progress_bar
from .runs import RunFolder
from .seeding import sample_indices

Record = dict[str, Any]


def count_batches(data: Data, batch_size: int) -> tuple[Data, int]:
    """``(data, number of global batches)``; an iterable of unknown length is read into a list first."""
    _, total = batches(data, batch_size)
    if total is None:
        data = list(data)
        total = len(data)
    return data, total


def run(data: Data, work: Callable[[Batch], Record], batch_size: int = 256, folder: Optional[RunFolder] = None,
        progress: Optional[bool] = None, description: str = "batches",
        log: Optional[Callable[[str], None]] = None) -> list[Record]:
    """``work(batch)`` for every global batch of ``data``; the records (plain, picklable dicts) in batch order,
    each with the batch's data-set ``indices`` first, on every rank.

    ``folder`` (read and written by rank 0 alone): its finished batches are read instead of rerun, ``log``
    (e.g. a line on stderr) gets ``"resuming: k of n batches done"``, and each new record is saved as soon as
    its round is gathered. ``progress``: :func:`sj_rga.progress.progress_bar` on rank 0 (None: when there are
    more than 4 batches).
    """
    check_batch_size(batch_size)
    world = distributed.world()
    data, total = count_batches(data, batch_size)
    records: dict[int, Record] = distributed.broadcast(
        folder.finished() if folder is not None and world.main else {}, world)
    if records and log is not None and world.main:
        log(f"resuming: {len(records)} of {total} batches done")
    show = (total > 4 if progress is None else progress) and world.main
    bar = progress_bar(total=total, initial=len(records), desc=description, unit="batch", disable=not show, leave=False)

    def work_on(batch: Batch) -> Record:
        with sample_indices(batch.indices):
            record = work(batch)
        return {"indices": batch.indices.tolist(), **record}

    def finished(number: int, record: Record) -> None:
        if folder is not None:
            folder.save_batch(number, record)
        bar.update(1)

    todo = [number for number in range(total) if number not in records]
    with bar:
        records.update(distributed.run_in_rounds(data, todo, work_on, finished, batch_size, world))
    return [records[number] for number in sorted(records)]
