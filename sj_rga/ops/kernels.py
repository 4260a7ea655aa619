"""How the CUDA kernels of ``cuda/rate_neuron.cu`` are called, whatever launches them.

The kernels take flat time-major ``[T, N]`` buffers and plain scalars. This module turns tensors of any
shape ``[T, ...]`` plus a :class:`ChargeSpec` / :class:`SlopeSpec` into those arguments, allocates the
outputs and hands the launch to a function supplied by the caller: CuPy on a GPU
(:mod:`sj_rga.ops.cupy_backend`), or ctypes over the host-compiled source in the tests. It never
imports CuPy.

Storage types: float32, float16 and bfloat16 (all arithmetic in float32 inside the kernels). float64
is not supported by the kernels: :func:`sj_rga.ops.backends.select` sends float64 tensors to the torch
op, and calling this module with one is a ``TypeError``.
"""
from __future__ import annotations

import math
from enum import IntEnum
from pathlib import Path
from typing import Callable, Literal, Optional, Sequence, Union

import torch

from ..surrogate import check_leak, check_smoothing, check_threshold
from .spec import ChargeSpec, SlopeSpec

#: The CUDA C source (its host stand-ins are in ``host_shim.h`` next to it).
SOURCE: Path = Path(__file__).with_name("cuda") / "rate_neuron.cu"

#: Threads per block; one thread per neuron.
BLOCK: int = 256

#: Tensor dtype -> suffix of the kernels' names.
STORAGE: dict[torch.dtype, str] = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}

ArgKind = Literal["ptr", "i64", "i32", "f32"]
#: One kernel argument: its C type (pointer, long long, int, float) and its value (an address for "ptr").
Arg = tuple[ArgKind, Union[int, float]]
#: ``launch(kernel_name, blocks, threads_per_block, args)``: run a kernel of rate_neuron.cu on a 1-D grid.
Launch = Callable[[str, int, int, Sequence[Arg]], None]


class Form(IntEnum):
    """The charge forms of rate_neuron.cu (``SJ_RGA_FORM_*``): H from V, X, the reset value r and c."""

    IF = 0  # V + X
    DIV_DECAY_INPUT = 1  # V + (X - (V - r)) / c, c = tau
    DIV = 2  # V - (V - r) / c + X, c = tau
    MUL_DECAY_INPUT = 3  # V + (X - (V - r)) * c, c = sigmoid(w)
    MUL = 4  # V - (V - r) * c + X, c = sigmoid(w)
    SCALED = 5  # V * c + X, c = 1 - 1/tau or 1 - sigmoid(w)


def kernel_name(op: Literal["forward", "backward"], dtype: torch.dtype) -> str:
    """``rate_<op>_<storage>``, the extern "C" name of a kernel; a clear error for unsupported dtypes."""
    if dtype not in STORAGE:
        raise TypeError(
            f"the CUDA kernels of the rate op support float32, float16 and bfloat16, got {dtype}; "
            "float64 tensors run the torch op (SJ_RGA_BACKEND=auto or torch)"
        )
    return f"rate_{op}_{STORAGE[dtype]}"


def blocks(n: int) -> int:
    """Blocks of :data:`BLOCK` threads covering ``n`` neurons."""
    return -(-n // BLOCK)


def charge_form(spec: ChargeSpec) -> tuple[Form, float, float]:
    """(form, c, r) reproducing :func:`sj_rga.ops.torch_backend.charge` for ``spec`` in float32.

    Constants are rounded as torch rounds them: a Python float once to float32 inside the kernel, and
    PLIF's decay (a tensor) by torch itself. SpikingJelly 0.0.0.0.14's ``V + (X - V) / tau`` (zero reset
    value) is the DIV_DECAY_INPUT form with r = 0, bit for bit, since V - 0 == V in IEEE arithmetic.
    """
    r = spec.reset_value
    if spec.kind == "if":
        return Form.IF, 1.0, r
    legacy_zero = spec.legacy and spec.reset_is_zero
    if spec.kind == "lif":
        tau = float(spec.tau)
        if legacy_zero and not spec.decay_input:
            return Form.SCALED, 1.0 - 1.0 / tau, 0.0
        return (Form.DIV_DECAY_INPUT if spec.decay_input else Form.DIV), tau, r
    q = spec.decay.detach()
    if legacy_zero and not spec.decay_input:
        return Form.SCALED, float((1.0 - q).to(torch.float32)), 0.0
    return (Form.MUL_DECAY_INPUT if spec.decay_input else Form.MUL), float(q.to(torch.float32)), r


def _pointer(tensor: Optional[torch.Tensor]) -> Arg:
    return ("ptr", 0 if tensor is None else tensor.data_ptr())


def forward(
    x_seq: torch.Tensor, v: torch.Tensor, spec: ChargeSpec, input_gain: float, store_v_seq: bool, launch: Launch
) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
    """The rate op's forward through ``rate_forward_<storage>``; same contract as the torch op.

    ``x_seq``: input ``[T, ...]`` (any layout, made contiguous once); ``v``: carried-in potential of
    shape ``x_seq.shape[1:]`` (or broadcastable to it) and the same dtype; ``input_gain``: dI/dX.
    Returns spikes ``[T, ...]`` (0/1), the final potential ``[...]``, the potential after every step
    ``[T, ...]`` (only when ``store_v_seq``, else None) and Ī ``[...]`` in float32.
    """
    name = kernel_name("forward", x_seq.dtype)
    if x_seq.dim() < 1 or x_seq.shape[0] < 1:
        raise ValueError(f"the rate op needs a time-major [T, ...] input with T >= 1, got shape {tuple(x_seq.shape)}")
    if v.dtype != x_seq.dtype or v.device != x_seq.device:
        raise TypeError(f"the carried-in state must match the input's dtype and device: got {v.dtype} on "
                        f"{v.device} for an input of {x_seq.dtype} on {x_seq.device}")
    steps, shape = x_seq.shape[0], x_seq.shape[1:]
    neurons = math.prod(shape)
    x = x_seq.contiguous()
    v0 = v.expand(shape).contiguous()
    spikes = torch.empty_like(x)
    v_last = torch.empty_like(v0)
    v_seq = torch.empty_like(x) if store_v_seq else None
    mean_current = torch.empty(shape, dtype=torch.float32, device=x.device)
    form, c, r = charge_form(spec)
    hard_reset = spec.v_reset is not None
    args: list[Arg] = [
        _pointer(x), _pointer(v0), _pointer(spikes), _pointer(v_last), _pointer(v_seq), _pointer(mean_current),
        ("i64", steps), ("i64", neurons), ("i32", int(form)), ("f32", c), ("f32", r),
        ("f32", float(spec.v_threshold)), ("i32", int(hard_reset)), ("f32", spec.reset_value),
        ("f32", float(input_gain) / steps),
    ]
    if neurons:
        launch(name, blocks(neurons), BLOCK, args)
    return spikes, v_last, v_seq, mean_current


def slope_constants(slope: SlopeSpec) -> tuple[float, float, float, float]:
    """(knee, upper, gamma, middle) of g, computed in double as :func:`sj_rga.surrogate.rate_slope` does.

    g(I) = gamma on [0, knee], middle on (knee, upper], 0 elsewhere, with knee = (1 - λ)θ and upper = βθ.
    """
    check_leak(slope.lam)
    check_threshold(slope.theta)
    check_smoothing(slope.beta, slope.gamma)
    lam, theta, beta, gamma = float(slope.lam), float(slope.theta), float(slope.beta), float(slope.gamma)
    middle = (1.0 - gamma * theta + gamma * theta * lam) / ((beta + lam - 1.0) * theta)
    return (1.0 - lam) * theta, beta * theta, gamma, middle


def backward(grad_spikes: torch.Tensor, mean_current: torch.Tensor, slope: SlopeSpec, launch: Launch) -> torch.Tensor:
    """dL/dX ``[T, ...]`` = dL/dS ``[T, ...]`` · g(Ī) · dI/dX through ``rate_backward_<storage>``.

    ``mean_current``: Ī ``[...]`` in float32, as :func:`forward` returns it. The factor g(Ī)·dI/dX is
    rounded to the gradient's dtype before the product, as the torch op does, so the result is
    bit-identical to :func:`sj_rga.ops.torch_backend.backward` in every supported dtype.
    """
    name = kernel_name("backward", grad_spikes.dtype)
    if mean_current.dtype != torch.float32:
        raise TypeError(f"the backward kernel takes the mean current in float32, got {mean_current.dtype}")
    if mean_current.shape != grad_spikes.shape[1:]:
        raise ValueError(f"mean current of shape {tuple(mean_current.shape)} does not match gradients "
                         f"of shape {tuple(grad_spikes.shape)}")
    grad = grad_spikes.contiguous()
    current = mean_current.contiguous()
    grad_x = torch.empty_like(grad)
    neurons = current.numel()
    knee, upper, gamma, middle = slope_constants(slope)
    args: list[Arg] = [
        _pointer(grad), _pointer(current), _pointer(grad_x), ("i64", grad.shape[0]), ("i64", neurons),
        ("f32", knee), ("f32", upper), ("f32", gamma), ("f32", middle), ("f32", float(slope.input_gain)),
    ]
    if neurons:
        launch(name, blocks(neurons), BLOCK, args)
    return grad_x
