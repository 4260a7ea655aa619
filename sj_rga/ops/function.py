"""One autograd Function for the RGA backward of a spiking layer, whatever computes its forward."""
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


class RateGradientFunction(torch.autograd.Function):
    """Attach the RGA backward to spikes computed elsewhere (a registered neuron's own forward)."""

    @staticmethod
    def forward(ctx, x_seq: torch.Tensor, spikes: torch.Tensor, mean_current: torch.Tensor, slope: SlopeSpec):
        ctx.save_for_backward(mean_current)
        ctx.slope = slope
        return spikes.clone()

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        (mean_current,) = ctx.saved_tensors
        return backends.torch_backend.backward(grad_spikes, mean_current, ctx.slope), None, None, None


def rate_neuron(
    x_seq: torch.Tensor, v: torch.Tensor, charge: ChargeSpec, slope: SlopeSpec, store_v_seq: bool = False
) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Multi-step rate op on ``x_seq`` ``[T, ...]`` with state ``v`` ``[...]``: (spikes, V[T], V[1..T] or None)."""
    out = RateNeuronFunction.apply(x_seq, v.detach(), charge, slope, store_v_seq)
    return (out[0], out[1], out[2] if store_v_seq else None)
