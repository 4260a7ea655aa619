"""HART (Hao et al., ICLR 2024, mode 'avg'; method §2).

With the membrane detached across time (H[t] = f(V[t−1].detach(), X[t])) and a triangle surrogate of
half-width γ at the actual potential u[t] = H[t] − θ (θ = v_threshold), averaged over time:

    dL/dX[t] = (1/T) Σ_t' dL/dS[t'] · max(0, γ − |u[t']|)/γ² · dH/dX

(dH/dX = 1, or 1/τ for LIF and sigmoid(w) for PLIF with ``decay_input=True``). Time-uniform: the fast path
records mean_t max(0, γ − |u[t]|)/γ² · dH/dX. The authors pick γ by grid search (0.10 … 2.45, step 0.05);
:func:`sj_rga.tune_gradient` does that on held-out data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn

from ..mapping import charge_spec
from ..neuron import exact_forward
from ..validation import check_range
from .time_uniform import LayerSlope, TimeUniformEstimator


class TimeMeanGradientFunction(torch.autograd.Function):
    """Forward: ``spikes``. Backward: ``dL/dX[t] = mean_t' dL/dS[t'] · weights[t']``, the same at every t."""

    @staticmethod
    def forward(ctx, x_seq: torch.Tensor, spikes: torch.Tensor, weights: torch.Tensor):
        ctx.save_for_backward(weights)
        return spikes.clone()

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        (weights,) = ctx.saved_tensors
        mean = (grad_spikes * weights.to(grad_spikes.dtype)).mean(0, keepdim=True)
        return mean.expand_as(grad_spikes), None, None


@dataclass(frozen=True)
class HART(TimeUniformEstimator):
    r"""HART's rate-temporal gradient (Hao et al., ICLR 2024, mode 'avg'; method §2): the membrane detached
    across time (H[t] = f(V[t−1].detach(), X[t])), a triangle surrogate of half-width γ at the actual
    potential u[t] = H[t] − θ (θ = v_threshold), averaged over time::

        dL/dX[t] = (1/T) Σ_t' dL/dS[t'] · max(0, γ − |u[t']|)/γ² · dH/dX

    The authors pick γ by grid search (0.10 … 2.45, step 0.05); :func:`sj_rga.tune_gradient` does that on
    held-out data.

    Arguments:
        gamma (float): the triangle's half-width γ > 0, in units of the membrane potential. (Default: 1.0,
            the authors')

    Examples::

        >>> classifier = sj_rga.SNNClassifier(model, T=8, gradient=sj_rga.gradients.HART(gamma=0.5))
        >>> x_adv = sj_rga.attacks.PGD(classifier, eps=8 / 255, alpha=2 / 255, steps=10)(images, labels)
        >>> with sj_rga.gradient_mode(model, sj_rga.gradients.HART(gamma=0.5)):  # any model, your own loop
        ...     model(x_seq).mean(0).sum().backward()
    """

    gamma: float = 1.0
    name: ClassVar[str] = "hart"

    def __post_init__(self) -> None:
        object.__setattr__(self, "gamma", check_range(self.gamma, "gamma (HART's triangle half-width)", 0.0,
                                                      float("inf"), low_open=True, high_open=True))

    def _distance(self, h: torch.Tensor, threshold: float, out: torch.Tensor) -> torch.Tensor:
        """min(|u|, γ) for u = H − θ, written into ``out`` (then max(0, γ − |u|) = γ − that)."""
        return torch.sub(h, threshold, out=out).abs_().clamp_(max=self.gamma)

    def record(self, node: nn.Module, x_seq: torch.Tensor) -> LayerSlope:
        """The slope mean_t max(0, γ − |u[t]|)/γ² · dH/dX, summed on the way through the T steps."""
        spec = charge_spec(node)
        scratch = torch.empty_like(x_seq[0], memory_format=torch.contiguous_format)
        total = torch.zeros_like(scratch)
        run = exact_forward(node, x_seq,
                            on_charge=lambda t, h: total.add_(self._distance(h, spec.v_threshold, scratch)))
        slope = total.div_(-x_seq.shape[0]).add_(self.gamma).mul_(spec.input_gain / self.gamma ** 2)
        return LayerSlope(run, slope)

    def stock_layer(self, node: nn.Module, x_seq: torch.Tensor, state: object) -> torch.Tensor:
        spec = charge_spec(node)
        weights = torch.empty_like(x_seq, memory_format=torch.contiguous_format)
        run = exact_forward(node, x_seq, on_charge=lambda t, h: self._distance(h, spec.v_threshold, weights[t]))
        weights.neg_().add_(self.gamma).mul_(spec.input_gain / self.gamma ** 2)
        return TimeMeanGradientFunction.apply(x_seq, run.spikes, weights)
