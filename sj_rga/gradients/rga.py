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
    r"""Rate Gradient Approximation (Bu, Ding, Hao, Yu, CVPR 2023; method §1)::

        Ī = mean_t I[t]                                     (per neuron and sample)
        dL/dX[t] = dL/dS[t] · g(Ī) · dI/dX                  (the same factor at every t)

    with g the slope of the neuron's rate-current curve (method §1.1; θ = v_threshold − v_reset)::

        g(I) = γ                                   if 0 ≤ I ≤ (1-λ)θ
               (1 - γθ + γθλ) / ((β + λ - 1)θ)     if (1-λ)θ < I ≤ βθ
               0                                   if I > βθ or I < 0

    The authors' values: β = 2, γ = 0.2.

    Arguments:
        lam (float or None): the leak λ in [0, 1] of the rate curve (None: each neuron's own, 1 for IF,
            1 − 1/τ for LIF/PLIF). (Default: None)
        beta (float): β > 1, in units of θ: the curve reaches rate 1 at I = βθ. (Default: 2.0)
        gamma (float): γ ≥ 0, the slope below (1 − λ)θ, in spikes per step per unit of current. (Default: 0.2)

    Examples::

        >>> classifier = sj_rga.SNNClassifier(model, T=8, gradient=sj_rga.gradients.RGA(lam=0.9))
        >>> x_adv = sj_rga.attacks.PGD(classifier, eps=8 / 255, alpha=2 / 255, steps=10)(images, labels)
        >>> with sj_rga.gradient_mode(model, sj_rga.gradients.RGA(lam=0.9)):  # any model, your own loop
        ...     model(x_seq).mean(0).sum().backward()
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
