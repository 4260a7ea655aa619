"""Autograd Functions for a spiking layer: the fused RGA op, and a factor attached to values computed elsewhere."""
from __future__ import annotations

from typing import Optional

import torch

from . import backends
from .spec import ChargeSpec, SlopeSpec


class RateNeuronFunction(torch.autograd.Function):
    """Exact multi-step IF/LIF/PLIF forward; RGA backward ``dL/dX[t] = dL/dS[t] · g(Ī) · dI/dX``.

    The carried-in state V[0] and the returned potentials get no gradient. Saved for backward: Ī only.
    """

    @staticmethod
    def forward(ctx, x_seq: torch.Tensor, v: torch.Tensor, charge: ChargeSpec, slope: SlopeSpec, store_v_seq: bool):
        backend = backends.select(x_seq)
        spikes, v_last, v_seq, mean_current = backend.forward(x_seq, v, charge, slope.input_gain, store_v_seq)
        ctx.save_for_backward(mean_current)
        ctx.slope = slope
        ctx.backend = backend
        ctx.mark_non_differentiable(v_last)
        if v_seq is None:
            return spikes, v_last
        ctx.mark_non_differentiable(v_seq)
        return spikes, v_last, v_seq

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor, *unused: Optional[torch.Tensor]):
        (mean_current,) = ctx.saved_tensors
        return ctx.backend.backward(grad_spikes.contiguous(), mean_current, ctx.slope), None, None, None, None


class ScaledGradientFunction(torch.autograd.Function):
    """Forward: ``value`` (spikes or rates computed elsewhere, without autograd). Backward:
    ``dL/dx = dL/dvalue · factor``, ``factor`` broadcast against the gradient (e.g. ``[B, ...]`` against
    ``[T, B, ...]``: the same factor at every step). The time-uniform estimators' backward (method §2)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, value: torch.Tensor, factor: torch.Tensor):
        ctx.save_for_backward(factor)
        return value.clone()

    @staticmethod
    def backward(ctx, grad_value: torch.Tensor):
        (factor,) = ctx.saved_tensors
        return grad_value * factor.to(grad_value.dtype), None, None


def rate_neuron(
    x_seq: torch.Tensor, v: torch.Tensor, charge: ChargeSpec, slope: SlopeSpec, store_v_seq: bool = False
) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Multi-step rate op on ``x_seq`` ``[T, ...]`` with state ``v`` ``[...]``: (spikes, V[T], V[1..T] or None)."""
    out = RateNeuronFunction.apply(x_seq, v.detach(), charge, slope, store_v_seq)
    return (out[0], out[1], out[2] if store_v_seq else None)
