"""The rate surrogate of Bu et al. (CVPR 2023): the slope of a neuron's static rate-vs-current curve.

For a neuron with multiplicative leak λ (V[t] = λ·V[t-1] + I[t], spike when V ≥ θ, then reset), the
firing rate r (spikes per step, in [0, 1]) as a function of a constant input current I has the slope

    g(I) = γ                                   if 0 ≤ I ≤ (1-λ)θ
           (1 - γθ + γθλ) / ((β + λ - 1)θ)     if (1-λ)θ < I ≤ βθ
           0                                   if I > βθ or I < 0

β > 1 and γ ≥ 0 keep it finite and non-zero; the curve reaches rate 1 at I = βθ. λ = 1 is the IF neuron.
The estimator and SpikingJelly surrogate built on it is :class:`sj_rga.RGA` (:mod:`sj_rga.gradients.rga`).
"""
from __future__ import annotations

import math
from typing import Union

import torch

Number = Union[int, float]

DEFAULT_BETA = 2.0
DEFAULT_GAMMA = 0.2


def check_smoothing(beta: Number, gamma: Number) -> None:
    """Raise a clear error unless β > 1 and γ ≥ 0 are finite real numbers."""
    for name, value in (("beta", beta), ("gamma", gamma)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    if beta <= 1:
        raise ValueError(f"beta must be > 1 (the rate reaches 1 at I = beta*theta), got {beta}")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0 (the slope below (1-lam)*theta), got {gamma}")


def check_leak(lam: Number) -> None:
    """Raise a clear error unless the leak λ is a real number in [0, 1]."""
    if isinstance(lam, bool) or not isinstance(lam, (int, float)):
        raise TypeError(f"lam (the leak) must be a real number in [0, 1], got {type(lam).__name__}")
    if not (0.0 <= lam <= 1.0):
        raise ValueError(f"lam (the leak) must lie in [0, 1] (1 is the IF neuron), got {lam}")


def check_threshold(theta: Number) -> None:
    """Raise a clear error unless the threshold θ (above the reset value) is a positive number."""
    if isinstance(theta, bool) or not isinstance(theta, (int, float)):
        raise TypeError(f"theta (threshold above reset) must be a real number, got {type(theta).__name__}")
    if not (math.isfinite(theta) and theta > 0):
        raise ValueError(
            f"theta = v_threshold - v_reset must be positive and finite, got {theta}; "
            "a neuron whose threshold is not above its reset value never has a rate curve"
        )


def rate_slope(
    current: torch.Tensor,
    lam: Number,
    theta: Number,
    beta: Number = DEFAULT_BETA,
    gamma: Number = DEFAULT_GAMMA,
) -> torch.Tensor:
    """g(I): slope of the static rate-vs-current curve, elementwise (same shape and dtype as ``current``).

    ``current`` is the neuron's mean effective input current Ī in membrane-potential units per step;
    ``lam`` the leak λ in [0, 1]; ``theta`` the threshold above the reset value, θ > 0.
    The result is in spikes per step per unit of current.
    """
    if not isinstance(current, torch.Tensor):
        raise TypeError(f"current must be a torch.Tensor, got {type(current).__name__}")
    if not current.is_floating_point():
        raise TypeError(f"current must be a floating-point tensor, got dtype {current.dtype}")
    check_leak(lam)
    check_threshold(theta)
    check_smoothing(beta, gamma)
    lam, theta, beta, gamma = float(lam), float(theta), float(beta), float(gamma)
    knee = (1.0 - lam) * theta
    middle = (1.0 - gamma * theta + gamma * theta * lam) / ((beta + lam - 1.0) * theta)
    zero = torch.zeros((), dtype=current.dtype, device=current.device)
    slope = torch.where((current > knee) & (current <= beta * theta), middle, zero)
    return torch.where((current >= 0) & (current <= knee), gamma, slope)
