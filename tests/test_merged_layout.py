"""Neurons on a merged time layout (issue 18): the attack papers' own neuron takes ``[T·B, ...]`` and splits T
itself. Registered with ``layout='merged'``, RGA and BPTR give exactly the rate backward the papers' released
code computes (re-implemented here from its formulas); registered as time-major, it is refused, never given a
wrong gradient.

The released rate backward, per neuron over the T steps of its merged input (θ = 1, hard reset to 0):
RGA ``dL/dX[t] = dL/dS[t] · g(x̄)`` with x̄ = mean_t X[t] and
``g = 1[1-λ ≤ x̄ ≤ 1+ext]·(1-γ+γλ)/(λ+ext) + 1[0 ≤ x̄ ≤ 1-λ]·γ`` (γ = 0.2, ext = β-1 = 1);
BPTR ``dL/dX[t] = dL/dS[t] · 1[mean_t S[t] > 0]``.
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import sj_rga
from sj_rga import NeuronMapping, SNNClassifier, register_neuron
from sj_rga.gradients import BPTR, RGA, gradient_mode

T = 4


class MergedLIF(nn.Module):
    """A LIF neuron in the style of the papers' ``LIFSpike`` (our own code): input ``[T·B, ...]``, split into T
    steps inside, V = λ·V + X, spike when V ≥ θ, hard reset to 0, output merged back to ``[T·B, ...]``."""

    def __init__(self, T: int, leak: float = 0.5, threshold: float = 1.0):
        super().__init__()
        self.T, self.leak, self.threshold = T, leak, threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.reshape(self.T, -1, *x.shape[1:])
        v, out = torch.zeros_like(steps[0]), []
        for x_t in steps:
            v = v * self.leak + x_t
            spike = (v >= self.threshold).to(x.dtype)
            v = (1 - spike) * v
            out.append(spike)
        return torch.stack(out).flatten(0, 1)


def _mapping(node: MergedLIF) -> NeuronMapping:
    return NeuronMapping(lam=node.leak, theta=node.threshold)


class MergedNet(nn.Module):
    """Conv → BN → neuron → pool → linear → neuron → linear on ``[T·B, ...]``; time-major in and out."""

    def __init__(self, T: int):
        super().__init__()
        self.T = T
        self.conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4))
        self.lif1 = MergedLIF(T, leak=0.5)
        self.fc = nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 12))
        self.lif2 = MergedLIF(T, leak=0.9)
        self.head = nn.Linear(12, 10)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:  # [T, B, 1, 8, 8] -> [T, B, 10]
        x = x_seq.flatten(0, 1)
        x = self.lif2(self.fc(self.lif1(self.conv(x))))
        return self.head(x).reshape(self.T, -1, 10)


class ReleasedRateBackward:
    """Hooks on every MergedLIF: its spikes forward, the released rate backward on the merged layout."""

    def __init__(self, model: nn.Module, kind: str, gamma: float = 0.2, ext: float = 1.0):
        self.model, self.kind, self.gamma, self.ext = model, kind, gamma, ext
        self.handles = []

    def _hook(self, node, inputs, spikes):
        (x,) = inputs
        steps = x.detach().reshape(node.T, -1, *x.shape[1:])
        if self.kind == "rga":
            lam, mean = node.leak, steps.mean(0)
            factor = ((mean >= 1 - lam) & (mean <= 1 + self.ext)).to(x.dtype) * \
                (1 - self.gamma + self.gamma * lam) / (lam + self.ext) + \
                ((mean <= 1 - lam) & (mean >= 0)).to(x.dtype) * self.gamma
        else:
            factor = (spikes.detach().reshape(steps.shape).mean(0) > 0).to(x.dtype)
        factor = factor.unsqueeze(0).expand_as(steps).reshape(x.shape)
        return spikes.detach() + (x - x.detach()) * factor

    def __enter__(self):
        self.handles = [m.register_forward_hook(self._hook) for m in self.model.modules() if isinstance(m, MergedLIF)]

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


@pytest.fixture
def merged():
    register_neuron(MergedLIF, _mapping, layout="merged")
    yield
    sj_rga.mapping._REGISTRY.pop(MergedLIF)


@pytest.fixture
def time_major_registration():
    register_neuron(MergedLIF, _mapping)
    yield
    sj_rga.mapping._REGISTRY.pop(MergedLIF)


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = MergedNet(T).double()
    with torch.no_grad():
        model.conv[0].weight.mul_(3.0)
        model.fc[2].weight.mul_(4.0)
    return model.eval()


def _data():
    gen = torch.Generator().manual_seed(1)
    return torch.rand(3, 1, 8, 8, generator=gen, dtype=torch.float64), torch.tensor([0, 4, 9])


def _grad(clf, x, y):
    x = x.clone().requires_grad_(True)
    logits = clf(x)
    return logits.detach(), torch.autograd.grad(F.cross_entropy(logits, y), x)[0]


@pytest.mark.parametrize("name", ["rga", "bptr"])
def test_merged_layout_equals_the_released_rate_backward(merged, name):
    model, (x, y) = _model(), _data()
    logits, grad = _grad(SNNClassifier(model, T, gradient=name), x, y)
    with ReleasedRateBackward(model, name):
        ref_logits, ref = _grad(SNNClassifier(model, T, gradient="stbp"), x, y)
    assert torch.equal(logits, ref_logits)
    assert ref.abs().max() > 0 and (ref != 0).float().mean() > 0.3
    torch.testing.assert_close(grad, ref, rtol=1e-10, atol=1e-12)


def test_a_merged_layout_registered_as_time_major_is_refused(time_major_registration):
    model, (x, y) = _model(), _data()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for name in ("rga", "bptr"):
        clf = SNNClassifier(model, T, gradient=name)
        with pytest.raises(ValueError, match=r"MergedLIF got an input of shape \(12, 4, 8, 8\).*not T = 4.*"
                                             r"layout='merged'"):
            _grad(clf, x, y)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items()) and not model.training
    with pytest.raises(ValueError, match="layout='merged'"):  # gradient_mode alone: T from the model's input
        with gradient_mode(model, BPTR()):
            model(torch.rand(T, 3, 1, 8, 8, dtype=torch.float64, requires_grad=True)).sum().backward()


def test_merged_needs_t_outside_a_classifier_and_matches_with_it(merged):
    model, (x, y) = _model(), _data()
    x_seq = x.unsqueeze(0).repeat(T, 1, 1, 1, 1).requires_grad_(True)
    with pytest.raises(ValueError, match="layout='merged'.*needs T"):
        with sj_rga.rate_mode(model):
            model(x_seq)
    with sj_rga.rate_mode(model, T=T):
        (g_mode,) = torch.autograd.grad(F.cross_entropy(model(x_seq).mean(0), y), x_seq)
    _, g_clf = _grad(SNNClassifier(model, T, gradient=RGA()), x, y)
    torch.testing.assert_close(g_mode.sum(0), g_clf, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="not a multiple of T = 5"):
        with gradient_mode(model, BPTR(), T=5):
            model(x_seq)


def test_merged_neurons_stop_the_fast_path_and_refuse_bad_layouts(merged):
    from sj_rga.fast import fast_path_obstacle
    chain = nn.Sequential(nn.Linear(3, 3), MergedLIF(T))
    assert "MergedLIF): a neuron on a merged [T·B, ...] layout" in fast_path_obstacle(chain)
    with pytest.raises(ValueError, match="rga_path='fast' cannot be proven exact.*merged"):
        SNNClassifier(chain, T, gradient="rga", rga_path="fast")
    with pytest.raises(ValueError, match="layout must be one of"):
        register_neuron(MergedLIF, _mapping, layout="batch-major")
    with pytest.raises(ValueError, match="T .time steps. must be an integer"):
        with gradient_mode(_model(), BPTR(), T=0):
            pass


def test_shuffle_test_permutes_each_samples_own_steps(merged):
    """lif1's output as the next layer sees it: per sample and neuron the spike count over the T steps is kept
    and the timing changes; a shuffle over the merged [T·B] axis would move spikes between samples."""
    model, (x, y) = _model(), _data()
    seen = []
    probe = model.fc.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().reshape(T, 3, -1)))
    report = sj_rga.shuffle_test(SNNClassifier(model, T), (x, y), batch_size=3, seed=2)
    probe.remove()
    assert report.samples == 3 and len(seen) == 2
    clean, shuffled = seen
    assert torch.equal(clean.sum(0), shuffled.sum(0)) and clean.sum() > 0 and not torch.equal(clean, shuffled)
