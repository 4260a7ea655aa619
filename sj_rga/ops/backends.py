"""Which implementation runs the rate op: the torch reference, or the CuPy kernels on CUDA tensors.

``SJ_RGA_BACKEND`` = ``auto`` (default), ``torch`` or ``cupy`` forces the choice for tests and benchmarks.
``auto`` takes the CuPy kernels for a float32/float16/bfloat16 CUDA tensor when CuPy imports, and the
torch op otherwise (CPU tensors, float64, no CuPy). ``cupy`` fails with a clear error where the kernels
cannot run. CuPy is imported on the first CUDA tensor, never by ``import sj_rga``.
"""
from __future__ import annotations

import functools
import os
from types import ModuleType
from typing import Union

import torch

from . import kernels, torch_backend

CHOICES = ("auto", "torch", "cupy")


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
    if choice == "torch" or (choice == "auto" and not (x.is_cuda and x.dtype in kernels.STORAGE)):
        return torch_backend
    found = cupy_backend()
    if isinstance(found, ModuleType):
        return found
    if choice == "auto":
        return torch_backend
    raise RuntimeError(f"SJ_RGA_BACKEND=cupy but CuPy cannot be imported ({found}); install the extra "
                       "matching your CUDA (pip install 'sj-rga[cuda12]' or 'sj-rga[cuda13]')")
