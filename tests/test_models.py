"""Reference models: architecture (parameter counts worked out by hand), shapes at several T, neurons, zoo."""
import pytest
import torch
from spikingjelly.activation_based import functional, neuron

import sj_rga
from sj_rga import models


def conv(c_in: int, c_out: int, k: int = 3, bias: bool = True) -> int:
    return k * k * c_in * c_out + (c_out if bias else 0)


def bn(c: int) -> int:
    return 2 * c  # affine weight and bias; running statistics are buffers


def fc(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def spiking(model: torch.nn.Module) -> list:
    return [m for m in model.modules() if isinstance(m, neuron.BaseNode)]


def vgg11_count(classes: int) -> int:
    channels = [3, 64, 128, 256, 512, 512, 512, 512, 512]
    convs = sum(conv(a, b) + bn(b) for a, b in zip(channels, channels[1:]))
    return convs + fc(512 * 4 * 4, 4096) + fc(4096, 4096) + fc(4096, classes)


def resnet17_count(classes: int) -> int:
    def block(c_in, c_out, shortcut):
        own = conv(c_in, c_out, bias=False) + bn(c_out) + conv(c_out, c_out, bias=False) + bn(c_out)
        return own + (conv(c_in, c_out, k=1, bias=False) + bn(c_out) if shortcut else 0)

    stage1 = block(64, 64, True) + 2 * block(64, 64, False)
    stage2 = block(64, 128, True) + 3 * block(128, 128, False)
    stem = conv(3, 64, bias=False) + bn(64)
    return stem + stage1 + stage2 + fc(2048, 256) + bn(256) + fc(256, classes)


def dvs_vgg_count(classes: int) -> int:
    channels = [2, 64, 128, 256, 256, 512, 512, 512, 512]
    convs = sum(conv(a, b) + bn(b) for a, b in zip(channels, channels[1:]))
    return convs + fc(512 * 9, classes)


def digits_count(classes: int) -> int:
    return conv(1, 16) + bn(16) + conv(16, 32) + bn(32) + fc(32 * 2 * 2, 128) + fc(128, classes)


@pytest.mark.parametrize("name, classes, expected, n_neurons, shape", [
    ("vgg11", 10, vgg11_count(10), 10, (2, 2, 3, 32, 32)),
    ("vgg11", 100, vgg11_count(100), 10, (2, 2, 3, 32, 32)),
    ("resnet17", 10, resnet17_count(10), 1 + 7 * 2, (2, 2, 3, 32, 32)),
    ("dvs_vgg", 10, dvs_vgg_count(10), 8, (2, 2, 2, 48, 48)),
    ("digits_snn", 10, digits_count(10), 3, (2, 2, 1, 8, 8)),
])
def test_architecture_parameter_count_and_output_shape(name, classes, expected, n_neurons, shape):
    model = models.build(name, classes)
    assert n_params(model) == expected
    assert len(spiking(model)) == n_neurons
    assert all(m.step_mode == "m" for m in model.modules() if hasattr(m, "step_mode"))
    with torch.no_grad():
        out = model(torch.rand(shape))
    assert out.shape == (shape[0], shape[1], classes)


def test_resnet17_has_the_papers_layer_count():
    model = models.resnet17(10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len([c for c in convs if c.kernel_size == (3, 3)]) + len(linears) == 17
    assert [c.stride for c in convs if c.kernel_size == (1, 1)] == [(2, 2), (2, 2)]
    assert isinstance(model[-2][0], torch.nn.BatchNorm1d)  # no neuron between the BN and the classifier


@pytest.mark.parametrize("T", [1, 2, 5, 8])
def test_forward_at_several_time_steps_is_per_step(T):
    model = models.digits_snn(10).eval()
    x = torch.rand(T, 3, 1, 8, 8)
    with torch.no_grad():
        out = model(x)
        functional.reset_net(model)
        first = model(x[:1])
    assert out.shape == (T, 3, 10)
    assert torch.allclose(out[0], first[0], atol=1e-6)  # step 0 sees only x[0]: outputs are per time step


def test_paper_neuron_maps_leak_to_spikingjelly_neurons():
    cls, kwargs = models.paper_neuron(1.0)
    assert cls is neuron.IFNode and kwargs["v_threshold"] == 1.0 and kwargs["v_reset"] == 0.0
    assert type(kwargs["surrogate_function"]).__name__ == "PiecewiseQuadratic"
    assert kwargs["surrogate_function"].alpha == 1.0
    cls, kwargs = models.paper_neuron(0.5, detach_reset=True)
    assert cls is neuron.LIFNode and kwargs["tau"] == pytest.approx(2.0)
    assert kwargs["decay_input"] is False and kwargs["detach_reset"] is True
    node = cls(step_mode="m", **kwargs)
    # V = 0.5 V + 0.6: 0.6, 0.9, 1.05 -> spike at the third step, hard reset to 0, then 0.6 again.
    spikes = node(torch.full((4, 1), 0.6))
    assert spikes.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="lam"):
        models.paper_neuron(0.0)


def test_built_model_uses_the_requested_leak_and_surrogate():
    model = models.build("digits_snn", 10, lam=0.9, surrogate="Sigmoid", surrogate_kwargs={"alpha": 4.0})
    nodes = spiking(model)
    assert all(isinstance(n, neuron.LIFNode) and n.tau == pytest.approx(10.0) for n in nodes)
    assert all(type(n.surrogate_function).__name__ == "Sigmoid" for n in nodes)
    assert len({id(n.surrogate_function) for n in nodes}) == len(nodes)  # no shared surrogate modules


def test_rga_surrogate_and_rate_neuron_swap_in():
    for model in (models.build("digits_snn", 10, lam=0.9, surrogate="RGA"),
                  models.digits_snn(10, sj_rga.RateLIFNode, tau=2.0, decay_input=False, v_reset=0.0)):
        x = torch.rand(4, 2, 1, 8, 8, requires_grad=True)
        model(x).mean(0).sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", ["spiking_vgg11_bn", "sew_resnet18"])
def test_zoo_models_load_with_chosen_neuron_in_multi_step_mode(name):
    model = models.build(name, 10, lam=0.5)
    nodes = spiking(model)
    assert nodes and all(isinstance(n, neuron.LIFNode) and n.step_mode == "m" for n in nodes)
    with torch.no_grad():
        assert model.eval()(torch.rand(1, 1, 3, 32, 32)).shape == (1, 1, 10)


def test_zoo_model_direct_call_takes_zoo_kwargs():
    model = models.zoo_model("sew_resnet18", 5, neuron.IFNode, zoo_kwargs={"cnf": "IAND"})
    assert model.fc.out_features == 5


def test_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        models.build("nope", 10)
    with pytest.raises(ValueError, match="unknown surrogate"):
        models.build("digits_snn", 10, surrogate="Nope")
    with pytest.raises(ValueError, match="divisible by 8"):
        models.vgg11(10, image_size=36)
    with pytest.raises(ValueError, match="multi-step"):
        models.digits_snn(10, neuron.IFNode, step_mode="s")
    with pytest.raises(ValueError, match="zoo"):
        models.build("sew_resnet18", 10, in_channels=2)
