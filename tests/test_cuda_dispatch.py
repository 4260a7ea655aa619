"""Which backend runs the rate op (SJ_RGA_BACKEND), and that CuPy stays optional."""
from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

import sj_rga.ops
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
    """SpikingJelly 0.0.0.0.14 imports CuPy itself when it can; sj_rga must add no import of its own."""
    code = ("import sys; import spikingjelly.activation_based.neuron; before = 'cupy' in sys.modules; "
            "import sj_rga, sj_rga.ops; assert before or 'cupy' not in sys.modules, 'sj_rga imported cupy'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_auto_takes_the_torch_op_on_cuda_until_the_kernels_pass_on_a_gpu(monkeypatch):
    """`auto` leaves the unverified kernels alone even where CuPy imports; SJ_RGA_BACKEND=cupy opts in."""
    kernels_module = types.ModuleType("fake_cupy_backend")
    monkeypatch.setattr(backends, "cupy_backend", lambda: kernels_module)
    cuda_like = types.SimpleNamespace(is_cuda=True, dtype=torch.float32)
    monkeypatch.setenv("SJ_RGA_BACKEND", "auto")
    assert not backends.CUPY_VERIFIED_ON_GPU
    assert backends.select(cuda_like) is torch_backend
    monkeypatch.setenv("SJ_RGA_BACKEND", "cupy")
    assert backends.select(cuda_like) is kernels_module
    monkeypatch.setenv("SJ_RGA_BACKEND", "auto")
    monkeypatch.setattr(backends, "CUPY_VERIFIED_ON_GPU", True)  # what recording a GPU pass would switch on
    assert backends.select(cuda_like) is kernels_module
    assert backends.select(types.SimpleNamespace(is_cuda=True, dtype=torch.float64)) is torch_backend


def test_the_verified_flag_agrees_with_benchmarks_results():
    results = (Path(__file__).resolve().parents[1] / "benchmarks" / "RESULTS.md").read_text()
    section = results.split("## CuPy kernels of the rate op", 1)[1].split("\n## ", 1)[0]
    not_run = "have not been run" in section
    assert backends.CUPY_VERIFIED_ON_GPU == (not not_run), "record the GPU test run in RESULTS.md with the flag"


def test_without_cupy_auto_takes_the_torch_op_and_cupy_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    monkeypatch.delitem(sys.modules, "sj_rga.ops.cupy_backend", raising=False)
    monkeypatch.delattr(sj_rga.ops, "cupy_backend", raising=False)
    backends.cupy_backend.cache_clear()
    try:
        assert isinstance(backends.cupy_backend(), ImportError)
        cuda_like = types.SimpleNamespace(is_cuda=True, dtype=torch.float32)
        assert backends.select(cuda_like) is torch_backend
        monkeypatch.setenv("SJ_RGA_BACKEND", "cupy")
        with pytest.raises(RuntimeError, match="CuPy cannot be imported"):
            backends.select(cuda_like)
    finally:
        backends.cupy_backend.cache_clear()
