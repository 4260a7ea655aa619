"""The rate op on CUDA tensors through the CuPy kernels of ``cuda/rate_neuron.cu``.

Same ``forward`` / ``backward`` as :mod:`sj_rga.ops.torch_backend` for float32, float16 and bfloat16
CUDA tensors (time-major ``[T, ...]``, any layout). float32 results are bit-identical to the torch
op run on the CPU; float16/bfloat16 are computed in float32 inside and rounded once per output.
Importing this module imports CuPy, so only :mod:`sj_rga.ops.backends` imports it, on demand.

The source is compiled by NVRTC on first use (all three storage types in one module) and kept for
the life of the process; kernels run on the tensor's device and on torch's current CUDA stream.
"""
from __future__ import annotations

import functools
from typing import Optional, Sequence

import cupy
import numpy
import torch

from . import kernels
from .spec import ChargeSpec, SlopeSpec

#: NVRTC options. The kernels round every operation explicitly; --fmad=false keeps it so under edits.
OPTIONS = ("--fmad=false",)

_SCALARS = {"ptr": numpy.uint64, "i64": numpy.int64, "i32": numpy.int32, "f32": numpy.float32}


@functools.cache
def module() -> cupy.RawModule:
    """The compiled kernels (compiled once per process, on first call)."""
    return cupy.RawModule(code=kernels.SOURCE.read_text(), options=OPTIONS)


def _launch(name: str, blocks: int, threads: int, args: Sequence[kernels.Arg]) -> None:
    try:
        kernel = module().get_function(name)
    except cupy.cuda.compiler.CompileException as error:
        raise RuntimeError(
            f"NVRTC could not compile {kernels.SOURCE} ({error}). It needs the CUDA headers cuda_fp16.h and "
            "cuda_bf16.h (a CUDA toolkit, or pip install 'cupy-cuda13x[ctk]'); set SJ_RGA_BACKEND=torch to "
            "run the torch op instead"
        ) from error
    kernel((blocks,), (threads,), tuple(_SCALARS[kind](value) for kind, value in args))


def _check(tensor: torch.Tensor) -> None:
    if not tensor.is_cuda:
        raise RuntimeError(f"the CuPy backend runs on CUDA tensors only, got a tensor on {tensor.device}; "
                           "use SJ_RGA_BACKEND=auto or torch for CPU tensors")


def _on(device: torch.device) -> tuple[cupy.cuda.Device, cupy.cuda.ExternalStream]:
    """CuPy's device and torch's current stream on ``device``, to enter before a launch."""
    stream = torch.cuda.current_stream(device)
    return cupy.cuda.Device(device.index), cupy.cuda.ExternalStream(stream.cuda_stream, device.index)


def forward(
    x_seq: torch.Tensor, v: torch.Tensor, spec: ChargeSpec, input_gain: float, store_v_seq: bool
) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
    """Run T steps on the GPU: spikes ``[T, ...]``, final V ``[...]``, V after every step or None, Ī ``[...]``."""
    _check(x_seq)
    device, stream = _on(x_seq.device)
    with device, stream:
        return kernels.forward(x_seq, v, spec, input_gain, store_v_seq, _launch)


def backward(grad_spikes: torch.Tensor, mean_current: torch.Tensor, slope: SlopeSpec) -> torch.Tensor:
    """dL/dX[t] = dL/dS[t] · g(Ī) · dI/dX on the GPU, ``[T, ...]`` like ``grad_spikes``."""
    _check(grad_spikes)
    device, stream = _on(grad_spikes.device)
    with device, stream:
        return kernels.backward(grad_spikes, mean_current, slope, _launch)
