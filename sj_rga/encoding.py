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

from dataclasses import dataclass
from typing import Literal, Optional, Sequence, Union

import torch

from .seeding import SampleStreams
from .validation import check_count

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
    return T * check_count(factor, "the time-extension factor")


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


@dataclass(frozen=True)
class InputSpec:
    """How a data batch becomes the model's time-major input, as :class:`sj_rga.SNNClassifier` does it.

    ``encoding``: ``"direct"`` (the image repeated over ``T`` steps),
    ``"poisson"`` (each step a Bernoulli spike with the pixel value in [0, 1] as probability) or
    ``"frames"`` (batches are ``[B, T, C, H, W]`` frames, moved to time-major). The encoded input is then
    normalised per channel by ``mean``/``std`` when they are given.
    """

    T: int
    encoding: str = "direct"
    mean: Optional[Sequence[float]] = None
    std: Optional[Sequence[float]] = None

    def __post_init__(self) -> None:
        if self.T < 1:
            raise ValueError(f"T must be at least 1, got {self.T}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std, or neither")

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` images in [0, 1] (or ``[B, T, C, H, W]`` frames) -> ``[T, B, C, H, W]``."""
        if self.encoding == "frames" and (batch.dim() != 5 or batch.shape[1] != self.T):
            raise ValueError(f"frames encoding expects [B, T={self.T}, C, H, W] batches, got {tuple(batch.shape)}")
        return encode(batch, self.T, self.encoding, self.mean, self.std)
