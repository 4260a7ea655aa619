"""SA-PGD (method §3): the step-size schedule, the loop against a plain reference, the ball and the bounds,
L∞ and L2, targeted runs, zero gradients, determinism and bad arguments."""
import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import neuron

from sj_rga import SNNClassifier
from sj_rga.attacks import SAPGD
from sj_rga.attacks.iterative import START_PART
from sj_rga.seeding import SampleStreams

from optimiser_reference import ref_sapgd


def test_step_size_starts_at_eps_and_halves_on_the_schedule():
    clf = SNNClassifier(nn.Sequential(nn.Flatten(), nn.Linear(4, 3), neuron.IFNode()), 2)
    sizes = SAPGD(clf, 0.1, steps=100).step_sizes()
    assert len(sizes) == 100 and sizes[0] == 0.1
    halvings = [k for k in range(1, 100) if sizes[k] != sizes[k - 1]]
    assert halvings == [22, 41, 57, 70, 80, 87, 93, 99]  # intervals 22, 19, 16, 13, 10, 7, 6, 6
    assert all(sizes[k] == 0.1 / 2 ** i for i, k in enumerate([0] + halvings))
    # 10 steps: the first interval ⌊2.2⌋ = 2, then ⌊0.3⌋ → 1 shorter each time, floor 1: halves every step
    assert SAPGD(clf, 0.1, steps=10).step_sizes() == [0.1, 0.1] + [0.1 / 2 ** i for i in range(1, 9)]


@pytest.mark.parametrize("norm,eps,gradient", [("Linf", 0.1, "rga"), ("Linf", 0.1, "stbp"), ("L2", 0.8, "rga")])
def test_sapgd_equals_the_reference_loop(digits_models, norm, eps, gradient):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8, gradient=gradient)
    xb, yb = x[:24], y[:24]
    attack = SAPGD(clf, eps, norm, steps=30, seed=3)
    ours = attack(xb, yb)
    theirs, fooled = ref_sapgd(clf, xb, yb, eps, norm, 30, seed=3)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert torch.equal(attack.last_broken, fooled) and 0 < int(fooled.sum()) < 24


@pytest.mark.parametrize("norm,eps", [("Linf", 0.1), ("L2", 0.8)])
def test_sapgd_stays_in_ball_and_bounds_and_repeats(digits_models, norm, eps):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8, gradient="rga")
    xb, yb = x[:32], y[:32]
    attack = SAPGD(clf, eps, norm, steps=12, seed=5)
    adv = attack(xb, yb)
    delta = (adv - xb).flatten(1)
    size = delta.abs().amax(1) if norm == "Linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-6).all() and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        assert torch.equal(clf(adv).argmax(1) != yb, attack.last_broken), "broken samples come back broken"
    assert torch.equal(adv, SAPGD(clf, eps, norm, steps=12, seed=5)(xb, yb))
    assert not torch.equal(adv, SAPGD(clf, eps, norm, steps=12, seed=6)(xb, yb))


def test_targeted_sapgd_reaches_the_target(digits_models):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8)
    xb, target = x[:48], (y[:48] + 1) % 10
    attack = SAPGD(clf, 0.25, steps=30, targeted=True, seed=0)
    with torch.no_grad():
        predicted = clf(attack(xb, target)).argmax(1)
    assert torch.equal(predicted == target, attack.last_broken)
    assert (predicted == target).float().mean() > 0.5  # measured: 0.96


class Constant(nn.Module):
    """Logits that do not depend on the input (zero gradient), with a spiking neuron the classifier needs."""

    def __init__(self):
        super().__init__()
        self.node = neuron.IFNode()
        self.bias = nn.Parameter(torch.tensor([2.0, 0.0, -1.0]))

    def forward(self, x_seq):
        return self.bias.expand(x_seq.shape[0], x_seq.shape[1], 3)


def test_zero_gradient_gives_no_step_and_no_nan():
    clf = SNNClassifier(Constant(), 2)
    x = torch.full((3, 4), 0.5)
    for norm in ("Linf", "L2"):
        attack = SAPGD(clf, 0.1, norm, steps=5, seed=0)
        adv = attack(x, torch.zeros(3, dtype=torch.long))
        assert torch.isfinite(adv).all() and not attack.last_broken.any()
        start = attack.random_start(x, SampleStreams(0, 3, (START_PART,)))
        assert torch.equal(adv, start), "with no gradient the attack stays at its random start"


@pytest.mark.parametrize("kwargs", [dict(eps=-1.0), dict(norm="L1"), dict(steps=0), dict(restarts=-1),
                                    dict(loss="cw"), dict(seed=1.5), dict(targeted=1)],
                         ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_bad_arguments_raise_clear_errors(kwargs):
    clf = SNNClassifier(Constant(), 2)
    with pytest.raises((ValueError, TypeError)):
        SAPGD(clf, **kwargs)
