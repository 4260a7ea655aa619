"""Randomness seeded per sample, so that results do not depend on the batch size or the number of ranks.

Every random draw an attack or an encoder makes for one sample (a random start, Poisson spikes, the
squares of a random search) comes from that sample's own stream, a ``torch.Generator`` seeded with
:func:`derive_seed` ``(seed, sample index, *parts)``. The sample index is the sample's position in the
whole data set: the evaluation engine declares it for each batch with :func:`sample_indices`; a call made
outside it (``atk(x, y)`` on a batch of your own) numbers the rows 0 … B−1. So the same sample gets the
same random numbers whether it is attacked alone, in a batch of 32 or of 128, on rank 0 or rank 3.

Example::

    with sample_indices(torch.arange(64, 96)):      # batch 2 of a data set cut in batches of 32
        streams = SampleStreams(seed=0, parts=(1,))  # per sample: derive_seed(0, index, 1)
        start = streams.rand((3, 32, 32)) * 2 - 1     # [32, 3, 32, 32], row i from sample 64 + i's stream
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Optional, Union

import numpy as np
import torch

_INDICES: contextvars.ContextVar[Optional[torch.Tensor]] = contextvars.ContextVar("sj_rga_sample_indices",
                                                                                   default=None)


def derive_seed(seed: int, *parts: int) -> int:
    """A seed in [0, 2⁶²) determined by ``seed`` and ``parts`` (e.g. a sample index), well spread
    (NumPy's SeedSequence), so that neighbouring samples get unrelated random streams."""
    state = np.random.SeedSequence([int(seed), *(int(p) for p in parts)]).generate_state(1, dtype=np.uint64)
    return int(state[0]) >> 2


@contextlib.contextmanager
def sample_indices(indices: Union[torch.Tensor, Sequence[int]]) -> Iterator[torch.Tensor]:
    """Declare the data-set indices of the rows of the batch being attacked (a 1-D sequence of
    non-negative integers, one per row) for the calls made inside the block."""
    tensor = torch.as_tensor(indices, dtype=torch.int64).detach().cpu()
    if tensor.dim() != 1:
        raise ValueError(f"sample indices must be one-dimensional, got shape {tuple(tensor.shape)}")
    if tensor.numel() and int(tensor.min()) < 0:
        raise ValueError("sample indices must be non-negative")
    token = _INDICES.set(tensor)
    try:
        yield tensor
    finally:
        _INDICES.reset(token)


def current_indices(batch: int) -> torch.Tensor:
    """The data-set indices of a batch of ``batch`` rows: those declared by :func:`sample_indices`, or
    0 … batch−1 outside such a block. A declared list of another length is a ValueError."""
    declared = _INDICES.get()
    if declared is None:
        return torch.arange(batch)
    if declared.numel() != batch:
        raise ValueError(f"{declared.numel()} sample indices were declared for a batch of {batch} inputs")
    return declared


class SampleStreams:
    """One random stream per sample: row i draws from a generator seeded with
    ``derive_seed(seed, indices[i], *parts)``. ``indices`` defaults to :func:`current_indices`.
    Draws return ``[B, *shape]``; :meth:`subset` keeps the streams of some rows (their state shared), so a
    restart on the samples still robust continues each sample's own stream."""

    def __init__(self, seed: int, batch: Optional[int] = None, parts: Sequence[int] = (),
                 indices: Optional[torch.Tensor] = None, device: Union[str, torch.device] = "cpu"):
        if indices is None:
            if batch is None:
                raise TypeError("SampleStreams needs the batch size or the sample indices")
            indices = current_indices(batch)
        self.indices = torch.as_tensor(indices, dtype=torch.int64).cpu()
        self.device = torch.device(device)
        self.generators = [torch.Generator(device=self.device).manual_seed(derive_seed(seed, int(i), *parts))
                           for i in self.indices.tolist()]

    def __len__(self) -> int:
        return len(self.generators)

    @classmethod
    def of(cls, indices: torch.Tensor, generators: Sequence[torch.Generator],
           device: Union[str, torch.device]) -> SampleStreams:
        """Streams made of existing ``generators`` (one per row, on ``device``), their state shared."""
        view = cls.__new__(cls)
        view.indices, view.device, view.generators = indices, torch.device(device), list(generators)
        return view

    def subset(self, rows: Union[torch.Tensor, Sequence[int]]) -> SampleStreams:
        """The streams of ``rows`` (positions in this batch), sharing their generators' state."""
        rows = torch.as_tensor(rows, dtype=torch.int64).cpu()
        return SampleStreams.of(self.indices[rows], [self.generators[r] for r in rows.tolist()], self.device)

    def _draw(self, sampler, shape: Sequence[int], dtype: torch.dtype, device) -> torch.Tensor:
        device = self.device if device is None else torch.device(device)
        if not self.generators:
            return torch.empty((0, *shape), dtype=dtype, device=device)
        rows = [sampler(tuple(shape), generator=g, device=self.device, dtype=dtype) for g in self.generators]
        return torch.stack(rows).to(device)

    def rand(self, shape: Sequence[int], dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
        """Uniform in [0, 1): ``[B, *shape]``."""
        return self._draw(torch.rand, shape, dtype, device)

    def randn(self, shape: Sequence[int], dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
        """Standard normal: ``[B, *shape]``."""
        return self._draw(torch.randn, shape, dtype, device)

    def randint(self, high: int, shape: Sequence[int] = (), device=None) -> torch.Tensor:
        """Integers uniform in [0, high): ``[B, *shape]`` (int64)."""
        device = self.device if device is None else torch.device(device)
        if not self.generators:
            return torch.empty((0, *shape), dtype=torch.int64, device=device)
        rows = [torch.randint(int(high), tuple(shape), generator=g, device=self.device) for g in self.generators]
        return torch.stack(rows).to(device)


class StreamPool:
    """Per-sample streams that last across calls: sample i's generator on a device, seeded with
    ``derive_seed(seed, i, *parts)``, is made at its first draw and continues where its last draw stopped,
    whatever batch the sample comes in (e.g. a classifier's Poisson spikes over the forwards of one attack
    run). :meth:`clear` starts every stream afresh."""

    def __init__(self, seed: int, parts: Sequence[int] = ()):
        self.seed, self.parts = int(seed), tuple(int(p) for p in parts)
        self._generators: dict[tuple[torch.device, int], torch.Generator] = {}

    def streams(self, batch: int, device: Union[str, torch.device] = "cpu") -> SampleStreams:
        """The streams of the rows of a batch of ``batch`` (indices from :func:`current_indices`)."""
        indices, device = current_indices(batch), torch.device(device)
        generators = []
        for index in indices.tolist():
            key = (device, index)
            if key not in self._generators:
                seed = derive_seed(self.seed, index, *self.parts)
                self._generators[key] = torch.Generator(device=device).manual_seed(seed)
            generators.append(self._generators[key])
        return SampleStreams.of(indices, generators, device)

    def clear(self) -> None:
        """Start every sample's stream afresh."""
        self._generators.clear()
