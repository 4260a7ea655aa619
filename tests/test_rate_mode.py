"""rate_mode leaves the model exactly as it was; mapping rows of method §1.3; bad input."""
import copy
import math

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, layer, neuron

import sj_rga
from sj_rga import RGA, NeuronMapping, neuron_mapping, rate_mode, register_neuron

from neurons import DoubledIF, make_neuron, stock_surrogate
from rga_reference import table_mapping


def _net():
    net = nn.Sequential(layer.Linear(5, 6), make_neuron("lif_decay", stock_surrogate()),
                        layer.Linear(6, 4), make_neuron("plif_nodecay", stock_surrogate(), v_reset=None))
    functional.set_step_mode(net, "m")
    return net


def snapshot(model):
    """Everything rate_mode promises to leave as it was."""
    out = []
    for name, m in model.named_modules():
        state = {k: (v.clone() if isinstance(v, torch.Tensor) else v)
                 for k, v in getattr(m, "_memories", {}).items()}
        out.append((name, type(m), m.training, getattr(m, "step_mode", None),
                    id(getattr(m, "surrogate_function", None)),
                    dict(m.__dict__.get("forward", {}) and {"forward": m.__dict__["forward"]}),
                    tuple(m._forward_hooks), tuple(m._forward_pre_hooks), tuple(m._backward_hooks),
                    repr(state), type(m).multi_step_forward if hasattr(type(m), "multi_step_forward") else None))
    params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return out, params


def _same(a, b):
    assert a[0] == b[0]
    assert a[1].keys() == b[1].keys() and all(torch.equal(a[1][k], b[1][k]) for k in a[1])


def test_rate_mode_restores_everything_on_exit_and_on_error():
    net = _net()
    net[1].train()
    net[3].eval()
    with torch.no_grad():
        net(torch.rand(3, 2, 5))  # non-zero neuron state carried in
    before = snapshot(net)
    with rate_mode(net) as inside:
        assert inside is net
        net(torch.rand(3, 2, 5, requires_grad=True)).sum().backward()
        net.eval()
        functional.set_step_mode(net, "s")
    _same(before, snapshot(net))
    with pytest.raises(KeyError):
        with rate_mode(net):
            net(torch.rand(3, 2, 5, requires_grad=True))
            net.train()
            raise KeyError("boom")
    _same(before, snapshot(net))
    assert not any(sj_rga.neuron.HANDLE in m.__dict__ for m in net.modules())


def test_rate_mode_without_running_changes_nothing():
    net = _net()
    with torch.no_grad():
        net(torch.rand(3, 2, 5))
    before = snapshot(net)
    with rate_mode(net, lam=0.5, beta=3.0, gamma=0.1):
        pass
    _same(before, snapshot(net))
    x = torch.rand(3, 2, 5, requires_grad=True)
    functional.reset_net(net)
    s = net(x)
    g_after, = torch.autograd.grad(s.sum(), x)
    functional.reset_net(net)
    g_fresh, = torch.autograd.grad(_net_copy_stbp(net)(x).sum(), x)
    assert torch.equal(g_after, g_fresh), "after exit the model takes its own BPTT gradient again"


def _net_copy_stbp(net):
    twin = copy.deepcopy(net)
    functional.reset_net(twin)
    return twin


def test_nested_rate_modes_innermost_wins():
    node = make_neuron("if", stock_surrogate())
    x = torch.rand(4, 3) * 3

    def grad():
        xg = x.clone().requires_grad_()
        functional.reset_net(node)
        (g,) = torch.autograd.grad(node(xg).sum(), xg)
        return g

    with rate_mode(node, lam=0.5):
        half = grad()
    with rate_mode(node, lam=0.9):
        outer = grad()
        with rate_mode(node, lam=0.5):
            assert torch.equal(grad(), half)
        assert torch.equal(grad(), outer) and not torch.equal(half, outer)
    assert sj_rga.neuron.handle_of(node) is None


@pytest.mark.parametrize("kind,v_reset,v_threshold", [
    ("if", 0.0, 1.0), ("if", None, 0.7), ("if", -0.5, 1.0),
    ("lif_decay", 0.0, 1.0), ("lif_nodecay", 0.2, 1.5), ("lif_decay", None, 2.0),
    ("plif_decay", 0.0, 1.0), ("plif_nodecay", None, 1.0),
])
def test_mapping_rows(kind, v_reset, v_threshold):
    node = make_neuron(kind, stock_surrogate(), v_reset=v_reset, v_threshold=v_threshold)
    got = neuron_mapping(node)
    lam, theta, gain = table_mapping(node)
    assert (got.lam, got.theta, got.input_gain) == pytest.approx((lam, theta, gain), rel=1e-6)
    if kind == "if":
        assert got.lam == 1.0 and got.input_gain == 1.0
    if kind == "lif_decay":
        assert got.lam == pytest.approx(1 - 1 / 1.7) and got.input_gain == pytest.approx(1 / 1.7)
    if kind == "plif_nodecay":
        assert got.lam == pytest.approx(1 - 1 / (1 + math.exp(-0.3))) and got.input_gain == 1.0
    assert got.theta == pytest.approx(v_threshold - (v_reset or 0.0))


def test_paper_neuron_equals_lif_without_input_decay():
    """The released code's V = λV + X, θ = 1, hard reset to 0 is LIFNode(tau=1/(1-λ), decay_input=False)."""
    lam = 0.9
    node = neuron.LIFNode(tau=1 / (1 - lam), decay_input=False, v_threshold=1.0, v_reset=0.0, step_mode="m")
    m = neuron_mapping(node)
    assert m.lam == pytest.approx(lam) and m.theta == 1.0 and m.input_gain == 1.0
    x = torch.rand(6, 10) * 0.6
    v, spikes = torch.zeros(10), []
    for t in range(6):
        v = lam * v + x[t]
        s = (v >= 1.0).float()
        v = v * (1 - s)
        spikes.append(s)
    assert torch.allclose(node(x), torch.stack(spikes))


def test_unknown_neuron_raises_clear_error_then_registers():
    net = nn.Sequential(layer.Linear(3, 4), DoubledIF())
    functional.set_step_mode(net, "m")
    before = snapshot(net)
    with pytest.raises(ValueError, match="DoubledIF.*register_neuron"):
        with rate_mode(net):
            pass
    _same(before, snapshot(net))
    register_neuron(DoubledIF, lambda node: NeuronMapping(lam=1.0, theta=1.0, input_gain=2.0))
    try:
        x = torch.rand(5, 2, 3, requires_grad=True)
        with rate_mode(net):
            out = net(x)
            out.sum().backward()
        functional.reset_net(net)
        with torch.no_grad():
            h = net[0](x)
        mean_i = 2 * h.mean(0)
        slope = torch.where((mean_i >= 0) & (mean_i <= 0), 0.2, torch.where((mean_i > 0) & (mean_i <= 2), 0.5, 0.0))
        expected = (slope * 2).expand_as(h) @ net[0].weight
        torch.testing.assert_close(x.grad, expected)
        _same(before, snapshot(net))
    finally:
        sj_rga.mapping._REGISTRY.pop(DoubledIF)


@pytest.mark.parametrize("bad", [torch.ones(4, 3, dtype=torch.int64), torch.full((4, 3), math.nan),
                                 torch.ones(4), torch.full((4, 3), math.inf)])
def test_bad_inputs_raise_and_leave_state(bad):
    node = make_neuron("lif_decay", RGA())
    with torch.no_grad():
        node(torch.rand(4, 3))
    v_before = node.v.clone()
    with pytest.raises((ValueError, TypeError)):
        node(bad)
    assert torch.equal(node.v, v_before)


def test_bad_rate_mode_calls():
    with pytest.raises(ValueError, match="no spiking neuron"):
        with rate_mode(nn.Linear(3, 3)):
            pass
    with pytest.raises(TypeError):
        with rate_mode("not a model"):
            pass
    for kwargs in (dict(beta=1.0), dict(gamma=-1.0), dict(lam=2.0)):
        with pytest.raises(ValueError):
            with rate_mode(_net(), **kwargs):
                pass
    bad_theta = make_neuron("if", stock_surrogate(), v_reset=1.0, v_threshold=1.0)
    with pytest.raises(ValueError, match="theta"):
        with rate_mode(bad_theta):
            pass
