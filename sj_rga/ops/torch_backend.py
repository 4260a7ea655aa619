"""The rate op in plain torch: the reference the CuPy kernels are held to, and the CPU path.

Inputs are time-major ``[T, ...]``; every step runs SpikingJelly's own charge/fire/reset arithmetic in
the input's dtype, so spikes and potentials equal the stock neurons' bit for bit. Only the mean input
current Ī (one value per neuron) is kept for backward.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ..surrogate import rate_slope
from .spec import ChargeSpec, SlopeSpec


def charge(x: torch.Tensor, v: torch.Tensor, spec: ChargeSpec) -> torch.Tensor:
    """H[t] from V[t-1] and X[t], in SpikingJelly's floating-point form for the installed release."""
    if spec.kind == "if":
        return v + x
    r = spec.reset_value
    if spec.kind == "lif":
        tau = spec.tau
        if spec.legacy and spec.reset_is_zero:
            return v + (x - v) / tau if spec.decay_input else v * (1.0 - 1.0 / tau) + x
        return v + (x - (v - r)) / tau if spec.decay_input else v - (v - r) / tau + x
    q = spec.decay
    if spec.legacy and spec.reset_is_zero:
        return v + (x - v) * q if spec.decay_input else v * (1.0 - q) + x
    return v + (x - (v - r)) * q if spec.decay_input else v - (v - r) * q + x


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """Ī is summed in float32 for half types, in the input's own dtype otherwise."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def mean_current(x_seq: torch.Tensor, input_gain: float) -> torch.Tensor:
    """Ī ``[...]`` of a layer input ``[T, ...]``: X summed step by step (float32 for half types), times
    dI/dX / T; the same arithmetic as :func:`forward` uses."""
    total = torch.zeros(x_seq.shape[1:], dtype=accumulation_dtype(x_seq.dtype), device=x_seq.device)
    for x in x_seq:
        total += x
    return total * (input_gain / x_seq.shape[0])


def _reset_(h: torch.Tensor, spike: torch.Tensor, spec: ChargeSpec, scratch: torch.Tensor) -> torch.Tensor:
    """V[t] from H[t] and S[t], in place in ``h``, with SpikingJelly's own products and sums:
    ``H - S·v_threshold`` (soft) or ``(1 - S)·H + S·v_reset`` (hard). ``scratch`` is a buffer shaped like ``h``."""
    if spec.v_reset is None:
        return h.sub_(torch.mul(spike, spec.v_threshold, out=scratch))
    h.mul_(torch.neg(spike, out=scratch).add_(1.0))  # 1 - S is exact for S in {0, 1}
    return h.add_(torch.mul(spike, spec.v_reset, out=scratch))


def forward(
    x_seq: torch.Tensor, v: torch.Tensor, spec: ChargeSpec, input_gain: float, store_v_seq: bool,
    on_charge: Optional[Callable[[int, torch.Tensor], None]] = None,
) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
    """Run T steps. Returns spikes ``[T, ...]``, final V, V after every step (or None) and Ī ``[...]``.

    Spikes (and V after every step) are written into tensors allocated once; each step allocates only H.
    ``v`` is never written to. ``on_charge(t, H[t])`` (optional) sees the charged potential of every step
    before fire and reset; it must not keep or change ``H[t]``, which the reset overwrites.
    """
    spikes = torch.empty_like(x_seq, memory_format=torch.contiguous_format)
    v_steps = torch.empty_like(spikes, dtype=torch.promote_types(v.dtype, x_seq.dtype)) if store_v_seq else None
    scratch = torch.empty_like(spikes[0])
    total = torch.zeros(x_seq.shape[1:], dtype=accumulation_dtype(x_seq.dtype), device=x_seq.device)
    for t, x in enumerate(x_seq):
        h = charge(x, v, spec)
        if on_charge is not None:
            on_charge(t, h)
        spike = torch.ge(h, spec.v_threshold, out=spikes[t])
        v = _reset_(h, spike, spec, scratch)
        if v_steps is not None:
            v_steps[t].copy_(v)
        total += x
    mean_current = total * (input_gain / x_seq.shape[0])
    return spikes, v, v_steps, mean_current


def backward(grad_spikes: torch.Tensor, mean_current: torch.Tensor, slope: SlopeSpec) -> torch.Tensor:
    """dL/dX[t] = dL/dS[t] · g(Ī) · dI/dX, the same factor for every t (no 1/T, no recurrence)."""
    factor = rate_slope(mean_current, slope.lam, slope.theta, slope.beta, slope.gamma) * slope.input_gain
    return grad_spikes * factor.to(grad_spikes.dtype)
