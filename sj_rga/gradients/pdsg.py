"""PDSG: the potential-dependent surrogate gradient (Lun et al., CVPR 2025; method §2).

Full BPTT through the stock dynamics (the reset detached only if the neuron's own ``detach_reset`` says so),
with the surrogate derivative the Gaussian density of mean σ/2 and standard deviation σ at u[t] = H[t] − θ:

    dS/du = exp(−((u − σ/2) / (√2·σ))²) / (√(2π)·σ)

σ (no gradient) at step t is the standard deviation (Bessel-corrected, as ``torch.std``) of the charged
potentials H[0..t] stacked over time: per channel over (time, batch, spatial) for a layer ``[T, B, C, ...]``,
per neuron over (time, batch) for a layer ``[T, B, N]``; σ = 1 where it is 0 or undefined (one value).
σ depends on the whole batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
import torch.nn as nn

from .per_step import PerStepEstimator, StepDerivative


def pooled_dims(h: torch.Tensor) -> tuple[int, ...]:
    """The axes of one step's potentials ``[B, ...]`` that σ pools: batch and spatial, never the channel."""
    return (0,) if h.dim() <= 2 else (0, *range(2, h.dim()))


class PotentialSpread:
    """σ of the potentials seen so far in one call of a layer, updated step by step (Chan et al.'s pairwise
    update of count, mean and sum of squared deviations, so each step costs O(N))."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: Optional[torch.Tensor] = None
        self.squares: Optional[torch.Tensor] = None

    def add(self, h: torch.Tensor) -> torch.Tensor:
        """Include one step's potentials ``[B, ...]``; return σ, broadcastable against them."""
        dims = pooled_dims(h)
        count = math.prod(h.shape[d] for d in dims)
        mean = h.mean(dims, keepdim=True)
        squares = (h - mean).square().sum(dims, keepdim=True)
        if self.mean is None:
            self.count, self.mean, self.squares = count, mean, squares
        else:
            total = self.count + count
            delta = mean - self.mean
            self.squares = self.squares + squares + delta.square() * (self.count * count / total)
            self.mean = self.mean + delta * (count / total)
            self.count = total
        if self.count < 2:
            return torch.ones_like(self.mean)
        sigma = (self.squares / (self.count - 1)).sqrt()
        return torch.where(sigma == 0, torch.ones_like(sigma), sigma)


class _Derivative:
    def __init__(self) -> None:
        self.spread = PotentialSpread()

    def __call__(self, t: int, u: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        sigma = self.spread.add(h)
        return torch.exp(-((u - 0.5 * sigma) / (math.sqrt(2.0) * sigma)).square()) / (math.sqrt(2.0 * math.pi) * sigma)


@dataclass(frozen=True)
class PDSG(PerStepEstimator):
    """Potential-dependent surrogate gradient: BPTT with a Gaussian surrogate whose width follows the
    spread of the layer's potentials over time and batch. No hyper-parameters."""

    name: ClassVar[str] = "pdsg"
    batch_statistic: ClassVar[Optional[str]] = "σ pools the potentials of the whole batch"

    def derivative(self, node: nn.Module, x_seq: torch.Tensor, state: object) -> StepDerivative:
        return _Derivative()

    def detach_reset(self, node: nn.Module) -> bool:
        return bool(node.detach_reset)
