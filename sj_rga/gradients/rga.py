"""RGA: the Rate Gradient Approximation (Bu, Ding, Hao, Yu, CVPR 2023; method §1).

    Ī = mean_t I[t]                                     (per neuron and sample)
    dL/dX[t] = dL/dS[t] · g(Ī) · dI/dX                  (the same factor at every t)

with g the slope of the neuron's rate-current curve (method §1.1: leak λ, threshold θ, smoothing β > 1,
γ ≥ 0) and dI/dX from method §1.3. Time-uniform: the fast path records g(Ī)·dI/dX.

One class serves as the estimator (``gradient=`` of :class:`sj_rga.SNNClassifier`, :func:`gradient_mode`) and
as a neuron's ``surrogate_function``: a neuron whose surrogate is an ``RGA`` runs through the very handle
that ``gradient_mode(model, RGA(...))`` gives it (method §5).
"""
from __future__ import annotations

from typing import Any, ClassVar, Optional

import torch
import torch.nn as nn
from spikingjelly.activation_based import surrogate

from .._compat import SURROGATE_TAKES_ALPHA
from ..mapping import neuron_mapping
from ..neuron import StockRun, SurrogateRoute, rate_multi_step_forward, slope_spec
from ..surrogate import DEFAULT_BETA, DEFAULT_GAMMA, Number, check_leak, check_smoothing, rate_slope
from .time_uniform import TimeUniformEstimator

SURROGATE_ERROR = (
    "RGA's rate gradient needs the whole time window, so as a surrogate_function it only runs inside IFNode, "
    "LIFNode or ParametricLIFNode (or their clock_driven MultiStep classes) in multi-step mode: call "
    "spikingjelly.activation_based.functional.set_step_mode(net, 'm') and feed [T, B, ...] inputs. For other "
    "neuron classes use sj_rga.rate_mode(model) or SNNClassifier(model, T, gradient=sj_rga.RGA())"
)


class RGA(surrogate.SurrogateFunctionBase, TimeUniformEstimator, SurrogateRoute):
    r"""Rate Gradient Approximation (Bu, Ding, Hao, Yu, CVPR 2023; method §1), as an estimator and as a
    SpikingJelly surrogate::

        Ī = mean_t I[t]                                     (per neuron and sample)
        dL/dX[t] = dL/dS[t] · g(Ī) · dI/dX                  (the same factor at every t)

    with g the slope of the neuron's rate-current curve (method §1.1; θ = v_threshold − v_reset)::

        g(I) = γ                                   if 0 ≤ I ≤ (1-λ)θ
               (1 - γθ + γθλ) / ((β + λ - 1)θ)     if (1-λ)θ < I ≤ βθ
               0                                   if I > βθ or I < 0

    The authors' values: β = 2, γ = 0.2. θ and dI/dX always come from the neuron.

    Arguments:
        lam (float or None): the leak λ in [0, 1] of the rate curve (None: each neuron's own, 1 for IF,
            1 − 1/τ for LIF/PLIF). (Default: None)
        beta (float): β > 1, in units of θ: the curve reaches rate 1 at I = βθ. (Default: 2.0)
        gamma (float): γ ≥ 0, the slope below (1 − λ)θ, in spikes per step per unit of current. (Default: 0.2)

    As a surrogate (``surrogate_function=RGA()``) its forward is the Heaviside spike (without gradient); with
    gradients, the neuron's whole multi-step computation is routed to the estimator's layer backward, the same
    handle :func:`sj_rga.gradient_mode` attaches. It is an ``nn.Module`` (torch's ``parameters()``: none); like
    the other estimators it compares by its hyper-parameters, which are read-only, and :meth:`hyperparameters`
    gives them as plain values.

    Examples::

        >>> classifier = sj_rga.SNNClassifier(model, T=8, gradient=sj_rga.RGA(lam=0.9))
        >>> x_adv = sj_rga.attacks.PGD(classifier, eps=8 / 255, alpha=2 / 255, steps=10)(images, labels)
        >>> from spikingjelly.activation_based import neuron
        >>> node = neuron.LIFNode(tau=10.0, surrogate_function=sj_rga.RGA(), step_mode="m")
        >>> with sj_rga.gradient_mode(model, sj_rga.RGA(lam=0.9)):  # any model, your own loop
        ...     model(x_seq).mean(0).sum().backward()
    """

    name: ClassVar[str] = "rga"

    def __init__(self, lam: Optional[Number] = None, beta: Number = DEFAULT_BETA, gamma: Number = DEFAULT_GAMMA):
        if lam is not None:
            check_leak(lam)
        check_smoothing(beta, gamma)
        if SURROGATE_TAKES_ALPHA:
            super().__init__(alpha=None, spiking=True)
        else:
            super().__init__(spiking=True)
        self._hyper = (None if lam is None else float(lam), float(beta), float(gamma))

    @property
    def lam(self) -> Optional[float]:
        return self._hyper[0]

    @property
    def beta(self) -> float:
        return self._hyper[1]

    @property
    def gamma(self) -> float:
        return self._hyper[2]

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._hyper == self._hyper

    def __hash__(self) -> int:
        return hash((type(self), self._hyper))

    def hyperparameters(self) -> dict[str, Any]:
        return {"lam": self.lam, "beta": self.beta, "gamma": self.gamma}

    def extra_repr(self) -> str:
        return f"lam={self.lam}, beta={self.beta}, gamma={self.gamma}"

    # -- the surrogate ---------------------------------------------------------------------------------
    def set_spiking_mode(self, spiking: bool) -> None:
        if not spiking:
            raise ValueError("RGA has no primitive (non-spiking) form: it only defines a backward for spikes")
        self.spiking = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Heaviside spike of ``x = V - v_threshold``; with a gradient only through the neuron's route."""
        if torch.is_grad_enabled() and x.requires_grad:
            raise RuntimeError(SURROGATE_ERROR)
        return (x >= 0).to(x.dtype)

    # -- the estimator ---------------------------------------------------------------------------------
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
