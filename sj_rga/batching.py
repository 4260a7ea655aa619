"""Cutting data into numbered batches whose rows carry their data-set indices: the bottom of the evaluation engine.

``data`` is an ``(inputs, labels)`` pair of tensors (cut into batches of ``batch_size``), a DataLoader, or any
iterable of ``(x, y)`` batches. Batch ``number`` is the ``number``-th batch one process sees, and
``indices`` are the data-set indices of its rows: the positions in the tensors, the indices the DataLoader's
batch sampler gives (so a seeded shuffle keeps each sample's identity), or running positions in any other
iterable. Per-sample randomness (:mod:`sj_rga.seeding`) is keyed by these indices.

This module imports nothing from the package: :mod:`sj_rga.distributed`, :mod:`sj_rga.engine` and
:mod:`sj_rga.metrics` build on it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple, Optional, Union

import torch
from torch.utils.data import DataLoader, RandomSampler

Data = Union[tuple[torch.Tensor, torch.Tensor], DataLoader, Iterable]


class Batch(NamedTuple):
    """Global batch ``number`` of the data: inputs ``x``, labels ``y`` and the data-set ``indices`` ``[B]``
    (int64, CPU) of its rows."""

    number: int
    indices: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor


def check_batch_size(batch_size: object) -> int:
    """``batch_size`` as an int, or a ValueError unless it is an integer >= 1."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return batch_size


def _tensor_pair(data: object) -> bool:
    return isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data)


def _check_data(data: object) -> None:
    if isinstance(data, torch.Tensor):
        raise TypeError("data must be an (inputs, labels) pair or a DataLoader, not a single tensor")
    if not isinstance(data, Iterable):
        raise TypeError(f"data must be an (inputs, labels) pair or a DataLoader, got {type(data).__name__}")


def _pair(batch: object, number: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(batch, (tuple, list)) and len(batch) >= 2):
        raise TypeError(f"batch {number} of the data is a {type(batch).__name__}, not an (inputs, labels) pair")
    return batch[0], batch[1]


def select_batches(data: Data, batch_size: int, wanted: Callable[[int], bool],
                   refuse_unseeded_shuffle: bool = False) -> tuple[Iterator[Batch], Optional[int]]:
    """``(iterator of the wanted batches, in order, number of batches or None when unknown)``.

    A map-style DataLoader loads only the wanted batches; other iterables are read in full and the others
    skipped. ``refuse_unseeded_shuffle`` (set inside a distributed job): a DataLoader that shuffles without a
    seeded generator orders its samples differently in every process, so it is a ValueError that says so.
    """
    if _tensor_pair(data):
        x, y = data
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"inputs and labels differ in length: {x.shape[0]} vs {y.shape[0]}")
        starts = range(0, x.shape[0], check_batch_size(batch_size))
        chosen = (number for number in range(len(starts)) if wanted(number))
        return (Batch(n, torch.arange(starts[n], min(starts[n] + batch_size, x.shape[0])),
                      x[starts[n]:starts[n] + batch_size], y[starts[n]:starts[n] + batch_size]) for n in chosen), \
            len(starts)
    _check_data(data)
    if isinstance(data, DataLoader) and data.batch_sampler is not None:
        if refuse_unseeded_shuffle and isinstance(data.sampler, RandomSampler) and data.sampler.generator is None:
            raise ValueError("a DataLoader with shuffle=True and no generator orders the samples differently on "
                             "every rank, so its batches cannot be split by rank: pass an unshuffled DataLoader "
                             "(or one with a seeded generator)")
        all_batches = [list(rows) for rows in data.batch_sampler]
        numbers = [number for number in range(len(all_batches)) if wanted(number)]
        loader = DataLoader(data.dataset, batch_sampler=[all_batches[n] for n in numbers],
                            num_workers=data.num_workers, collate_fn=data.collate_fn, pin_memory=data.pin_memory)
        return (Batch(n, torch.tensor(all_batches[n], dtype=torch.int64), *_pair(batch, n))
                for n, batch in zip(numbers, loader)), len(all_batches)

    def running() -> Iterator[Batch]:
        offset = 0
        for number, batch in enumerate(data):
            x, y = _pair(batch, number)
            if wanted(number):
                yield Batch(number, torch.arange(offset, offset + len(y)), x, y)
            offset += len(y)

    return running(), (len(data) if hasattr(data, "__len__") else None)


def batches(data: Data, batch_size: int = 256) -> tuple[Iterator[Batch], Optional[int]]:
    """Every batch of ``data`` (:func:`select_batches`)."""
    return select_batches(data, batch_size, lambda number: True)


def batch_size_of(data: Data, batch_size: int) -> Optional[int]:
    """The size of ``data``'s batches as :func:`select_batches` cuts them: ``batch_size`` for a pair of tensors,
    the DataLoader's own (None with a custom batch sampler), None for other iterables of batches."""
    if _tensor_pair(data):
        return batch_size
    return data.batch_size if isinstance(data, DataLoader) else None
