"""The standard robustness evaluation of a model as one resumable run: AutoAttack batch by batch, per-sample
results, the report (one row per attack of the suite plus the worst case), JSON and CSV.

Batch b runs with the seed :func:`sj_rga.seeding.derive_seed` ``(seed, b)``: its classifier's Poisson
stream and its suite's attacks depend on nothing else, so a run resumed from its folder (method §3's
discipline; :mod:`sj_rga.runs`) ends with exactly the results of an uninterrupted one. Per sample the run
keeps its index in the data, label, ``clean_ok``, ``robust_ok`` and ``broken_by`` (the suite attack that
broke it, or -1), so results from parts of the data (e.g. one per process) concatenate.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import torch

from . import distributed
from .attacks.autoattack import AutoAttack, SuiteAttack
from .classifier import SNNClassifier
from .files import write_atomically, write_json
from .metrics import ASR_DEFINITION, score_batch
from .progress import progress_bar
from .runs import RunFolder
from .seeding import derive_seed

RESULTS_FORMAT = "sj-rga-evaluation-1"
SEEDS = {"batch": "derive_seed(seed, batch index) (sj_rga.seeding)", "attack": "batch seed + position in the suite",
         "poisson": "the batch seed, for the classifier's Poisson spikes"}


def _batch_classifier(target: SNNClassifier, seed: int) -> SNNClassifier:
    """The target with its own Poisson seed for one batch (the same model object)."""
    twin = target.with_time_steps(target.T)
    twin.seed = seed if target.encoding == "poisson" else target.seed
    return twin


def run_batches(target: SNNClassifier, data: Iterable[tuple[torch.Tensor, torch.Tensor]], eps: float, norm: str,
                version: str, seed: int, folder: Optional[RunFolder] = None,
                attacks: Optional[Sequence[SuiteAttack]] = None, total: Optional[int] = None,
                device: Union[None, str, torch.device] = None, progress: bool = True) -> list[dict[str, Any]]:
    """Run the suite batch by batch; the per-batch records in order. With ``folder`` the finished batches
    are read instead of rerun, and each new one is saved as soon as it is done. ``total`` is the number of
    batches of ``data`` (default ``len(data)``).

    Inside a torch.distributed job (:mod:`sj_rga.distributed`) the batches still to run are dealt round-robin
    over the ranks (:func:`~sj_rga.distributed.run_in_rounds`): rank 0 alone reads the folder (its finished
    batches go to every rank) and saves each round's batches as they arrive, and every rank returns all
    records. A batch's record depends only on the batch and its seed, so a run resumed with any number of
    processes ends as one uninterrupted process would.
    """
    AutoAttack(target, eps, norm, version, seed, attacks)  # a clear error now for bad settings
    world = distributed.world()
    records = distributed.broadcast(folder.finished() if folder is not None and world.main else {}, world)
    count = total if total is not None else len(data)
    todo = [index for index in range(count) if index not in records]
    bar = progress_bar(total=count, initial=len(records), desc=f"AutoAttack ({version})", unit="batch",
               disable=not (progress and world.main))

    def work(index: int, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Any]:
        x, y = batch
        if device is not None:
            x, y = x.to(device), y.to(device)
        batch_seed = derive_seed(seed, index)
        classifier = _batch_classifier(target, batch_seed)
        attack = AutoAttack(classifier, eps, norm, version, batch_seed, attacks)
        start = time.perf_counter()
        outcome = score_batch(classifier, attack, x, y)
        return {
            "seed": batch_seed, "labels": y.tolist(), "clean_ok": outcome.clean_ok.tolist(),
            "robust_ok": outcome.robust_ok.tolist(), "broken_by": outcome.broken_by.tolist(),
            "attacked": attack.last_result.attacked, "attack_seconds": attack.last_result.seconds,
            "seconds": time.perf_counter() - start,
        }

    def place(index: int, record: dict[str, Any]) -> dict[str, Any]:
        """The record with the positions of its samples in the data (every earlier batch is known by now)."""
        offset = sum(len(records[earlier]["labels"]) for earlier in range(index))
        placed = {"seed": record["seed"], "indices": list(range(offset, offset + len(record["labels"]))),
                  **{key: value for key, value in record.items() if key not in ("seed", "indices")}}
        records[index] = placed
        return placed

    def finished(index: int, record: dict[str, Any]) -> None:
        placed = place(index, record)
        if folder is not None:
            folder.save_batch(index, placed)
        bar.update(1)

    with bar:
        done = distributed.run_in_rounds(data, todo, work, finished, at=world)
    for index in sorted(done):  # the other ranks place the records rank 0 placed as they arrived
        if "indices" not in records.get(index, {}):
            place(index, done[index])
    if not records:
        raise ValueError("data holds no samples")
    return [records[index] for index in sorted(records)]


def report(records: Sequence[dict[str, Any]], composition: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """From per-batch records: one row per attack of the suite (the samples it ran on and broke; robust
    accuracy and ASR after it and every earlier one: the worst case so far), the worst case (scored on
    the returned examples), and the per-sample results."""
    per_sample = {key: [v for r in records for v in r[source]] for key, source in
                  (("index", "indices"), ("label", "labels"), ("clean_ok", "clean_ok"), ("robust_ok", "robust_ok"),
                   ("broken_by", "broken_by"))}
    samples = len(per_sample["index"])
    clean_correct = sum(per_sample["clean_ok"])

    def row(name: str, broken: int, broken_so_far: int, robust: int, seconds: float,
            attacked: Optional[int]) -> dict[str, Any]:
        return {"attack": name, "attacked": attacked, "broken": broken, "clean_accuracy": clean_correct / samples,
                "robust_accuracy": robust / samples,
                "attack_success_rate": broken_so_far / clean_correct if clean_correct else float("nan"),
                "seconds": seconds}

    rows, broken_so_far = [], 0
    for i, entry in enumerate(composition):
        broken_here = sum(1 for b in per_sample["broken_by"] if b == i)
        broken_so_far += broken_here
        rows.append(row(entry["name"], broken_here, broken_so_far, clean_correct - broken_so_far,
                        sum(r["attack_seconds"][i] for r in records), sum(r["attacked"][i] for r in records)))
    robust = sum(per_sample["robust_ok"])
    broken = sum(1 for c, r in zip(per_sample["clean_ok"], per_sample["robust_ok"]) if c and not r)
    worst = row("worst case", broken, broken, robust, sum(r["seconds"] for r in records), None)
    return {"samples": samples, "clean_accuracy": worst["clean_accuracy"], "robust_accuracy": worst["robust_accuracy"],
            "attack_success_rate": worst["attack_success_rate"], "asr_definition": ASR_DEFINITION,
            "rows": rows, "worst_case": worst, "per_sample": per_sample}


def write_report(folder: Union[str, Path], result: dict[str, Any]) -> tuple[Path, Path]:
    """``results.json`` (everything, NaN as null) and ``results.csv`` (:func:`sj_rga.report.evaluation_csv`),
    each written atomically."""
    from .report import evaluation_csv

    folder = Path(folder)
    return write_json(folder / "results.json", result), write_atomically(folder / "results.csv", evaluation_csv(result))
