"""One RGA (issue 20): one class for the surrogate and the estimator, and one route into a neuron for it.

``surrogate_function=RGA()`` runs a neuron through the very handle that ``gradient_mode(model, RGA())``
attaches, so both give the same gradient bit for bit, and an attached estimator wins over the surrogate."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from lively import lively
from spikingjelly.activation_based import functional, layer, neuron

import sj_rga
from sj_rga import RGA, SNNClassifier
from sj_rga.gradients import BPTR, gradient_mode
from sj_rga.models import digits_snn

from neurons import make_neuron, stock_surrogate


def _net(sg_factory) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(layer.Flatten(), layer.Linear(12, 16), make_neuron("lif_decay", sg_factory()),
                        layer.Linear(16, 4), make_neuron("if", sg_factory()))
    functional.set_step_mode(net, "m")
    return lively(net)


def _grad(net, x, context):
    x = x.clone().requires_grad_()
    with context(net):
        functional.reset_net(net)
        out = net(x).mean(0)
    (g,) = torch.autograd.grad(out.square().sum(), x)
    return out.detach(), g


def test_one_class_for_surrogate_and_estimator():
    assert sj_rga.RGA is sj_rga.gradients.RGA
    sg = RGA(0.5, beta=3.0)
    assert isinstance(sg, sj_rga.gradients.GradientEstimator) and isinstance(sg, nn.Module)
    assert sg == RGA(lam=0.5, beta=3.0, gamma=0.2) and hash(sg) == hash(RGA(0.5, 3.0)) and sg != RGA()
    assert sg.hyperparameters() == {"lam": 0.5, "beta": 3.0, "gamma": 0.2} and list(sg.parameters()) == []
    with pytest.raises(AttributeError):
        sg.lam = 0.9  # read-only, as the dataclass estimators are frozen


def test_classifier_takes_the_surrogate_class_as_its_gradient():
    torch.manual_seed(1)
    model = digits_snn(10)
    x, y = torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2])
    grads = []
    for gradient in ("rga", RGA(), sj_rga.gradients.RGA(lam=None)):
        clf = SNNClassifier(model, 3, gradient=gradient)
        xi = x.clone().requires_grad_()
        (g,) = torch.autograd.grad(F.cross_entropy(clf(xi), y), xi)
        grads.append(g)
    assert torch.equal(grads[0], grads[1]) and torch.equal(grads[0], grads[2]) and grads[0].abs().sum() > 0


def test_surrogate_route_equals_gradient_mode_bit_for_bit():
    x = torch.rand(4, 3, 12, dtype=torch.float64) * 1.5
    stock = _net(stock_surrogate)
    out_mode, g_mode = _grad(stock, x, lambda m: gradient_mode(m, RGA(lam=0.8)))
    routed = _net(lambda: RGA(lam=0.8))
    out_route, g_route = _grad(routed, x, lambda m: torch.enable_grad())
    assert torch.equal(out_mode, out_route) and torch.equal(g_mode, g_route) and g_route.abs().sum() > 0


def test_surrogate_route_runs_the_estimators_own_layer():
    """The route is the estimator's handle: an RGA subclass sees its layer op called for every neuron."""
    calls = []

    class Counting(RGA):
        def stock_layer(self, node, x_seq, state):
            calls.append(type(node).__name__)
            return super().stock_layer(node, x_seq, state)

    net = _net(Counting)
    _grad(net, torch.rand(3, 2, 12, dtype=torch.float64), lambda m: torch.enable_grad())
    assert calls == ["LIFNode", "IFNode"]
    calls.clear()
    with torch.no_grad():
        functional.reset_net(net)
        net(torch.rand(3, 2, 12, dtype=torch.float64))
    assert calls == [], "without gradients the stock forward runs"


def test_an_attached_estimator_wins_over_the_surrogate():
    x = torch.rand(4, 3, 12, dtype=torch.float64) * 1.5
    _, g_stock = _grad(_net(stock_surrogate), x, lambda m: gradient_mode(m, BPTR()))
    _, g_routed = _grad(_net(RGA), x, lambda m: gradient_mode(m, BPTR()))
    assert torch.equal(g_stock, g_routed)


class _HalvedIF(neuron.IFNode):
    """IF dynamics of its own (H = V + X/2): a registered subclass, reached through the wrapped method."""

    if sj_rga._compat.LEGACY:
        def neuronal_charge(self, x):
            self.v = self.v + 0.5 * x
    else:
        def single_step_functional_forward(self, inputs, states, **kwargs):
            v = states[0] + 0.5 * inputs[0]
            spike = self.surrogate_function(v - self.v_threshold)
            return (spike,), ((1 - spike) * v,)


@pytest.fixture
def halved_registered():
    sj_rga.register_neuron(_HalvedIF, lambda node: sj_rga.NeuronMapping(lam=1.0, theta=1.0, input_gain=0.5))
    yield
    sj_rga.mapping._REGISTRY.pop(_HalvedIF)


def test_registered_subclass_with_rga_surrogate_takes_the_same_route(halved_registered):
    def net(sg):
        torch.manual_seed(3)
        return lively(nn.Sequential(layer.Linear(5, 6), _HalvedIF(surrogate_function=sg, step_mode="m")))

    x = torch.rand(4, 2, 5, dtype=torch.float64) * 3
    out_mode, g_mode = _grad(net(stock_surrogate()), x, lambda m: gradient_mode(m, RGA()))
    out_route, g_route = _grad(net(RGA()), x, lambda m: torch.enable_grad())
    assert torch.equal(out_mode, out_route) and torch.equal(g_mode, g_route) and g_route.abs().sum() > 0


def test_equal_surrogates_keep_their_own_training_flags():
    """Equal RGA surrogates are distinct modules: a classifier call restores each one's flag."""
    model = digits_snn(10, neuron.IFNode, surrogate_function=RGA())
    surrogates = [m.surrogate_function for m in model.modules() if isinstance(m, neuron.IFNode)]
    assert len(surrogates) >= 2 and surrogates[0] is not surrogates[1]
    model.train()
    SNNClassifier(model, 2)(torch.rand(2, 1, 8, 8))
    assert all(s.training for s in surrogates)
