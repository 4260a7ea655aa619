"""Which implementation runs the rate op: the torch reference, or the CuPy kernels on CUDA tensors.

``SJ_RGA_BACKEND`` = ``auto`` (default), ``torch`` or ``cupy`` forces the choice for tests and benchmarks.
"""
from __future__ import annotations

import os
from types import ModuleType

import torch

from . import torch_backend

CHOICES = ("auto", "torch", "cupy")


def requested() -> str:
    """The backend asked for in ``SJ_RGA_BACKEND``; a clear error for anything else."""
    choice = os.environ.get("SJ_RGA_BACKEND", "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        raise ValueError(f"SJ_RGA_BACKEND must be one of {CHOICES}, got {choice!r}")
    return choice


def select(x: torch.Tensor) -> ModuleType:
    """The module (``forward``/``backward`` functions) that computes the op for tensor ``x``."""
    requested()
    return torch_backend
