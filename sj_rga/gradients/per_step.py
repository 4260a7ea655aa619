"""The per-step estimators (PDSG, ASSG; method §2): BPTT through the neuron's own dynamics with a surrogate
derivative of their own, pluggable.

One BPTT serves both. The forward is the stock one (the rate op's loop, SpikingJelly's arithmetic), which
also keeps the charged potential H[t] of every step; the estimator turns u[t] = H[t] − θ (θ = v_threshold)
into its derivative dS/du at every step, without gradient; the backward then runs the recursion of the stock
dynamics back through time,

    dL/dH[t]   = dL/dV[t] · ∂V/∂H + (dL/dS[t] + dL/dV[t] · ∂V/∂S) · dS/du[t]
    dL/dX[t]   = dL/dH[t] · dH/dX,        dL/dV[t−1] = dL/dH[t] · dH/dV

with ∂V/∂H = 1 − S[t], ∂V/∂S = V_reset − H[t] (hard reset) or 1 and −θ (soft reset), ∂V/∂S taken as 0 when
the reset is detached, dH/dX and dH/dV from the charge equation (method §1.3). The state V[0] carried in
gets no gradient. This is the backward autograd would take through the stock loop, without its graph.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Optional, Protocol

import torch
import torch.nn as nn

from ..mapping import charge_spec
from ..neuron import exact_forward
from .mode import LayerEstimator


class SurrogateDerivative(Protocol):
    """dS/du at every step ``[T, B, ...]`` from u = H − θ and H (both ``[T, B, ...]``, without gradient)."""

    def __call__(self, u: torch.Tensor, h: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class Dynamics:
    """The constants of one layer's recursion: dH/dV, dH/dX, θ, V_reset (None: soft reset) and whether the
    reset is detached."""

    potential_gain: float
    input_gain: float
    v_threshold: float
    v_reset: Optional[float]
    detach_reset: bool


class BPTTFunction(torch.autograd.Function):
    """Forward: the stock ``spikes``. Backward: BPTT through the stock dynamics with dS/du = ``derivative``."""

    @staticmethod
    def forward(ctx, x_seq: torch.Tensor, spikes: torch.Tensor, charged: Optional[torch.Tensor],
                derivative: torch.Tensor, dynamics: Dynamics):
        ctx.save_for_backward(spikes, charged, derivative)
        ctx.dynamics = dynamics
        return spikes.clone()

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        spikes, charged, derivative = ctx.saved_tensors
        d: Dynamics = ctx.dynamics
        grad_x = torch.empty_like(grad_spikes)
        grad_v: Optional[torch.Tensor] = None
        for t in reversed(range(grad_spikes.shape[0])):
            grad_s = grad_spikes[t]
            if grad_v is None:
                grad_h = grad_s * derivative[t]
            else:
                if not d.detach_reset:
                    grad_s = grad_s - grad_v * d.v_threshold if d.v_reset is None \
                        else grad_s + grad_v * (d.v_reset - charged[t])
                grad_h = grad_v if d.v_reset is None else grad_v - grad_v * spikes[t]
                grad_h = grad_h + grad_s * derivative[t]
            torch.mul(grad_h, d.input_gain, out=grad_x[t])
            grad_v = grad_h * d.potential_gain
        return grad_x, None, None, None, None


def bptt_layer(node: nn.Module, x_seq: torch.Tensor, derivative: SurrogateDerivative, detach_reset: bool
               ) -> torch.Tensor:
    """Spikes ``[T, B, ...]`` of a stock IF/LIF/PLIF neuron, with BPTT through ``derivative`` (see the module
    docstring); ``v`` (and ``v_seq``) are left as the stock forward leaves them."""
    spec = charge_spec(node)
    charged = torch.empty_like(x_seq, memory_format=torch.contiguous_format)
    run = exact_forward(node, x_seq, on_charge=lambda t, h: charged[t].copy_(h))
    with torch.no_grad():
        slope = derivative(charged - spec.v_threshold, charged).to(x_seq.dtype)
    dynamics = Dynamics(spec.potential_gain, spec.input_gain, spec.v_threshold, spec.v_reset, detach_reset)
    keep_charged = not detach_reset and spec.v_reset is not None
    return BPTTFunction.apply(x_seq, run.spikes, charged if keep_charged else None, slope, dynamics)


class PerStepEstimator(LayerEstimator):
    """An estimator that is BPTT through the stock dynamics with a surrogate derivative of its own."""

    @abc.abstractmethod
    def derivative(self, node: nn.Module, x_seq: torch.Tensor, state: object) -> SurrogateDerivative:
        """The surrogate derivative for one call of the layer (``state``: its statistics, if any)."""

    @abc.abstractmethod
    def detach_reset(self, node: nn.Module) -> bool:
        """Whether S is detached in the reset."""

    def stock_layer(self, node: nn.Module, x_seq: torch.Tensor, state: object) -> torch.Tensor:
        return bptt_layer(node, x_seq, self.derivative(node, x_seq, state), self.detach_reset(node))
