"""The per-step estimators (PDSG, ASSG; method §2): BPTT through the neuron's own dynamics with a surrogate
derivative of their own, pluggable per step.

One loop serves both: at every step t the layer charges H[t] from V[t−1] and X[t] (SpikingJelly's
arithmetic, with autograd), fires S[t] = 1[H[t] ≥ θ] with dS/dH = the estimator's derivative at
u[t] = H[t] − θ (θ = v_threshold), and resets V[t] from H[t] and S[t] (S detached in the reset when asked).
The carried-in state V[0] gets no gradient.
"""
from __future__ import annotations

import abc
from typing import Protocol

import torch
import torch.nn as nn

from ..mapping import charge_spec
from ..neuron import initial_state, store_state
from ..ops.torch_backend import charge
from .mode import LayerEstimator


class StepDerivative(Protocol):
    """dS/du at one step, from that step's u[t] and H[t] (both without gradient): a tensor shaped like u."""

    def __call__(self, t: int, u: torch.Tensor, h: torch.Tensor) -> torch.Tensor: ...


class SpikeFunction(torch.autograd.Function):
    """Forward: S = 1[H ≥ θ] (exactly the stock spike). Backward: dL/dH = dL/dS · ``derivative``."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, threshold: float, derivative: torch.Tensor):
        ctx.save_for_backward(derivative)
        return torch.ge(h, threshold).to(h.dtype)

    @staticmethod
    def backward(ctx, grad_spike: torch.Tensor):
        (derivative,) = ctx.saved_tensors
        return grad_spike * derivative.to(grad_spike.dtype), None, None


def bptt_layer(node: nn.Module, x_seq: torch.Tensor, derivative: StepDerivative, detach_reset: bool) -> torch.Tensor:
    """Spikes ``[T, B, ...]`` of a stock IF/LIF/PLIF neuron, with BPTT through ``derivative`` (see the module
    docstring). ``v`` (and ``v_seq``) are left as the stock forward leaves them, without autograd graph."""
    spec = charge_spec(node)
    v = initial_state(node, x_seq).detach()
    spikes, potentials = [], []
    for t, x in enumerate(x_seq):
        h = charge(x, v, spec)
        with torch.no_grad():
            slope = derivative(t, h - spec.v_threshold, h)
        spike = SpikeFunction.apply(h, spec.v_threshold, slope)
        fired = spike.detach() if detach_reset else spike
        v = h - fired * spec.v_threshold if spec.v_reset is None else (1.0 - fired) * h + fired * spec.v_reset
        spikes.append(spike)
        if node.store_v_seq:
            potentials.append(v.detach())
    store_state(node, v.detach(), torch.stack(potentials) if node.store_v_seq else None)
    return torch.stack(spikes)


class PerStepEstimator(LayerEstimator):
    """An estimator that is BPTT through the stock dynamics with a surrogate derivative of its own."""

    @abc.abstractmethod
    def derivative(self, node: nn.Module, x_seq: torch.Tensor, state: object) -> StepDerivative:
        """The surrogate derivative for one call of the layer (fresh per call; ``state``: its statistics)."""

    @abc.abstractmethod
    def detach_reset(self, node: nn.Module) -> bool:
        """Whether S is detached in the reset."""

    def stock_layer(self, node: nn.Module, x_seq: torch.Tensor, state: object) -> torch.Tensor:
        return bptt_layer(node, x_seq, self.derivative(node, x_seq, state), self.detach_reset(node))
