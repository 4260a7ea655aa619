"""RGA: the Rate Gradient Approximation (Bu, Ding, Hao, Yu, CVPR 2023; method §1).

    Ī = mean_t I[t]                                     (per neuron and sample)
    dL/dX[t] = dL/dS[t] · g(Ī) · dI/dX                  (the same factor at every t)

with g the slope of the neuron's rate-current curve (method §1.1: leak λ, threshold θ, smoothing β > 1,
γ ≥ 0) and dI/dX from method §1.3. Time-uniform: the fast path records g(Ī)·dI/dX.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
import torch.nn as nn

from ..mapping import neuron_mapping
from ..neuron import StockRun, rate_multi_step_forward, slope_spec
from ..surrogate import DEFAULT_BETA, DEFAULT_GAMMA, check_leak, check_smoothing, rate_slope
from .time_uniform import TimeUniformEstimator


@dataclass(frozen=True)
class RGA(TimeUniformEstimator):
    """Rate Gradient Approximation. ``lam``: the leak λ in [0, 1] of the rate curve (None: each neuron's own,
    1 for IF, 1 − 1/τ for LIF/PLIF); ``beta`` > 1: the curve reaches rate 1 at I = βθ; ``gamma`` ≥ 0: the
    slope below (1 − λ)θ. The authors' values: β = 2, γ = 0.2.

    Example: ``SNNClassifier(model, T=8, gradient=RGA(lam=0.9))``.
    """

    lam: Optional[float] = None
    beta: float = DEFAULT_BETA
    gamma: float = DEFAULT_GAMMA
    name: ClassVar[str] = "rga"

    def __post_init__(self) -> None:
        if self.lam is not None:
            check_leak(self.lam)
        check_smoothing(self.beta, self.gamma)

    def check_neuron(self, node: nn.Module) -> None:
        """Stock IF/LIF/PLIF and registered classes: a clear error naming sj_rga.register_neuron otherwise."""
        neuron_mapping(node)

    def current_gain(self, node: nn.Module) -> float:
        return neuron_mapping(node).input_gain

    def slope_of(self, node: nn.Module, run: StockRun) -> torch.Tensor:
        spec = slope_spec(node, self)
        return rate_slope(run.mean_current, spec.lam, spec.theta, spec.beta, spec.gamma) * spec.input_gain

    def stock_layer(self, node: nn.Module, x_seq: torch.Tensor, state: object) -> torch.Tensor:
        return rate_multi_step_forward(node, x_seq, self)
