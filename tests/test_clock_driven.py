"""clock_driven-era neurons under SpikingJelly 0.0.0.0.14 (issue 18): ``MultiStepIFNode``, ``MultiStepLIFNode`` and
``MultiStepParametricLIFNode``, with either ``backend``, are intercepted like the ``activation_based`` ones:
the stock logits bit for bit and every estimator's gradient equal to the independent reference.

On this CPU machine ``backend='cupy'`` is set after construction (SpikingJelly asserts CuPy at construction);
a CPU tensor then takes SpikingJelly's own torch path, and the estimators run sj_rga's op whatever the backend.
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from gradient_reference import ReferenceASSG, ReferenceBPTR, ReferenceHART, ReferencePDSG
from lively import lively

import sj_rga
from sj_rga import SNNClassifier
from sj_rga.gradients import NAMES

from rga_reference import ReferenceRGA

CLOCK = sj_rga._compat.clock_driven_neuron()
pytestmark = pytest.mark.skipif(CLOCK is None, reason="this SpikingJelly release has no clock_driven package")

T = 3
RTOL = 1e-6
REFERENCES = {"rga": ReferenceRGA, "bptr": ReferenceBPTR, "hart": ReferenceHART, "pdsg": ReferencePDSG,
              "assg": ReferenceASSG}


def _layer():
    import spikingjelly.clock_driven.layer as layer
    return layer


def _mlp(backend: str) -> nn.Module:
    from spikingjelly.clock_driven import surrogate
    torch.manual_seed(0)
    seq = _layer().SeqToANNContainer
    net = nn.Sequential(
        seq(nn.Linear(12, 16)),
        CLOCK.MultiStepLIFNode(tau=2.0, detach_reset=True, surrogate_function=surrogate.ATan(), backend="torch"),
        seq(nn.Linear(16, 10)),
        CLOCK.MultiStepIFNode(v_reset=None, surrogate_function=surrogate.Sigmoid(), backend="torch"))
    return _with_backend(lively(net), backend)


def _conv(backend: str) -> nn.Module:
    from spikingjelly.clock_driven import surrogate
    torch.manual_seed(0)
    seq = _layer().SeqToANNContainer
    net = nn.Sequential(
        seq(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)),
        CLOCK.MultiStepParametricLIFNode(init_tau=1.8, decay_input=False, v_reset=-0.2, v_threshold=0.8,
                                         surrogate_function=surrogate.PiecewiseQuadratic(), backend="torch"),
        seq(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 10)),
        CLOCK.MultiStepLIFNode(tau=1.7, decay_input=False, v_reset=None, backend="torch"))
    return _with_backend(lively(net), backend)


def _with_backend(net: nn.Module, backend: str) -> nn.Module:
    for m in net.modules():
        if hasattr(m, "backend"):
            m.backend = backend
    return net


def _logits_and_grad(clf, x, y):
    x = x.clone().requires_grad_(True)
    logits = clf(x)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, y), x)
    return logits.detach(), grad


@pytest.mark.parametrize("backend", ["torch", "cupy"])
@pytest.mark.parametrize("build,shape", [(_mlp, (12,)), (_conv, (1, 8, 8))], ids=["mlp", "conv"])
def test_every_estimator_on_clock_driven_neurons(build, shape, backend):
    model, twin = build(backend), build("torch")
    gen = torch.Generator().manual_seed(5)
    x, y = torch.rand(2, *shape, generator=gen, dtype=torch.float64), torch.tensor([1, 2])
    with torch.no_grad():
        sj_rga_free = SNNClassifier(twin, T, gradient="stbp")(x)  # the stock forward, no estimator
    stbp_logits, stbp_grad = _logits_and_grad(SNNClassifier(twin, T, gradient="stbp"), x, y)
    assert torch.equal(stbp_logits, sj_rga_free)
    for name in NAMES:
        paths = ("auto", "layer") if name in ("rga", "bptr", "hart") else ("auto",)
        for path in paths:
            logits, grad = _logits_and_grad(SNNClassifier(model, T, gradient=name, rga_path=path), x, y)
            assert torch.equal(logits, sj_rga_free), f"{name} ({path}): the logits must be the stock ones"
            if name == "stbp":
                ref_grad = stbp_grad  # the model's own surrogate through the stock torch path
            else:
                with REFERENCES[name](twin):
                    _, ref_grad = _logits_and_grad(SNNClassifier(twin, T, gradient="stbp"), x, y)
            scale = float(ref_grad.abs().max())
            assert scale > 0 and (ref_grad != 0).float().mean() > 0.3, f"{name}: a trivial gradient"
            torch.testing.assert_close(grad, ref_grad, rtol=RTOL, atol=RTOL * scale, msg=f"{name} ({path})")


def test_state_and_v_seq_as_stock_and_model_left_as_it_was():
    """The exact run leaves v and v_seq as clock_driven's torch path does; the classifier puts them back."""
    node, twin = (CLOCK.MultiStepLIFNode(tau=2.0, v_reset=-0.3, backend="torch") for _ in range(2))
    x = torch.randn(4, 3, 5) * 1.5 + 0.6
    with sj_rga.gradient_mode(node, sj_rga.gradients.HART()):
        for _ in range(2):  # the second call starts from the state the first left
            spikes = node(x.clone().requires_grad_())
            assert torch.equal(spikes, twin(x)) and torch.equal(node.v, twin.v)
            assert torch.equal(node.v_seq, twin.v_seq)
    assert node.v == -0.3 and node.v_seq is None, "gradient_mode restores the state of entry"


def test_rga_surrogate_and_fast_path_see_clock_driven_neurons():
    from sj_rga.fast import fast_path_obstacle
    from sj_rga.mapping import neuron_mapping, spiking_neurons

    net = _mlp("cupy")
    assert [type(m).__name__ for m in spiking_neurons(net)] == ["MultiStepLIFNode", "MultiStepIFNode"]
    assert fast_path_obstacle(net) is None
    assert neuron_mapping(net[1]) == sj_rga.NeuronMapping(lam=0.5, theta=1.0, input_gain=0.5)
    x = (torch.rand(T, 2, 12, dtype=torch.float64) * 2).requires_grad_()
    with sj_rga.rate_mode(net):
        (g_mode,) = torch.autograd.grad(net(x).sum(), x)
    for m in net.modules():
        if isinstance(m, CLOCK.BaseNode):
            m.surrogate_function = sj_rga.RGA()
    (g_route,) = torch.autograd.grad(net(x).sum(), x)
    assert torch.equal(g_mode, g_route) and g_route.abs().sum() > 0


def test_single_step_clock_driven_neurons_are_refused_clearly():
    from spikingjelly.clock_driven import layer
    net = nn.Sequential(layer.SeqToANNContainer(nn.Linear(4, 4)), layer.MultiStepContainer(CLOCK.IFNode()))
    with pytest.raises(ValueError, match="single-step clock_driven neuron.*MultiStepIFNode"):
        SNNClassifier(net, 2, gradient="rga")


def test_shuffle_test_sees_clock_driven_neurons():
    """The shuffle test permutes a clock_driven neuron's spike trains: counts kept, timing changed."""
    net = _mlp("torch")
    seen = []
    probe = net[2].register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    x, y = torch.rand(4, 12, dtype=torch.float64), torch.tensor([0, 1, 2, 3])
    report = sj_rga.shuffle_test(SNNClassifier(net, 6), (x, y), batch_size=4, seed=1)
    probe.remove()
    assert report.samples == 4 and len(seen) == 2
    clean, shuffled = seen
    assert torch.equal(clean.sum(0), shuffled.sum(0)) and clean.sum() > 0 and not torch.equal(clean, shuffled)
