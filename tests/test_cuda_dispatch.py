"""Which backend runs the rate op (SJ_RGA_BACKEND), and that CuPy stays optional."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from sj_rga.ops import backends, torch_backend


def test_auto_and_torch_take_the_torch_op_on_cpu(monkeypatch):
    for choice in ("auto", "torch", " Torch ", ""):
        monkeypatch.setenv("SJ_RGA_BACKEND", choice)
        assert backends.select(torch.zeros(2, 3)) is torch_backend


def test_unknown_backend_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("SJ_RGA_BACKEND", "triton")
    with pytest.raises(ValueError, match="SJ_RGA_BACKEND must be one of"):
        backends.select(torch.zeros(2, 3))


def test_forcing_cupy_on_a_cpu_tensor_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("SJ_RGA_BACKEND", "cupy")
    try:
        backend = backends.select(torch.zeros(2, 3))
    except RuntimeError as error:  # CuPy not installed here
        assert "CuPy cannot be imported" in str(error)
        return
    with pytest.raises(RuntimeError, match="CUDA tensors only"):
        backend.forward(torch.zeros(2, 3), torch.zeros(3), None, 1.0, False)


def test_importing_sj_rga_does_not_import_cupy():
    code = "import sys, sj_rga, sj_rga.ops; assert 'cupy' not in sys.modules, 'cupy imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
