"""Input encodings: pixel-space batches to time-major ``[T, B, ...]`` network inputs.

- ``direct``: the image repeated T times.
- ``poisson``: a Bernoulli spike per pixel and step with probability x (x in [0, 1]); its backward is
  straight-through (d Poisson(x)/dx ≈ dE[Poisson(x)]/dx = 1, so the gradient sums over T). The uniform draws
  come from one generator, or per sample from :class:`~sj_rga.seeding.SampleStreams` (row i from sample i's
  stream, :data:`POISSON_PART`), so that a sample's spikes do not depend on the batch it is in.
- ``frames``: event frames ``[B, T, C, H, W]`` as SpikingJelly's DVS loaders give them; the time axis
  is the data's, only moved to the front.
"""
from __future__ import annotations

from typing import Literal, Sequence, Union

import torch

from .seeding import SampleStreams

Encoding = Literal["direct", "poisson", "frames"]
ENCODINGS = ("direct", "poisson", "frames")
#: The part of a sample's Poisson stream: ``derive_seed(seed, sample index, POISSON_PART)``.
POISSON_PART = 1
Randomness = Union[None, torch.Generator, SampleStreams]


def direct(x: torch.Tensor, T: int) -> torch.Tensor:
    """``[B, ...]`` -> ``[T, B, ...]``: the same input at every step."""
    return x.unsqueeze(0).expand(T, *x.shape)


def poisson(x: torch.Tensor, T: int, generator: Randomness = None) -> torch.Tensor:
    """``[B, ...]`` in [0, 1] -> Bernoulli spikes ``[T, B, ...]``, 1 where u < x for u uniform in [0, 1), with a
    straight-through backward. ``generator``: None (torch's global generator), one ``torch.Generator``, or
    :class:`~sj_rga.seeding.SampleStreams` (row b's T draws from its sample's stream)."""
    p = x.detach().clamp(0.0, 1.0).unsqueeze(0).expand(T, *x.shape)
    if isinstance(generator, SampleStreams):
        uniform = generator.rand((T, *x.shape[1:]), dtype=x.dtype, device=x.device).transpose(0, 1)
    else:
        uniform = torch.rand(p.shape, generator=generator, device=x.device, dtype=x.dtype)
    spikes = (uniform < p).to(x.dtype)
    return spikes + (direct(x, T) - direct(x, T).detach())


def frames(x: torch.Tensor) -> torch.Tensor:
    """``[B, T, C, H, W]`` -> ``[T, B, C, H, W]`` (a view)."""
    return x.transpose(0, 1)


def time_extended(T: int, factor: int) -> int:
    """Steps of a time-extended attack: craft with ``factor``·T steps (the paper uses factor = 2)."""
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"the time-extension factor must be an integer >= 1, got {factor!r}")
    return T * factor


def normalise(x_seq: torch.Tensor, mean: Union[None, Sequence[float], torch.Tensor],
              std: Union[None, Sequence[float], torch.Tensor]) -> torch.Tensor:
    """``(x_seq - mean) / std`` per channel (axis 2 of ``[T, B, C, ...]``); one value or one per channel."""
    if mean is None and std is None:
        return x_seq
    channels = x_seq.shape[2] if x_seq.dim() >= 3 else 1
    shape = (1, 1, -1) + (1,) * (x_seq.dim() - 3) if x_seq.dim() >= 3 else (1,)
    stats = []
    for name, stat, default in (("mean", mean, 0.0), ("std", std, 1.0)):
        stat = torch.as_tensor(default if stat is None else stat, dtype=x_seq.dtype, device=x_seq.device).flatten()
        if stat.numel() not in (1, channels):
            raise ValueError(f"{name} has {stat.numel()} values but the input has {channels} channels")
        stats.append(stat.reshape(shape) if stat.numel() > 1 else stat.reshape(()))
    return (x_seq - stats[0]) / stats[1]


def encode(x: torch.Tensor, T: int, encoding: Encoding, mean=None, std=None,
           generator: Randomness = None) -> torch.Tensor:
    """Pixel-space batch (``[B, T, C, H, W]`` for frames) -> normalised time-major network input ``[T, B, ...]``."""
    if encoding == "direct":
        x_seq = direct(x, T)
    elif encoding == "poisson":
        x_seq = poisson(x, T, generator)
    elif encoding == "frames":
        x_seq = frames(x)
    else:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    return normalise(x_seq, mean, std)
