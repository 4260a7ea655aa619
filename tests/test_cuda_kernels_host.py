"""The CUDA kernels of sj_rga/ops/cuda/rate_neuron.cu, compiled on the host through host_shim.h.

What is compared:
- float32: spikes, final and per-step potentials and Ī are bit-identical to sj_rga.ops.torch_backend
  on the same float32 CPU tensors.
- float16/bfloat16: the kernels compute in float32 inside and round every result to the storage dtype
  as torch's own 16-bit arithmetic does, so they are bit-identical to torch_backend run in that dtype
  (the same arithmetic as SpikingJelly's stock neurons on 16-bit tensors).
- backward: bit-identical to torch_backend.backward in all three dtypes.
- the shim itself: half/bfloat16 conversions against torch's, and the thread indices of its launches.
"""
from __future__ import annotations

import itertools
import shutil
import subprocess

import pytest
import torch

from sj_rga.ops import kernels, torch_backend
from sj_rga.ops.spec import ChargeSpec, SlopeSpec

import host_kernels

HALF_TYPES = [torch.float16, torch.bfloat16]
SIZES = [(1, (1,)), (1, (6,)), (5, (1,)), (6, (7,)), (4, (3, 5)), (9, (2, 1, 33)), (8, (257,))]


@pytest.fixture(scope="session")
def library(tmp_path_factory):
    cxx = host_kernels.compiler()
    if cxx is None:
        pytest.skip("no C++ compiler (g++, c++ or clang++; or $CXX) to build the kernels for the host")
    try:
        return host_kernels.build(tmp_path_factory.mktemp("host_kernels"), cxx)
    except subprocess.CalledProcessError as error:
        pytest.fail(f"{cxx} could not compile rate_neuron.cu with host_shim.h:\n{error.stderr}")


@pytest.fixture(scope="session")
def launch(library):
    return host_kernels.launcher(library)


def bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bits, so that -0.0 != 0.0 and the comparison is exact."""
    return t.contiguous().view({4: torch.int32, 2: torch.int16}[t.element_size()])


def assert_same_bits(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    differ = bits(actual) != bits(expected)
    assert not bool(differ.any()), f"{int(differ.sum())} of {differ.numel()} elements differ"


def run_conversion(library, name: str, values: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
    out = torch.empty(values.shape, dtype=out_dtype)
    args = [("ptr", values.data_ptr()), ("ptr", out.data_ptr()), ("i64", values.numel())]
    host_kernels.launch_on(library, name, (kernels.blocks(values.numel()), 1, 1), (kernels.BLOCK, 1, 1), args)
    return out


def spec_for(kind: str, v_reset, legacy: bool, v_threshold: float = 1.0) -> ChargeSpec:
    if kind == "if":
        return ChargeSpec(kind="if", v_threshold=v_threshold, v_reset=v_reset, legacy=legacy)
    family, decay_input = kind.split("_")
    common = dict(v_threshold=v_threshold, v_reset=v_reset, decay_input=decay_input == "decay", legacy=legacy)
    if family == "lif":
        return ChargeSpec(kind="lif", tau=1.7, **common)
    return ChargeSpec(kind="plif", decay=torch.tensor(0.3).sigmoid(), **common)


def gain_for(spec: ChargeSpec) -> float:
    if spec.kind == "if" or not spec.decay_input:
        return 1.0
    return 1.0 / spec.tau if spec.kind == "lif" else float(spec.decay)


def sequence(steps: int, shape: tuple, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and carried-in state spread around the threshold, so both branches of every step occur."""
    x = (torch.randn(steps, *shape) * 1.5 + 0.4).to(dtype)
    v = (torch.rand(shape) * 1.6 - 0.4).to(dtype)
    return x, v


def assert_forward_equal(actual, expected) -> None:
    for a, e in zip(actual[:2] + actual[3:], expected[:2] + expected[3:]):
        assert_same_bits(a, e)
    assert (actual[2] is None) == (expected[2] is None)
    if expected[2] is not None:
        assert_same_bits(actual[2], expected[2])


# --- the shim ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, name", [(torch.float16, "shim_from_half"), (torch.bfloat16, "shim_from_bfloat16")])
def test_shim_16_bit_to_float_matches_torch_for_every_value(library, dtype, name):
    every = torch.arange(-(2 ** 15), 2 ** 15, dtype=torch.int32).to(torch.int16).view(dtype)
    out = run_conversion(library, name, every, torch.float32)
    expected = every.float()
    nan = expected.isnan()
    assert torch.equal(out.isnan(), nan)
    assert_same_bits(out[~nan], expected[~nan])


def float_probes() -> torch.Tensor:
    """Random float32 bit patterns, every exact tie and its neighbours for both 16-bit formats, and specials."""
    random_bits = torch.randint(-(2 ** 31), 2 ** 31 - 1, (200_000,), dtype=torch.int64).to(torch.int32)
    halves = torch.arange(0, 2 ** 15, dtype=torch.int32).to(torch.int16)
    ties = []
    for lower, shift in ((halves.view(torch.float16).float(), 13), (halves.view(torch.bfloat16).float(), 16)):
        tie = bits(lower.contiguous()) + (1 << (shift - 1))
        ties += [tie, tie - 1, tie + 1]
    specials = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), 65504.0, 65520.0, 65519.996,
                             2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0000001, 2.0 ** -26, 1e-40, 3.4e38])
    mixed = torch.cat([random_bits, *ties]).view(torch.float32)
    return torch.cat([mixed, -mixed, specials])


@pytest.mark.parametrize("dtype, name", [(torch.float16, "shim_to_half"), (torch.bfloat16, "shim_to_bfloat16")])
def test_shim_float_to_16_bit_rounds_like_torch(library, dtype, name):
    probes = float_probes()
    out = run_conversion(library, name, probes, dtype)
    expected = probes.to(dtype)
    nan = expected.isnan()
    assert torch.equal(out.isnan(), nan)
    assert_same_bits(out[~nan], expected[~nan])


@pytest.mark.parametrize("grid, block", [((3, 1, 1), (5, 1, 1)), ((2, 3, 2), (4, 1, 3)), ((1, 1, 1), (1, 1, 1))])
def test_shim_runs_every_thread_once_with_its_indices(library, grid, block):
    threads = grid[0] * grid[1] * grid[2] * block[0] * block[1] * block[2]
    rows = torch.full((threads, 12), -1, dtype=torch.int32)
    counts = torch.zeros(threads, dtype=torch.int32)
    host_kernels.launch_on(library, "shim_indices", grid, block,
                           [("ptr", rows.data_ptr()), ("ptr", counts.data_ptr())])
    assert bool((counts == 1).all())
    expected = [
        [bx, by, bz, tx, ty, tz, *block, *grid]
        for bz, by, bx in itertools.product(range(grid[2]), range(grid[1]), range(grid[0]))
        for tz, ty, tx in itertools.product(range(block[2]), range(block[1]), range(block[0]))
    ]
    assert rows.tolist() == expected


# --- forward, float32: bit for bit --------------------------------------------------------------------

KINDS = ["if", "lif_decay", "lif_nodecay", "plif_decay", "plif_nodecay"]
RESETS = [None, 0.0, -0.3]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("v_reset", RESETS, ids=["soft", "hard0", "hard-0.3"])
@pytest.mark.parametrize("legacy", [False, True], ids=["sj2", "legacy"])
def test_forward_float32_bit_identical(launch, kind, v_reset, legacy):
    spec = spec_for(kind, v_reset, legacy, v_threshold=0.8)
    for (steps, shape), store_v_seq in itertools.product(SIZES, (False, True)):
        x, v = sequence(steps, shape)
        expected = torch_backend.forward(x, v, spec, gain_for(spec), store_v_seq)
        actual = kernels.forward(x, v, spec, gain_for(spec), store_v_seq, launch)
        assert_forward_equal(actual, expected)


def test_forward_float32_many_steps_and_neurons(launch):
    spec = spec_for("lif_decay", None, False)
    x, v = sequence(32, (1001,))
    assert_forward_equal(kernels.forward(x, v, spec, 1 / 1.7, True, launch),
                         torch_backend.forward(x, v, spec, 1 / 1.7, True))


def test_forward_non_contiguous_input_and_broadcast_state(launch):
    spec = spec_for("plif_nodecay", 0.0, False)
    base, _ = sequence(6, (9, 4))
    x = base.transpose(1, 2)  # [6, 4, 9], not contiguous
    v = torch.tensor(0.25)
    expected = torch_backend.forward(x, v, spec, 1.0, True)
    actual = kernels.forward(x, v, spec, 1.0, True, launch)
    assert_forward_equal(actual, expected)
    assert actual[0].shape == x.shape and actual[1].shape == x.shape[1:]


def test_forward_charge_forms_cover_every_spec():
    forms = {kernels.charge_form(spec_for(kind, v_reset, legacy))[0]
             for kind in KINDS for v_reset in RESETS for legacy in (False, True)}
    assert forms == set(kernels.Form)


# --- forward, float16 / bfloat16: float32 arithmetic inside, rounded as torch rounds -----------------


@pytest.mark.parametrize("dtype", HALF_TYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("v_reset", RESETS, ids=["soft", "hard0", "hard-0.3"])
@pytest.mark.parametrize("legacy", [False, True])
def test_forward_16_bit_bit_identical_to_torch_op(launch, dtype, kind, v_reset, legacy):
    spec = spec_for(kind, v_reset, legacy=legacy, v_threshold=0.8)  # 0.8 is not a 16-bit number
    for steps, shape in SIZES:
        x, v = sequence(steps, shape, dtype)
        expected = torch_backend.forward(x, v, spec, gain_for(spec), True)
        assert_forward_equal(kernels.forward(x, v, spec, gain_for(spec), True, launch), expected)


@pytest.mark.parametrize("dtype", HALF_TYPES)
def test_forward_16_bit_mean_current_equals_torch_op(launch, dtype):
    spec = spec_for("lif_decay", 0.0, False)
    x, v = sequence(7, (65,), dtype)
    assert_same_bits(kernels.forward(x, v, spec, 1 / 1.7, False, launch)[3],
                     torch_backend.forward(x, v, spec, 1 / 1.7, False)[3])


# --- backward --------------------------------------------------------------------------------------------

SLOPES = [
    SlopeSpec(lam=1.0, theta=1.0, input_gain=1.0, beta=2.0, gamma=0.2),
    SlopeSpec(lam=1.0 - 1.0 / 1.7, theta=0.8, input_gain=1.0 / 1.7, beta=2.0, gamma=0.2),
    SlopeSpec(lam=0.0, theta=1.3, input_gain=1.0, beta=1.5, gamma=0.0),
    SlopeSpec(lam=0.9, theta=0.1, input_gain=0.574442516811659, beta=3.0, gamma=0.7),
]


def edge_currents(slope: SlopeSpec) -> torch.Tensor:
    """Ī on and next to every edge of g (as float32 rounds them), plus a spread of ordinary values."""
    knee, upper = kernels.slope_constants(slope)[:2]
    edges = torch.tensor([0.0, knee, upper], dtype=torch.float32)
    around = torch.cat([edges, torch.nextafter(edges, edges + 1), torch.nextafter(edges, edges - 1)])
    return torch.cat([around, torch.tensor([-0.0, -1.0, 10.0]), torch.randn(40) * slope.theta * 2])


@pytest.mark.parametrize("dtype", [torch.float32, *HALF_TYPES])
@pytest.mark.parametrize("slope", SLOPES, ids=lambda s: f"lam{s.lam:.2f}")
def test_backward_bit_identical(launch, dtype, slope):
    current = edge_currents(slope)
    for steps in (1, 5):
        grad = torch.randn(steps, current.numel()).to(dtype)
        assert_same_bits(kernels.backward(grad, current, slope, launch),
                         torch_backend.backward(grad, current, slope))


def test_backward_any_shape_and_layout(launch):
    slope = SLOPES[1]
    current = torch.randn(3, 7)
    grad = torch.randn(7, 3, 4).permute(2, 1, 0)  # [4, 3, 7], not contiguous
    assert_same_bits(kernels.backward(grad, current, slope, launch), torch_backend.backward(grad, current, slope))


def test_forward_then_backward_from_kernel_mean_current(launch):
    spec, slope = spec_for("lif_decay", 0.0, False), SLOPES[1]
    x, v = sequence(8, (4, 50))
    mean = kernels.forward(x, v, spec, slope.input_gain, False, launch)[3]
    grad = torch.randn_like(x)
    assert_same_bits(kernels.backward(grad, mean, slope, launch),
                     torch_backend.backward(grad, torch_backend.forward(x, v, spec, slope.input_gain, False)[3], slope))


# --- errors and what is shipped ----------------------------------------------------------------------


def test_float64_and_mismatched_state_are_clear_errors(launch):
    spec = spec_for("if", 0.0, False)
    with pytest.raises(TypeError, match="float64 tensors run the torch op"):
        kernels.forward(torch.zeros(2, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), spec, 1.0,
                        False, launch)
    with pytest.raises(TypeError, match="carried-in state"):
        kernels.forward(torch.zeros(2, 3), torch.zeros(3, dtype=torch.float16), spec, 1.0, False, launch)
    with pytest.raises(TypeError, match="float32"):
        kernels.backward(torch.zeros(2, 3), torch.zeros(3, dtype=torch.float64), SLOPES[0], launch)


def test_empty_layer_launches_nothing():
    def launch(*args):
        raise AssertionError("no kernel should run for zero neurons")

    spikes, v_last, _, mean = kernels.forward(torch.zeros(3, 0), torch.zeros(0), spec_for("if", 0.0, False), 1.0,
                                              False, launch)
    assert spikes.shape == (3, 0) and v_last.shape == (0,) and mean.shape == (0,)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no nvcc: the device compile check needs the CUDA toolkit")
def test_source_compiles_for_the_device_without_fma(tmp_path):
    """nvcc with its default --fmad=true must still emit no fused multiply-add in the kernels."""
    ptx = tmp_path / "rate_neuron.ptx"
    subprocess.run(["nvcc", "-ptx", "-arch=sm_80", "-o", str(ptx), str(kernels.SOURCE)], check=True,
                   capture_output=True, text=True)
    text = ptx.read_text()
    for name in host_kernels.RATE_KERNELS:
        assert f".entry {name}(" in text
    assert "fma." not in text
