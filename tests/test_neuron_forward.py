"""Forward under RGA: the same spikes and potentials as the stock neuron, bit for bit."""
import pytest
import torch
from spikingjelly.activation_based import functional, neuron

from sj_rga import RGA, RateIFNode, RateLIFNode, RateParametricLIFNode, rate_mode

from conftest import DEVICES
from neurons import KINDS, make_neuron, stock_surrogate

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def _pair(kind, **kw):
    return make_neuron(kind, RGA(), **kw), make_neuron(kind, stock_surrogate(), **kw)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("v_reset", [0.0, None, -0.4])
@pytest.mark.parametrize("kind", KINDS)
def test_forward_matches_stock_bit_for_bit(kind, v_reset, dtype, device):
    for detach_reset, store_v_seq in [(False, False), (True, True)]:
        rga, stock = _pair(kind, v_reset=v_reset, v_threshold=0.8, detach_reset=detach_reset, store_v_seq=store_v_seq)
        rga.to(device), stock.to(device)
        for call in range(2):  # the second call starts from the non-zero state of the first
            x = (torch.randn(6, 3, 7, device=device) * 1.2 + 0.3).to(dtype).requires_grad_()
            s_rga, s_stock = rga(x), stock(x)
            assert s_rga.dtype == s_stock.dtype == dtype
            assert torch.equal(s_rga, s_stock), f"spikes differ at call {call}"
            assert torch.equal(rga.v, stock.v), f"membrane potentials differ at call {call}"
            if store_v_seq:
                assert torch.equal(rga.v_seq, stock.v_seq)
            assert s_rga.requires_grad
        assert 0 < s_stock.float().mean() < 1


@pytest.mark.parametrize("kind", KINDS)
def test_forward_under_rate_mode_matches_and_no_grad_path(kind):
    node = make_neuron(kind, stock_surrogate())
    twin = make_neuron(kind, stock_surrogate())
    x = torch.randn(5, 4, 3)
    with rate_mode(node):
        s = node(x.clone().requires_grad_())
        assert torch.equal(s, twin(x)) and torch.equal(node.v, twin.v)
    assert isinstance(node.v, float) or not node.v.any(), "the state from before rate_mode is back"


def test_rate_nodes_default_to_rga_and_keep_other_arguments():
    assert isinstance(RateIFNode().surrogate_function, RGA)
    lif = RateLIFNode(tau=4.0, decay_input=False, v_reset=None)
    assert isinstance(lif.surrogate_function, RGA) and lif.tau == 4.0 and lif.v_reset is None
    assert isinstance(RateParametricLIFNode(init_tau=3.0).surrogate_function, RGA)
    explicit = RGA(0.5)
    assert RateLIFNode(surrogate_function=explicit).surrogate_function is explicit
    assert isinstance(RateIFNode(), neuron.IFNode) and isinstance(RateLIFNode(), neuron.LIFNode)


def test_rate_nodes_in_the_spikingjelly_zoo():
    from spikingjelly.activation_based.model import sew_resnet
    net = sew_resnet.sew_resnet18(spiking_neuron=RateIFNode, num_classes=10, cnf="ADD")
    functional.set_step_mode(net, "m")
    assert all(isinstance(m.surrogate_function, RGA) for m in net.modules() if isinstance(m, neuron.IFNode))
    x = torch.rand(2, 1, 3, 32, 32, requires_grad=True)
    net(x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_other_surrogates_untouched_by_the_plugin():
    """The wrapped method calls SpikingJelly's original for a non-RGA surrogate."""
    wrapped = neuron.LIFNode.multi_step_forward
    assert wrapped.__sj_rga_original__ is not wrapped
    node, x = make_neuron("lif_decay", stock_surrogate()), torch.randn(4, 2, 3, requires_grad=True)
    s = node(x)
    node.reset()
    s_orig = wrapped.__sj_rga_original__(node, x)
    assert torch.equal(s, s_orig)
    g1, = torch.autograd.grad(s.sum(), x)
    g2, = torch.autograd.grad(s_orig.sum(), x)
    assert torch.equal(g1, g2)


def test_single_step_mode_with_rga_raises_clearly_but_runs_without_grad():
    node = neuron.IFNode(surrogate_function=RGA())
    with pytest.raises(RuntimeError, match="multi-step|set_step_mode"):
        node(torch.randn(3, 4, requires_grad=True))
    with torch.no_grad():
        assert node(torch.ones(3, 4)).shape == (3, 4)
    stock = neuron.LIFNode(surrogate_function=stock_surrogate())
    with rate_mode(stock):
        with pytest.raises(RuntimeError, match="set_step_mode"):
            stock(torch.randn(3, 4, requires_grad=True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("v_reset", [0.0, None, -0.4])
@pytest.mark.parametrize("kind", KINDS)
def test_fast_path_forward_matches_stock_and_sums_the_mean_current(kind, v_reset, dtype):
    """The fast RGA path's no-grad forward (rate op arithmetic, spikes written in place): stock spikes and
    state bit for bit, also from carried-in state and on a non-contiguous input; Ī = mean_t X[t] · dI/dX."""
    from sj_rga.mapping import neuron_mapping
    from sj_rga.neuron import exact_forward

    node = make_neuron(kind, stock_surrogate(), v_reset=v_reset, v_threshold=0.8, store_v_seq=True)
    stock = make_neuron(kind, stock_surrogate(), v_reset=v_reset, v_threshold=0.8, store_v_seq=True)
    gain = neuron_mapping(node).input_gain
    for call in range(2):
        x = (torch.randn(3, 7, 6) * 1.2 + 0.3).to(dtype).permute(2, 0, 1)  # [T=6, B=3, 7], not contiguous
        charged: list = []
        run = exact_forward(node, x, gain, on_charge=lambda t, h, seen=charged: seen.append(h.clone()))
        spikes, current = run.spikes, run.mean_current
        with torch.no_grad():
            expected = stock(x)
        assert spikes.dtype == dtype and torch.equal(spikes, expected), f"spikes differ at call {call}"
        assert torch.equal(node.v, stock.v) and torch.equal(node.v_seq, stock.v_seq)
        assert torch.equal(torch.stack(charged) >= 0.8, spikes.bool()), "H[t] is the potential that fired"
        assert current.dtype == (torch.float32 if dtype == torch.float16 else dtype)
        reference = x.double().mean(0) * gain
        torch.testing.assert_close(current.double(), reference, rtol=1e-6, atol=1e-7)
    assert 0 < expected.float().mean() < 1
