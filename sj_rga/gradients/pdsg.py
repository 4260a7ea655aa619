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

from .per_step import PerStepEstimator, SurrogateDerivative


def pooled_dims(h_seq: torch.Tensor) -> tuple[int, ...]:
    """The axes of potentials ``[T, B, ...]`` that σ pools at each step besides time: batch and spatial, never
    the channel (axis 2 of ``[T, B, C, ...]``)."""
    return (1,) if h_seq.dim() <= 3 else (1, *range(3, h_seq.dim()))


def cumulative_spread(h_seq: torch.Tensor) -> torch.Tensor:
    """σ at every step t: the Bessel-corrected standard deviation of H[0..t] over time and the pooled axes,
    broadcastable against ``h_seq`` ``[T, B, ...]``; 1 where it is 0 or undefined.

    Each step's count, mean and sum of squared deviations are combined with those of the earlier steps by
    Chan et al.'s pairwise update (stable; the loop runs over T on per-channel values only)."""
    dims = pooled_dims(h_seq)
    count = math.prod(h_seq.shape[d] for d in dims)
    means = h_seq.mean(dims, keepdim=True)
    squares = (h_seq - means).square().sum(dims, keepdim=True)
    variance = torch.empty_like(means)
    mean, total, seen = means[0], squares[0], count
    variance[0] = total / (seen - 1) if seen > 1 else float("nan")
    for t in range(1, h_seq.shape[0]):
        delta = means[t] - mean
        mean = mean + delta * (count / (seen + count))
        total = total + squares[t] + delta.square() * (seen * count / (seen + count))
        seen += count
        variance[t] = total / (seen - 1)
    sigma = variance.sqrt()
    return torch.where(torch.isnan(sigma) | (sigma == 0), torch.ones_like(sigma), sigma)


def gaussian_derivative(u: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """PDSG's dS/du at every step: the Gaussian density of mean σ/2 and standard deviation σ at u."""
    sigma = cumulative_spread(h)
    return torch.exp(-((u - 0.5 * sigma) / (math.sqrt(2.0) * sigma)).square()) / (math.sqrt(2.0 * math.pi) * sigma)


@dataclass(frozen=True)
class PDSG(PerStepEstimator):
    r"""Potential-dependent surrogate gradient (Lun et al., CVPR 2025; method §2): BPTT with a Gaussian
    surrogate at u[t] = H[t] − θ whose width follows the spread of the layer's potentials::

        dS/du = exp(−((u − σ/2) / (√2·σ))²) / (√(2π)·σ)

    σ (no gradient) at step t is the standard deviation of the charged potentials H[0..t] over time and
    batch (per channel, or per neuron for ``[T, B, N]`` layers); it depends on the whole batch.

    Arguments: none.

    Examples::

        >>> classifier = sj_rga.SNNClassifier(model, T=8, gradient=sj_rga.gradients.PDSG())
        >>> x_adv = sj_rga.attacks.PGD(classifier, eps=8 / 255, alpha=2 / 255, steps=10)(images, labels)
        >>> with sj_rga.gradient_mode(model, sj_rga.gradients.PDSG()):  # any model, your own loop
        ...     model(x_seq).mean(0).sum().backward()
    """

    name: ClassVar[str] = "pdsg"
    batch_statistic: ClassVar[Optional[str]] = "σ pools the potentials of the whole batch"

    def derivative(self, node: nn.Module, x_seq: torch.Tensor, state: object) -> SurrogateDerivative:
        return gaussian_derivative

    def detach_reset(self, node: nn.Module) -> bool:
        return bool(node.detach_reset)
