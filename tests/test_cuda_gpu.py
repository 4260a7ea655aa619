"""The CuPy kernels on a GPU (skipped without CUDA or CuPy).

What is compared:
- float32 forward: bit-identical to the torch op run on the same values on the CPU (the kernels' defined
  reference), and to the torch op on CUDA tensors for IF and PLIF. For LIF the torch op on CUDA divides
  by τ as a multiplication by the reciprocal (torch's shortcut for a CPU-scalar divisor), which can move
  a potential by one ulp; there only near-equality is required.
- float16/bfloat16 forward: bit-identical to the float32 torch op on the upcast input, cast back.
- backward: bit-identical to the torch op's backward on CUDA, in all three dtypes, and through autograd.
- SpikingJelly 2.0.0's stock neurons on CUDA (their own kernels): the same spikes up to a tiny fraction.
"""
from __future__ import annotations

import pytest
import torch

from sj_rga.mapping import charge_spec, neuron_mapping
from sj_rga.ops import backends, rate_neuron, torch_backend
from sj_rga.ops.spec import ChargeSpec, SlopeSpec

from neurons import KINDS, make_neuron, stock_surrogate

cupy_backend = backends.cupy_backend()
pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or not hasattr(cupy_backend, "forward"),
    reason="needs a CUDA device and CuPy (pip install 'sj-rga[cuda13]')",
)

SIZES = [(1, (1,)), (5, (7,)), (8, (3, 1001)), (16, (4097,))]
RESETS = [None, 0.0, -0.3]


def spec_for(kind: str, v_reset, device: str) -> ChargeSpec:
    if kind == "if":
        return ChargeSpec(kind="if", v_threshold=0.8, v_reset=v_reset)
    common = dict(v_threshold=0.8, v_reset=v_reset, decay_input=kind.endswith("_decay"))
    if kind.startswith("lif"):
        return ChargeSpec(kind="lif", tau=1.7, **common)
    return ChargeSpec(kind="plif", decay=torch.tensor(0.3, device=device).sigmoid(), **common)


def on_cpu(spec: ChargeSpec) -> ChargeSpec:
    if spec.decay is None:
        return spec
    return ChargeSpec(kind=spec.kind, v_threshold=spec.v_threshold, v_reset=spec.v_reset,
                      decay_input=spec.decay_input, decay=spec.decay.cpu())


def sequence(steps: int, shape: tuple, dtype=torch.float32):
    x = (torch.randn(steps, *shape, device="cuda") * 1.5 + 0.4).to(dtype)
    v = (torch.rand(shape, device="cuda") * 1.6 - 0.4).to(dtype)
    return x, v


def assert_all_equal(actual, expected) -> None:
    for a, e in zip(actual, expected):
        assert (a is None) == (e is None)
        if e is not None:
            assert a.dtype == e.dtype and torch.equal(a.cpu(), e.cpu())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("v_reset", RESETS, ids=["soft", "hard0", "hard-0.3"])
def test_forward_float32_equals_torch_op(kind, v_reset):
    spec = spec_for(kind, v_reset, "cuda")
    for steps, shape in SIZES:
        x, v = sequence(steps, shape)
        actual = cupy_backend.forward(x, v, spec, 1.0, True)
        assert_all_equal(actual, torch_backend.forward(x.cpu(), v.cpu(), on_cpu(spec), 1.0, True))
        on_cuda = torch_backend.forward(x, v, spec, 1.0, True)
        if kind.startswith("lif"):
            assert (actual[0] != on_cuda[0]).float().mean() < 1e-3
        else:
            assert_all_equal(actual, on_cuda)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_forward_16_bit_equals_float32_op_rounded_once(dtype, kind):
    spec = spec_for(kind, 0.0, "cuda")
    x, v = sequence(8, (3, 1001), dtype)
    spikes, v_last, v_seq, mean = torch_backend.forward(x.float().cpu(), v.float().cpu(), on_cpu(spec), 1.0, True)
    assert_all_equal(cupy_backend.forward(x, v, spec, 1.0, True),
                     (spikes.to(dtype), v_last.to(dtype), v_seq.to(dtype), mean))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_backward_equals_torch_op(dtype):
    slope = SlopeSpec(lam=1.0 - 1.0 / 1.7, theta=0.8, input_gain=1.0 / 1.7, beta=2.0, gamma=0.2)
    current = torch.randn(3, 1001, device="cuda") * 1.5
    grad = torch.randn(8, 3, 1001, device="cuda").to(dtype)
    assert torch.equal(cupy_backend.backward(grad, current, slope), torch_backend.backward(grad, current, slope))


def test_autograd_through_the_kernels_non_contiguous_and_side_stream(monkeypatch):
    spec = spec_for("lif_decay", 0.0, "cuda")
    slope = SlopeSpec(lam=1.0 - 1.0 / 1.7, theta=0.8, input_gain=1.0 / 1.7, beta=2.0, gamma=0.2)
    base, v = sequence(6, (33, 5))
    x = base.transpose(1, 2).contiguous().transpose(1, 2)  # [6, 33, 5], not contiguous
    grads = {}
    for choice in ("torch", "cupy"):
        monkeypatch.setenv("SJ_RGA_BACKEND", choice)
        leaf = x.detach().requires_grad_()
        stream = torch.cuda.Stream()
        with torch.cuda.stream(stream):
            spikes, _, _ = rate_neuron(leaf, v, spec, slope)
            (spikes * torch.linspace(-1, 1, spikes.numel(), device="cuda").view_as(spikes)).sum().backward()
        torch.cuda.synchronize()
        grads[choice] = leaf.grad
    torch.testing.assert_close(grads["cupy"], grads["torch"])


def test_opting_in_takes_the_kernels_for_cuda_tensors(monkeypatch):
    monkeypatch.setenv("SJ_RGA_BACKEND", "cupy")
    assert backends.select(torch.zeros(2, 3, device="cuda")) is cupy_backend
    monkeypatch.setenv("SJ_RGA_BACKEND", "auto")
    expected = cupy_backend if backends.CUPY_VERIFIED_ON_GPU else torch_backend
    assert backends.select(torch.zeros(2, 3, device="cuda")) is expected
    assert backends.select(torch.zeros(2, 3, device="cuda", dtype=torch.float64)) is torch_backend


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("v_reset", RESETS, ids=["soft", "hard0", "hard-0.3"])
def test_forward_matches_spikingjelly_stock_neurons(kind, v_reset):
    node = make_neuron(kind, stock_surrogate(), v_reset=v_reset, v_threshold=0.8).cuda()
    x, _ = sequence(8, (64, 1000))
    with torch.no_grad():
        stock_spikes = node(x)
    spec = charge_spec(node)
    v0 = torch.full_like(x[0], 0.0 if v_reset is None else v_reset)  # a fresh neuron starts at its reset value
    spikes, v_last, _, _ = cupy_backend.forward(x, v0, spec, neuron_mapping(node).input_gain, False)
    assert 0 < float(stock_spikes.mean()) < 1
    assert float((spikes != stock_spikes).float().mean()) < 1e-3
    assert float(((v_last - node.v).abs() > 1e-4).float().mean()) < 1e-3
