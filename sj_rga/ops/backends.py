"""Which implementation runs the rate op: the torch reference, or the CuPy kernels on CUDA tensors.

``SJ_RGA_BACKEND`` = ``auto`` (default), ``torch`` or ``cupy``. The CuPy kernels are opt-in until they
have passed ``tests/test_cuda_gpu.py`` on a real GPU, recorded in ``benchmarks/RESULTS.md``
(:data:`CUPY_VERIFIED_ON_GPU`); so far they are checked only compiled for the host. Until then ``auto``
takes the torch op for every tensor, CUDA included; ``cupy`` takes the kernels for float32/float16/bfloat16
CUDA tensors and fails with a clear error where they cannot run (no CuPy, CPU tensors). Once verified,
``auto`` takes the kernels for those CUDA tensors when CuPy imports. CuPy is imported on the first CUDA
tensor that needs it, never by ``import sj_rga``.
"""
from __future__ import annotations

import functools
import os
from types import ModuleType
from typing import Union

import torch

from . import kernels, torch_backend

CHOICES = ("auto", "torch", "cupy")

#: True once the CuPy kernels have passed tests/test_cuda_gpu.py on a real GPU and benchmarks/RESULTS.md
#: records it; until then ``auto`` never takes them (``SJ_RGA_BACKEND=cupy`` opts in).
CUPY_VERIFIED_ON_GPU = False


def requested() -> str:
    """The backend asked for in ``SJ_RGA_BACKEND``; a clear error for anything else."""
    choice = os.environ.get("SJ_RGA_BACKEND", "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        raise ValueError(f"SJ_RGA_BACKEND must be one of {CHOICES}, got {choice!r}")
    return choice


@functools.cache
def cupy_backend() -> Union[ModuleType, ImportError]:
    """:mod:`sj_rga.ops.cupy_backend`, or the ImportError that stopped it (CuPy missing or broken)."""
    try:
        from . import cupy_backend as module
    except ImportError as error:
        return error
    return module


def select(x: torch.Tensor) -> ModuleType:
    """The module (``forward``/``backward`` functions) that computes the op for tensor ``x``."""
    choice = requested()
    kernels_fit = x.is_cuda and x.dtype in kernels.STORAGE
    if choice == "torch" or (choice == "auto" and not (CUPY_VERIFIED_ON_GPU and kernels_fit)):
        return torch_backend
    found = cupy_backend()
    if isinstance(found, ModuleType):
        return found
    if choice == "auto":
        return torch_backend
    raise RuntimeError(f"SJ_RGA_BACKEND=cupy but CuPy cannot be imported ({found}); install the extra "
                       "matching your CUDA (pip install 'sj-rga[cuda12]' or 'sj-rga[cuda13]')")
