"""The RGA input gradient equals the independent reference of method §1.2 (tests/rga_reference.py)."""
import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, layer, neuron

from sj_rga import RGA, rate_mode

from neurons import KINDS, make_neuron, stock_surrogate
from rga_reference import ReferenceRGA

RTOL = 1e-6


def _node(kind, v_reset):
    return make_neuron(kind, stock_surrogate(), v_reset=v_reset)


class SmallConvNet(nn.Module):
    def __init__(self, kind, v_reset):
        super().__init__()
        self.body = nn.Sequential(
            layer.Conv2d(1, 6, 3, padding=1), layer.BatchNorm2d(6), _node(kind, v_reset), layer.AvgPool2d(2),
            layer.Conv2d(6, 8, 3, padding=1), layer.BatchNorm2d(8), _node(kind, v_reset), layer.AvgPool2d(2),
            layer.Flatten(), layer.Linear(32, 16), _node(kind, v_reset), layer.Linear(16, 10))
        functional.set_step_mode(self, "m")

    def forward(self, x_seq):
        return self.body(x_seq)


class BasicBlock(nn.Module):
    def __init__(self, kind, v_reset, c):
        super().__init__()
        self.conv1, self.bn1, self.sn1 = layer.Conv2d(c, c, 3, padding=1), layer.BatchNorm2d(c), _node(kind, v_reset)
        self.conv2, self.bn2, self.sn2 = layer.Conv2d(c, c, 3, padding=1), layer.BatchNorm2d(c), _node(kind, v_reset)

    def forward(self, x):
        out = self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x)))))
        return self.sn2(out + x)


class SmallResNet(nn.Module):
    def __init__(self, kind, v_reset):
        super().__init__()
        self.stem = nn.Sequential(layer.Conv2d(1, 8, 3, padding=1), layer.BatchNorm2d(8), _node(kind, v_reset))
        self.blocks = nn.Sequential(BasicBlock(kind, v_reset, 8), BasicBlock(kind, v_reset, 8))
        self.head = nn.Sequential(layer.AvgPool2d(4), layer.Flatten(), layer.Linear(32, 10))
        functional.set_step_mode(self, "m")

    def forward(self, x_seq):
        return self.head(self.blocks(self.stem(x_seq)))


def _randomise_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(0.0, 0.8)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)


def _input_grad(model, x, context):
    functional.reset_net(model)
    x = x.clone().requires_grad_()
    with context(model):
        out = model(x)
        loss = (out.mean(0) * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum()
        loss.backward()
    functional.reset_net(model)
    return out.detach(), x.grad


def _check_against_reference(model, x, lam=None):
    out_rga, g_rga = _input_grad(model, x, lambda m: rate_mode(m, lam=lam))
    out_ref, g_ref = _input_grad(model, x, lambda m: ReferenceRGA(m, lam=lam))
    assert torch.equal(out_rga, out_ref)
    assert g_rga.abs().sum() > 0, "the gradient must not vanish on this model"
    torch.testing.assert_close(g_rga, g_ref, rtol=RTOL, atol=RTOL * g_ref.abs().max().item())
    return g_rga


@pytest.mark.parametrize("v_reset", [0.0, None])
@pytest.mark.parametrize("kind", KINDS)
def test_small_conv_net(kind, v_reset):
    model = SmallConvNet(kind, v_reset).double().eval()
    _randomise_bn(model)
    x = torch.rand(4, 3, 1, 8, 8, dtype=torch.float64) * 2
    g = _check_against_reference(model, x)
    for m in model.modules():  # SpikingJelly 0.0.0.0.14's IF/LIF have no input gradient in eval()
        if isinstance(m, neuron.BaseNode):
            m.train()
    _, g_stbp = _input_grad(model, x, lambda m: torch.enable_grad())
    assert g_stbp is not None and not torch.allclose(g, g_stbp), "RGA must differ from the model's own BPTT gradient"


@pytest.mark.parametrize("v_reset", [0.0, None])
@pytest.mark.parametrize("kind", ["if", "lif_decay", "lif_nodecay", "plif_decay"])
def test_residual_net(kind, v_reset):
    model = SmallResNet(kind, v_reset).double().eval()
    _randomise_bn(model)
    _check_against_reference(model, torch.rand(3, 2, 1, 8, 8, dtype=torch.float64) * 2)


def test_explicit_lambda_wins_and_float32_model():
    model = SmallConvNet("lif_nodecay", 0.0).eval()
    _randomise_bn(model)
    x = torch.rand(4, 3, 1, 8, 8) * 2
    g_half = _check_against_reference(model, x, lam=0.5)
    g_own = _check_against_reference(model, x)
    assert not torch.allclose(g_half, g_own)


def test_surrogate_swap_equals_rate_mode():
    """Putting RGA() into every neuron gives the same gradient as rate_mode on the stock model."""
    model = SmallConvNet("lif_decay", None).double().eval()
    _randomise_bn(model)
    x = torch.rand(4, 3, 1, 8, 8, dtype=torch.float64) * 2
    _, g_mode = _input_grad(model, x, rate_mode)
    for m in model.modules():
        if isinstance(m, neuron.BaseNode):
            m.surrogate_function = RGA()
    _, g_swap = _input_grad(model, x, lambda m: torch.enable_grad())
    assert torch.equal(g_mode, g_swap)


@pytest.mark.parametrize("kind", ["if", "plif_nodecay"])
def test_spikingjelly_zoo_model(kind):
    from spikingjelly.activation_based.model import sew_resnet
    spiking_neuron = neuron.IFNode if kind == "if" else neuron.ParametricLIFNode
    kw = {} if kind == "if" else dict(decay_input=False)
    model = sew_resnet.sew_resnet18(spiking_neuron=spiking_neuron, surrogate_function=stock_surrogate(),
                                    num_classes=10, cnf="ADD", **kw)
    functional.set_step_mode(model, "m")
    model = model.double().eval()
    _randomise_bn(model)
    _check_against_reference(model, torch.rand(2, 2, 3, 32, 32, dtype=torch.float64))


def test_carried_in_state_gets_no_gradient_and_grad_is_time_constant():
    node = make_neuron("lif_decay", RGA())
    with torch.no_grad():
        node(torch.rand(3, 2, 5))  # leaves a non-zero state
    x = torch.rand(4, 2, 5, requires_grad=True)
    s = node(x)
    g, = torch.autograd.grad(s.sum(), x)
    assert torch.equal(g, g[:1].expand_as(g)), "same factor g(Ī)·dI/dX for every t"
    assert not node.v.requires_grad
