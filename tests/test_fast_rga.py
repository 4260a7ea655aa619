"""The fast RGA gradient (issue 7, method §1.5): same logits and gradients as the per-layer RGA backward
wherever it is taken, and the per-layer path wherever exactness cannot be proven."""
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from lively import lively
from spikingjelly.activation_based import functional, layer, neuron

import sj_rga.gradients.time_uniform
from sj_rga import SNNClassifier
from sj_rga.fast import (
    FastPathMismatch,
    exactness,
    fast_logits,
    fast_path_obstacle,
    prove_fast_path,
    register_affine_block,
)
from sj_rga.gradients import RGA
from sj_rga.models import digits_snn, dvs_vgg, resnet17, vgg11, zoo_model

NEURONS = {
    "if_hard": (neuron.IFNode, dict(v_reset=0.0)),
    "if_soft": (neuron.IFNode, dict(v_reset=None)),
    "lif_decay_input_hard": (neuron.LIFNode, dict(tau=2.0, decay_input=True, v_reset=0.0)),
    "lif_decay_input_soft": (neuron.LIFNode, dict(tau=2.0, decay_input=True, v_reset=None)),
    "lif_no_decay_input": (neuron.LIFNode, dict(tau=2.0, decay_input=False, v_reset=0.0)),
    "plif": (neuron.ParametricLIFNode, dict(init_tau=2.0, v_reset=None)),
}


def _logits_and_grad(clf: SNNClassifier, x: torch.Tensor, y: torch.Tensor):
    x = x.clone().requires_grad_(True)
    logits = clf(x)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, y), x)
    return logits.detach(), grad


def _fast_calls(monkeypatch) -> list:
    """Record every call of the fast path from the classifier."""
    calls = []

    def spy(*args, **kwargs):
        calls.append(1)
        return fast_logits(*args, **kwargs)

    monkeypatch.setattr(sj_rga.gradients.time_uniform, "fast_logits", spy)
    return calls


def _assert_fast_equals_layer(monkeypatch, model, T, x, y, **clf_kwargs):
    """Both paths on the same input; the 'auto' path must be the fast one and agree to 1e-6 relative."""
    calls = _fast_calls(monkeypatch)
    fast = _logits_and_grad(SNNClassifier(model, T, **clf_kwargs), x, y)
    assert calls, "the 'auto' path should have been the fast one"
    calls.clear()
    per_layer = _logits_and_grad(SNNClassifier(model, T, rga_path="layer", **clf_kwargs), x, y)
    assert not calls
    torch.testing.assert_close(fast[0], per_layer[0], rtol=0, atol=0)  # the same T-step forward
    # ... as the stock neurons' own forward (with gradient mode on, so that Poisson draws the same eot samples)
    stock = SNNClassifier(model, T, **{**clf_kwargs, "gradient": "stbp"})(x)
    torch.testing.assert_close(fast[0], stock.detach(), rtol=0, atol=0)
    scale = float(per_layer[1].abs().max())
    assert scale > 0 and (per_layer[1] != 0).float().mean() > 0.5, "a trivial gradient proves nothing"
    torch.testing.assert_close(fast[1], per_layer[1], rtol=1e-6, atol=1e-6 * scale)
    return fast


def _images(batch=2, channels=3, size=8):
    return torch.rand(batch, channels, size, size, dtype=torch.float64), torch.arange(batch) % 10


@pytest.mark.parametrize("name", ["digits_snn", "vgg11", "resnet17"])
def test_reference_models_direct_input(monkeypatch, name):
    build = {"digits_snn": lambda: digits_snn(10), "vgg11": lambda: vgg11(10, image_size=8),
             "resnet17": lambda: resnet17(10, image_size=8)}[name]
    model = lively(build())
    x, y = _images(channels=1 if name == "digits_snn" else 3)
    _assert_fast_equals_layer(monkeypatch, model, 4, x, y, mean=0.4, std=0.3)


@pytest.mark.parametrize("kind", list(NEURONS))
def test_neuron_kinds_direct_and_poisson(monkeypatch, kind):
    cls, kwargs = NEURONS[kind]
    model = lively(digits_snn(10, cls, **kwargs))
    x, y = _images(batch=3, channels=1)
    _assert_fast_equals_layer(monkeypatch, model, 6, x, y)
    _assert_fast_equals_layer(monkeypatch, model, 6, x, y, encoding="poisson", seed=3, eot=2)


def test_explicit_rga_parameters(monkeypatch):
    model = lively(digits_snn(10, neuron.LIFNode, tau=2.0))
    x, y = _images(channels=1)
    _assert_fast_equals_layer(monkeypatch, model, 5, x, y, gradient=RGA(lam=0.9, beta=1.5, gamma=0.1))


def test_frames_gradient_per_frame(monkeypatch):
    model = lively(dvs_vgg(10, image_size=16))
    frames = torch.randint(0, 4, (2, 4, 2, 16, 16)).double()
    _, grad = _assert_fast_equals_layer(monkeypatch, model, 4, frames, torch.tensor([1, 2]),
                                        encoding="frames", bounds=(0.0, None))
    assert torch.allclose(grad[:, 0], grad[:, 3]), "with an affine first layer every frame gets the same gradient"


def test_time_extension(monkeypatch):
    model = lively(digits_snn(10))
    x, y = _images(channels=1)
    calls = _fast_calls(monkeypatch)
    extended = SNNClassifier(model, 4).with_time_steps(8)
    assert extended.rga_path == "auto"
    assert SNNClassifier(model, 4, rga_path="layer").with_time_steps(8).rga_path == "layer"
    fast = _logits_and_grad(extended, x, y)
    per_layer = _logits_and_grad(SNNClassifier(model, 4, rga_path="layer").with_time_steps(8), x, y)
    assert calls == [1]
    torch.testing.assert_close(fast[0], per_layer[0], rtol=0, atol=0)
    torch.testing.assert_close(fast[1], per_layer[1], rtol=1e-6, atol=1e-6 * float(per_layer[1].abs().max()))
    assert not torch.allclose(fast[1], _logits_and_grad(SNNClassifier(model, 4), x, y)[1])


def _sew(cnf: str, pool: str) -> nn.Module:
    model = zoo_model("sew_resnet18", 10, neuron.IFNode, zoo_kwargs={"cnf": cnf}, v_reset=None)
    if pool == "avg":
        model.maxpool = layer.AvgPool2d(3, 2, 1, step_mode="m")
    return lively(model)


def test_sew_resnet_add_connection(monkeypatch):
    model = _sew("ADD", "avg")
    x, y = _images(size=16)
    _assert_fast_equals_layer(monkeypatch, model, 2, x, y)


@pytest.mark.parametrize("cnf,pool,culprit", [
    ("ADD", "max", "model.maxpool (MaxPool2d): max of spikes is not affine in the rates"),
    ("AND", "avg", "model.layer1.0 (BasicBlock): a spike product (element-wise)"),
    ("IAND", "avg", "model.layer1.0 (BasicBlock): a spike product (element-wise)")])
def test_sew_resnet_max_pool_and_spike_products_take_per_layer_path(monkeypatch, cnf, pool, culprit):
    model = _sew(cnf, pool)
    assert fast_path_obstacle(model).startswith(culprit)
    with pytest.raises(ValueError, match=re.escape(culprit)):
        SNNClassifier(model, 2, rga_path="fast")
    calls = _fast_calls(monkeypatch)
    x, y = _images(batch=1, size=16)
    _logits_and_grad(SNNClassifier(model, 2), x, y)
    assert not calls


@pytest.mark.parametrize("name,culprit", [("sew_resnet18", "model.maxpool (MaxPool2d)"),
                                           ("spiking_resnet18", "model.maxpool (MaxPool2d)"),
                                           ("spiking_vgg11_bn", "model.features.3 (MaxPool2d)")])
def test_zoo_models_as_shipped_name_the_module_that_stops_them(name, culprit):
    """SpikingJelly's zoo models are traced (no registration) and refused at their first max pooling, by path."""
    verdict = prove_fast_path(zoo_model(name, 10))
    assert verdict.obstacle == f"{culprit}: max of spikes is not affine in the rates"
    assert verdict.methods[0] == "traced graph (torch.fx)"


def test_the_packages_models_take_the_fast_path():
    for model in (vgg11(10), resnet17(10), dvs_vgg(10), digits_snn(10)):
        assert fast_path_obstacle(model) is None, type(model).__name__


class SpikeProduct(nn.Module):
    """Two spiking branches multiplied element by element (a spike AND)."""

    def __init__(self, c: int):
        super().__init__()
        self.a = nn.Sequential(layer.Conv2d(c, c, 3, padding=1, step_mode="m"), neuron.IFNode(step_mode="m"))
        self.b = nn.Sequential(layer.Conv2d(c, c, 3, padding=1, step_mode="m"), neuron.IFNode(step_mode="m"))

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.a(x_seq) * self.b(x_seq)


class SpikeSquare(SpikeProduct):
    """One spiking branch times itself (the same graph node twice)."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        spikes = self.a(x_seq)
        return spikes * spikes


class SpikeAttention(nn.Module):
    """Spiking self-attention over the flattened positions: (Q Kᵀ) V of spike tensors."""

    def __init__(self, c: int):
        super().__init__()
        self.q, self.k, self.v = (nn.Sequential(layer.Linear(c, c, step_mode="m"), neuron.IFNode(step_mode="m"))
                                  for _ in range(3))

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        tokens = x_seq.flatten(3).transpose(2, 3)  # [T, B, HW, C]
        out = (self.q(tokens) @ self.k(tokens).transpose(2, 3)) @ self.v(tokens) * 0.1
        return out.transpose(2, 3).reshape(x_seq.shape)


class Residual(nn.Module):
    """``neuron(body(x) + x)``: a plain residual sum."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(layer.Conv2d(c, c, 3, padding=1, step_mode="m"), layer.BatchNorm2d(c, step_mode="m"),
                                  neuron.IFNode(step_mode="m"), layer.Conv2d(c, c, 3, padding=1, step_mode="m"))
        self.neuron = neuron.IFNode(step_mode="m")

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.neuron(self.body(x_seq) + x_seq)


def _small_net(middle: nn.Module) -> nn.Module:
    return lively(nn.Sequential(layer.Conv2d(1, 4, 3, padding=1, step_mode="m"), layer.BatchNorm2d(4, step_mode="m"),
                                 neuron.IFNode(step_mode="m"), middle, layer.Flatten(step_mode="m"),
                                 layer.Linear(4 * 64, 10, step_mode="m")))


@pytest.mark.parametrize("middle,culprit", [
    (lambda: nn.Sequential(layer.MaxPool2d(3, 1, 1, step_mode="m"), layer.Conv2d(4, 4, 1, step_mode="m"),
                           neuron.IFNode(step_mode="m")), "model.3.0 (MaxPool2d): max of spikes is not affine"),
    (lambda: SpikeProduct(4), "model.3 (SpikeProduct): a spike product (element-wise)"),
    (lambda: SpikeAttention(4), "model.3 (SpikeAttention): a spike product (matrix"),
    (lambda: SpikeSquare(4), "model.3 (SpikeSquare): a spike product (element-wise)"),
    (lambda: UntraceableResidual(4), "model.3 (UntraceableResidual): torch.fx cannot trace its forward"),
])
def test_unprovable_models_take_per_layer_path(monkeypatch, middle, culprit):
    model = _small_net(middle())
    assert fast_path_obstacle(model).startswith(culprit)
    with pytest.raises(ValueError, match=re.escape(culprit)):
        SNNClassifier(model, 4, rga_path="fast")
    calls = _fast_calls(monkeypatch)
    x, y = _images(channels=1)
    _logits_and_grad(SNNClassifier(model, 4), x, y)
    assert not calls


class UntraceableResidual(Residual):
    """The same block with a forward torch.fx cannot follow (control flow on the input's rank)."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if x_seq.dim() != 5:
            raise ValueError("expected [T, B, C, H, W]")
        return self.neuron(self.body(x_seq) + x_seq)


class DeclaredResidual(UntraceableResidual):
    """The same untraceable block, declared affine (the exact class is matched)."""


@pytest.fixture
def affine_blocks():
    """The global block registry, put back as it was after the test."""
    saved = dict(exactness._AFFINE_BLOCKS)
    yield exactness._AFFINE_BLOCKS
    exactness._AFFINE_BLOCKS.clear()
    exactness._AFFINE_BLOCKS.update(saved)


def test_declared_residual_block_takes_fast_path(monkeypatch, affine_blocks):
    model = _small_net(DeclaredResidual(4))
    assert "DeclaredResidual" in fast_path_obstacle(model)
    register_affine_block(DeclaredResidual)
    assert (DeclaredResidual.__module__, "DeclaredResidual") in affine_blocks
    assert prove_fast_path(model) == exactness.Verdict(None, ("module structure", exactness.DECLARED))
    x, y = _images(channels=1)
    _assert_fast_equals_layer(monkeypatch, model, 4, x, y)


def test_a_wrong_declaration_is_caught_at_run_time():
    """Forcing the replay through a max pool (not affine) raises instead of returning a wrong gradient."""
    model = _small_net(nn.Sequential(layer.MaxPool2d(3, 1, 1, step_mode="m"), layer.Conv2d(4, 4, 1, step_mode="m"),
                                     neuron.IFNode(step_mode="m")))
    functional.set_step_mode(model, "m")
    model.eval()
    functional.reset_net(model)
    x_seq = torch.rand(1, 2, 1, 8, 8, dtype=torch.float64).expand(6, -1, -1, -1, -1).requires_grad_(True)
    with pytest.raises(RuntimeError, match="not affine per time step"):
        fast_logits(model, x_seq, lambda seq: model(seq).mean(0), RGA())


def test_parameter_gradients_agree():
    model = lively(digits_snn(10, neuron.LIFNode, tau=2.0))
    x, y = _images(channels=1)
    grads = []
    for path in ("fast", "layer"):
        loss = F.cross_entropy(SNNClassifier(model, 4, rga_path=path, parameter_gradients=True)(x), y)
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
    for fast, per_layer in zip(*grads):
        torch.testing.assert_close(fast, per_layer, rtol=1e-6, atol=1e-6 * float(per_layer.abs().max()) + 1e-30)


def test_contract_state_modes_no_grad_and_float32(monkeypatch):
    model = digits_snn(10)
    model.train()
    functional.set_step_mode(model, "s")
    with torch.no_grad():
        model(torch.rand(2, 1, 8, 8))  # a user's leftover neuron state
    before = [(m.training, getattr(m, "step_mode", None)) for m in model.modules()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    memories = [float(m.v.sum()) for m in model.modules() if isinstance(m, neuron.BaseNode)]
    x, y = torch.rand(4, 1, 8, 8), torch.arange(4)
    calls = _fast_calls(monkeypatch)
    fast = _logits_and_grad(SNNClassifier(model, 8), x, y)
    assert calls
    assert before == [(m.training, getattr(m, "step_mode", None)) for m in model.modules()]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert memories == [float(m.v.sum()) for m in model.modules() if isinstance(m, neuron.BaseNode)]
    with torch.no_grad():
        torch.testing.assert_close(SNNClassifier(model, 8)(x), fast[0], rtol=0, atol=0)
    per_layer = _logits_and_grad(SNNClassifier(model, 8, rga_path="layer"), x, y)
    torch.testing.assert_close(fast[0], per_layer[0], rtol=0, atol=0)
    torch.testing.assert_close(fast[1], per_layer[1], rtol=1e-4, atol=1e-5 * float(per_layer[1].abs().max()))


def test_rga_path_argument_is_checked():
    with pytest.raises(ValueError, match="rga_path"):
        SNNClassifier(digits_snn(10), 4, rga_path="quick")


def test_a_residual_block_with_its_own_forward_is_proven_from_its_graph(monkeypatch):
    model = _small_net(Residual(4))  # no registration
    assert prove_fast_path(model) == exactness.Verdict(None, ("module structure", "traced graph (torch.fx)"))
    x, y = _images(channels=1)
    _assert_fast_equals_layer(monkeypatch, model, 4, x, y)


class SEWBlock(nn.Module):
    """A SEW residual block as papers write it: ``sn2(bn2(conv2(sn1(bn1(conv1(x)))))) + x`` (ADD connection)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = layer.SeqToANNContainer(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.sn1 = neuron.IFNode(step_mode="m")
        self.conv2 = layer.SeqToANNContainer(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.sn2 = neuron.IFNode(step_mode="m")

    def forward(self, x):
        out = self.sn2(self.conv2(self.sn1(self.conv1(x))))
        return out + x


class SEWLike(nn.Module):
    """A SEW-ResNet-like network with an average-pool stem, its own forward (no registration anywhere)."""

    def __init__(self, classes: int = 10, c: int = 4):
        super().__init__()
        self.conv1 = layer.SeqToANNContainer(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.sn1 = neuron.LIFNode(tau=2.0, v_threshold=0.5, step_mode="m")
        self.pool = layer.SeqToANNContainer(nn.AvgPool2d(2))
        self.layer1 = nn.Sequential(SEWBlock(c), SEWBlock(c))
        self.avgpool = layer.SeqToANNContainer(nn.AdaptiveAvgPool2d((1, 1)))
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = self.pool(self.sn1(self.conv1(x)))
        x = self.avgpool(self.layer1(x))
        return self.fc(torch.flatten(x, 2))


class UserWrapper(nn.Module):
    """A user's wrapper with its own forward: time mean of the backbone's logits and a fixed scale."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.scale = 2.0

    def forward(self, x):
        T, B = x.shape[:2]
        logits = self.backbone(x)
        return logits.reshape(T, B, -1).mean(0) * self.scale


def test_sew_like_model_and_a_user_wrapper_take_the_fast_path_with_equal_gradients(monkeypatch):
    for model in (SEWLike(), UserWrapper(SEWLike())):
        model = lively(model)
        verdict = prove_fast_path(model)
        assert verdict.exact and "traced graph (torch.fx)" in verdict.methods, verdict
        x, y = _images(channels=3)
        for kwargs in ({}, dict(gradient="bptr"), dict(gradient="hart"), dict(encoding="poisson", seed=1)):
            _assert_fast_equals_layer(monkeypatch, model, 3, x, y, **kwargs)


def test_layouts_take_the_fast_path_with_equal_gradients(monkeypatch):
    from model_styles import StaticInputSNN
    from test_layouts import BatchFirstView

    x, y = _images(channels=1)
    _assert_fast_equals_layer(monkeypatch, lively(StaticInputSNN(4)), 4, x, y, input_layout="B")
    _assert_fast_equals_layer(monkeypatch, lively(BatchFirstView(digits_snn(10))), 4, x, y, input_layout="BT",
                              output=0)


class TimeSum(nn.Module):
    """Linear after the last spiking layer, but a sum over time rather than a mean."""

    def __init__(self):
        super().__init__()
        self.net = digits_snn(10)

    def forward(self, x):
        return self.net(x).sum(0)


class FixedSteps(nn.Module):
    """A forward that reshapes with its own ``self.T`` (it cannot run at T = 1)."""

    def __init__(self, T: int):
        super().__init__()
        self.T, self.net = T, digits_snn(10)

    def forward(self, x):
        return self.net(x.flatten(0, 1).reshape(self.T, -1, 1, 8, 8)).mean(0)


@pytest.mark.parametrize("build,match", [(TimeSum, "logits of the T = 1 pass differ"),
                                         (lambda: FixedSteps(4), "does not run at T = 1")])
def test_what_the_graph_cannot_show_is_caught_at_run_time(monkeypatch, build, match):
    """The T = 1 pass is checked: 'fast' raises, 'auto' takes the per-layer backward and remembers why."""
    model = lively(build())
    assert prove_fast_path(model).exact  # linear operations pass the graph: their time action is checked at run time
    x, y = _images(channels=1)
    with pytest.raises(FastPathMismatch, match=match):
        _logits_and_grad(SNNClassifier(model, 4, rga_path="fast"), x, y)
    calls = _fast_calls(monkeypatch)
    auto = _logits_and_grad(SNNClassifier(model, 4), x, y)
    per_layer = _logits_and_grad(SNNClassifier(model, 4, rga_path="layer"), x, y)
    assert len(calls) == 1
    torch.testing.assert_close(auto, per_layer, rtol=0, atol=0)
    verdict = prove_fast_path(model)
    assert match in verdict.obstacle and verdict.methods[-1] == exactness.RUN_TIME
    _logits_and_grad(SNNClassifier(model, 4), x, y)
    assert len(calls) == 1  # not tried again


def test_the_verdict_follows_changes_to_the_model(affine_blocks):
    model = SEWLike()
    assert prove_fast_path(model).exact
    model.pool = nn.MaxPool2d(2)  # a change after the first verdict
    assert prove_fast_path(model).obstacle.startswith("model.pool (MaxPool2d)")
    with pytest.raises(ValueError, match=r"decided from the traced graph \(torch.fx\)"):
        SNNClassifier(model, 2, rga_path="fast")
    model.pool = layer.SeqToANNContainer(nn.AvgPool2d(2))
    model.layer1[1] = UntraceableResidual(4)
    assert "model.layer1.1 (UntraceableResidual): torch.fx cannot trace" in prove_fast_path(model).obstacle
    register_affine_block(UntraceableResidual)  # a registration changes the verdict too
    assert prove_fast_path(model).exact


def test_an_untraceable_forward_is_judged_by_its_children_and_names_the_real_obstacle():
    """Spike-Driven-Transformer-style code branches on ``len(x.shape)``: torch.fx cannot trace the top level, and
    the verdict names the spike product inside, and says how it was found."""
    from model_styles import BatchFirstSNN

    verdict = prove_fast_path(BatchFirstSNN())
    assert verdict.obstacle.startswith("model.attn (SpikeDrivenAttention): a spike product (element-wise)")
    assert verdict.methods[0] == "module structure (torch.fx could not trace BatchFirstSNN.forward)"
    assert "traced graph (torch.fx)" in verdict.methods


class SideEffects(nn.Module):
    """A forward that resets its own neurons and keeps the last input's shape, as some published code does."""

    def __init__(self):
        super().__init__()
        self.net = digits_snn(10)
        self.last_shape = None

    def forward(self, x):
        functional.reset_net(self)
        self.last_shape = x.shape
        return self.net(x)


def test_tracing_leaves_the_model_as_it_was():
    model = SideEffects()
    functional.set_step_mode(model, "m")
    with torch.no_grad():
        model(torch.rand(3, 2, 1, 8, 8))
    memories = [m.v.clone() for m in model.modules() if isinstance(m, neuron.BaseNode)]
    shape = model.last_shape
    assert prove_fast_path(model).exact and SNNClassifier(model, 3, rga_path="fast").rga_path == "fast"
    assert model.last_shape is shape
    model.net[2].register_forward_pre_hook(lambda module, args: None).remove()  # hook tables are the same objects
    assert all(torch.equal(a, m.v) for a, m in zip(memories, [m for m in model.modules()
                                                                if isinstance(m, neuron.BaseNode)]))


class StarUnpacking(nn.Module):
    """``T, B, *rest = x.shape``: torch.fx cannot iterate a traced shape of unknown length."""

    def __init__(self):
        super().__init__()
        self.net = digits_snn(10)

    def forward(self, x):
        T, B, *rest = x.shape
        return self.net(x.reshape(T, B, *rest))


def test_shape_unpacking_is_traced_and_what_cannot_be_is_said():
    from model_styles import AttentionSNN

    verdict = prove_fast_path(AttentionSNN())  # T, B, C, H, W = x.shape in its forward and its stem's
    assert verdict.methods == ("traced graph (torch.fx)",)
    assert verdict.obstacle.startswith("model.attn (SelfAttention): a spike product (matrix, as attention's q @ kᵀ)")
    verdict = prove_fast_path(StarUnpacking())
    assert verdict.obstacle.startswith("model (StarUnpacking): torch.fx cannot trace its forward (TraceError")
    assert verdict.methods[0] == "module structure (torch.fx could not trace StarUnpacking.forward)"
