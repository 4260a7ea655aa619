"""clock_driven-era code on both SpikingJelly releases (issue 18): ``sj_rga.compat.enable_clock_driven()`` makes
``spikingjelly.clock_driven`` importable on 2.x (and leaves 0.0.0.0.14's own package alone), and a model written
the way Spikformer-era repositories write theirs (tests/spikformer_style.py) gives, under every estimator, the
logits of the same model written with ``activation_based`` neurons and gradients equal to the references."""
import contextlib
import functools
import importlib
import sys

import pytest
import spikingjelly
import torch
import torch.nn.functional as F
from gradient_reference import ReferenceASSG, ReferenceBPTR, ReferenceHART, ReferencePDSG
from lively import lively
from spikingjelly.activation_based import neuron

import sj_rga
from sj_rga import SNNClassifier
from sj_rga.compat import PACKAGE, enable_clock_driven
from sj_rga.gradients import NAMES

from rga_reference import ReferenceRGA

REAL = sj_rga._compat.clock_driven_neuron() is not None
#: test model files that import ``spikingjelly.clock_driven`` (dropped from sys.modules after each test)
CLOCK_DRIVEN_MODEL_FILES = ("spikformer_style", "spikformer_model", "sdt_model")
REFERENCES = {"rga": ReferenceRGA, "bptr": ReferenceBPTR, "hart": ReferenceHART, "pdsg": ReferencePDSG,
              "assg": ReferenceASSG}


@contextlib.contextmanager
def clock_driven_removed_afterwards():
    """Afterwards sys.modules holds no ``spikingjelly.clock_driven`` stand-in, and no model file importing it,
    that the block made."""
    before = set(sys.modules)
    had = "clock_driven" in vars(spikingjelly)
    try:
        yield
    finally:
        for name in set(sys.modules) - before:
            if name.startswith(PACKAGE) or name in CLOCK_DRIVEN_MODEL_FILES:
                del sys.modules[name]
        if not had:
            vars(spikingjelly).pop("clock_driven", None)


@pytest.fixture
def clock_driven_cleanup():
    """Afterwards sys.modules holds no ``spikingjelly.clock_driven`` stand-in the test made."""
    with clock_driven_removed_afterwards():
        yield


@pytest.fixture
def clock_driven(clock_driven_cleanup):
    """``spikingjelly.clock_driven`` importable for the test."""
    return enable_clock_driven()


@pytest.mark.skipif(REAL, reason="SpikingJelly 0.0.0.0.14 ships clock_driven itself")
def test_nothing_changes_unless_called():
    assert PACKAGE not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"{PACKAGE}.neuron")


@pytest.mark.skipif(REAL, reason="SpikingJelly 0.0.0.0.14 ships clock_driven itself")
def test_names_map_to_activation_based_equivalents(clock_driven):
    assert enable_clock_driven() is clock_driven, "idempotent"
    from spikingjelly.clock_driven import functional, layer, surrogate
    from spikingjelly.clock_driven import neuron as cd_neuron
    from spikingjelly.clock_driven.neuron import MultiStepLIFNode

    assert cd_neuron is importlib.import_module(f"{PACKAGE}.neuron") and MultiStepLIFNode is cd_neuron.MultiStepLIFNode
    lif = MultiStepLIFNode(tau=2.0, detach_reset=True, backend="cupy", v_threshold=0.5)
    assert isinstance(lif, neuron.LIFNode) and lif.step_mode == "m" and lif.store_v_seq
    assert (lif.tau, lif.v_threshold, lif.detach_reset, lif.backend) == (2.0, 0.5, True, "cupy")
    plif = cd_neuron.MultiStepParametricLIFNode(init_tau=3.0, decay_input=False, backend="torch")
    assert isinstance(plif, neuron.ParametricLIFNode) and plif.step_mode == "m" and not plif.decay_input
    assert isinstance(cd_neuron.MultiStepIFNode(v_reset=None, lava_s_cale=8), neuron.IFNode)
    single = cd_neuron.LIFNode(tau=2.0, cupy_fp32_inference=True)
    assert isinstance(single, neuron.LIFNode) and single.step_mode == "s"
    with pytest.raises(ValueError, match="backend must be one of"):
        cd_neuron.MultiStepIFNode(backend="lava")
    with pytest.raises(AttributeError, match="QIFNode has no activation_based equivalent"):
        _ = cd_neuron.QIFNode
    assert layer.SeqToANNContainer is spikingjelly.activation_based.layer.SeqToANNContainer
    assert layer.MultiStepDropout(0.3).step_mode == "m"
    assert functional.reset_net is spikingjelly.activation_based.functional.reset_net
    assert type(surrogate.ATan(alpha=3.0)) is spikingjelly.activation_based.surrogate.ATan
    x = torch.rand(4, 2, 3) * 2
    stock = neuron.LIFNode(tau=2.0, detach_reset=True, v_threshold=0.5, step_mode="m", store_v_seq=True)
    assert torch.equal(lif(x), stock(x)) and torch.equal(lif.v_seq, stock.v_seq)


@pytest.mark.skipif(not REAL, reason="only SpikingJelly 0.0.0.0.14 ships clock_driven")
def test_the_real_package_is_left_alone(clock_driven):
    assert clock_driven is sys.modules[PACKAGE] and clock_driven.__file__
    from spikingjelly.clock_driven.neuron import MultiStepLIFNode
    real = sj_rga._compat.clock_driven_neuron()
    assert MultiStepLIFNode.__module__ == f"{PACKAGE}.neuron" and MultiStepLIFNode is real.MultiStepLIFNode


def _logits_and_grad(clf, x, y):
    x = x.clone().requires_grad_(True)
    logits = clf(x)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, y), x)
    return logits.detach(), grad


def test_spikformer_style_model_on_every_estimator(clock_driven):
    style = importlib.import_module("spikformer_style")
    backend = "torch" if REAL else "cupy"  # 0.0.0.0.14 asserts CuPy when 'cupy' is given at construction
    torch.manual_seed(0)
    model = lively(style.TinySpikformer(lif=functools.partial(style.clock_driven_lif, backend=backend)))
    for m in model.modules():
        if hasattr(m, "backend"):
            m.backend = "cupy"
    twin = style.TinySpikformer(lif=style.activation_based_lif).double()
    twin.load_state_dict(model.state_dict())
    T, gen = 3, torch.Generator().manual_seed(4)
    x, y = torch.rand(2, 1, 8, 8, generator=gen, dtype=torch.float64), torch.tensor([3, 7])
    with torch.no_grad():
        expected = SNNClassifier(twin, T, gradient="stbp")(x)
    _, twin_stbp = _logits_and_grad(SNNClassifier(twin, T, gradient="stbp"), x, y)
    for name in NAMES:
        logits, grad = _logits_and_grad(SNNClassifier(model, T, gradient=name), x, y)
        assert torch.equal(logits, expected), f"{name}: the logits must be the activation_based twin's"
        if name == "stbp":
            ref = twin_stbp
        else:
            with REFERENCES[name](model):
                _, ref = _logits_and_grad(SNNClassifier(model, T, gradient="stbp"), x, y)
        scale = float(ref.abs().max())
        assert scale > 0 and (ref != 0).float().mean() > 0.1, f"{name}: a trivial gradient"
        torch.testing.assert_close(grad, ref, rtol=1e-6, atol=1e-6 * scale, msg=name)


CLOCK_DRIVEN_USER_MODULE = """
import torch.nn as nn
from spikingjelly.clock_driven import layer
from spikingjelly.clock_driven.neuron import MultiStepIFNode, MultiStepLIFNode


def build(num_classes=10):
    return nn.Sequential(layer.SeqToANNContainer(nn.Flatten(), nn.Linear(64, 16)),
                         MultiStepLIFNode(tau=2.0, detach_reset=True, backend="torch"),
                         layer.SeqToANNContainer(nn.Linear(16, num_classes)), MultiStepIFNode(backend="torch"))
"""


def test_cli_clock_driven_flag(tmp_path, monkeypatch, clock_driven_cleanup, capsys):
    from sj_rga.cli import main

    name = f"clock_user_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(CLOCK_DRIVEN_USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    common = ["attack", "--model", f"{name}:build", "-T", "2", "--data", "digits", "--limit", "4", "--eps", "0.1",
              "--attack", "fgsm", "--gradient", "rga", "--no-progress"]
    if not REAL:
        assert main([*common, "--out", str(tmp_path / "without")]) == 2
        assert "cannot import" in capsys.readouterr().err
    assert main([*common, "--clock-driven", "--out", str(tmp_path / "with")]) == 0
    assert (tmp_path / "with" / "results.json").is_file()
    sys.modules.pop(name, None)
