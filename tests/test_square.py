"""Square (Andriushchenko et al., ECCV 2020): its schedule against a transcription of the paper's, the squares it
actually draws, the ε-ball and the bounds, per-sample seeding, EOT scores, bad arguments, and a model whose input
gradient is masked (a rounding input layer: every gradient attack is blind, Square is not)."""
import math

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import neuron

from sj_rga import SNNClassifier
from sj_rga.attacks import APGD, FGSM, PGD, Square
from sj_rga.attacks.square import p_schedule, square_side
from sj_rga.seeding import sample_indices


def paper_p(iteration, queries, p_init):
    """Andriushchenko et al.'s piecewise-constant p, written out as its table (iterations of a 10 000 budget)."""
    i = int(iteration / queries * 10000)
    table = [(10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128),
             (8000, 256)]
    for upper, divisor in table:
        if i <= upper:
            return p_init / divisor
    return p_init / 512


@pytest.mark.parametrize("queries", [100, 1000, 5000, 10000, 37])
def test_p_schedule_is_the_papers(queries):
    for i in range(queries):
        assert p_schedule(i, queries, 0.8) == pytest.approx(paper_p(i, queries, 0.8))


def test_square_side_is_the_papers():
    for p in (0.8, 0.4, 0.05, 0.8 / 512):
        for c, h in ((3, 32), (1, 8), (2, 16)):
            side = round(math.sqrt(p * c * h * h / c))
            assert square_side(p, c * h * h, c, h, h, "Linf") == min(max(side, 1), h)
            l2 = max(side, 3)
            l2 = l2 if l2 % 2 else l2 + 1
            assert square_side(p, c * h * h, c, h, h, "L2") == min(l2, h)


class Spy(nn.Module):
    """Records every input it scores; its scores never change (so no candidate is ever kept) and favour
    class 0. The unused IF neuron makes it a model the classifier accepts."""

    def __init__(self):
        super().__init__()
        self.node, self.seen = neuron.IFNode(), []

    def forward(self, x_seq):
        self.seen.append(x_seq[0].detach().clone())
        scores = torch.zeros(x_seq.shape[0], x_seq.shape[1], 3)
        scores[..., 0] = 1.0
        return scores


def test_linf_squares_follow_the_schedule():
    """Each candidate differs from the starting stripes inside one square of the scheduled side: its
    changed rows span exactly that side whenever a column's sign flipped."""
    spy, queries, eps = Spy(), 60, 0.1
    clf = SNNClassifier(spy, 1, bounds=None)
    x = torch.full((2, 2, 16, 16), 0.5)
    Square(clf, eps, "Linf", queries=queries, seed=3)(x, torch.zeros(2, dtype=torch.long))
    start, candidates = spy.seen[0], spy.seen[1:]
    assert len(candidates) == queries
    assert torch.allclose((start - x).abs(), torch.full_like(x, eps))
    # vertical stripes: one sign per channel and column
    assert bool((start == start[:, :, :1, :]).all())
    checked = 0
    for i, point in enumerate(candidates):
        side = max(1, min(round(math.sqrt(paper_p(i, queries, 0.8) * 256)), 16))
        changed = (point != start).any(1)  # [B, H, W]
        for b in range(2):
            rows = changed[b].any(1).nonzero()[:, 0]
            cols = changed[b].any(0).nonzero()[:, 0]
            if rows.numel():
                assert int(rows.max() - rows.min()) + 1 == side
                assert int(cols.max() - cols.min()) + 1 <= side
                checked += 1
        assert torch.allclose((point - x).abs(), torch.full_like(x, eps))
    assert checked > queries  # most candidates flipped something


@pytest.mark.parametrize("norm,eps", [("Linf", 0.1), ("L2", 0.6)])
def test_inside_ball_and_bounds_and_stops_on_success(digits_models, norm, eps):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8)
    x, y = x[:16], y[:16]
    atk = Square(clf, eps, norm, queries=80)
    adv = atk(x, y)
    delta = (adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "Linf" else delta.norm(dim=1)
    assert bool((size <= eps + 1e-5).all()) and float(adv.min()) >= 0 and float(adv.max()) <= 1
    with torch.no_grad():
        fooled = clf(adv).argmax(1) != y
    assert torch.equal(fooled, atk.last_broken)
    assert fooled.any()
    # a broken sample stopped querying: fewer than 1 + queries evaluations
    assert bool((atk.last_queries[fooled] < 81).all()) and bool((atk.last_queries[~fooled] == 81).all())


@pytest.mark.parametrize("norm,eps", [("Linf", 0.1), ("L2", 0.6)])
def test_per_sample_seeding_batch_1_equals_batch_8(digits_models, norm, eps):
    model, _, x, y = digits_models
    atk = Square(SNNClassifier(model, 8), eps, norm, queries=40, seed=5)
    with sample_indices(range(100, 108)):
        together = atk(x[:8], y[:8])
    alone = []
    for i in range(8):
        with sample_indices([100 + i]):
            alone.append(atk(x[i:i + 1], y[i:i + 1]))
    assert torch.equal(torch.cat(alone), together)
    with sample_indices(range(200, 208)):
        assert not torch.equal(atk(x[:8], y[:8]), together)  # other samples, other squares


class Quantise(nn.Module):
    """Rounds the input to 8 levels: autograd's derivative of round is 0, so every estimator's input
    gradient is exactly zero (a gradient-quantising input layer)."""

    def forward(self, x):
        return torch.round(x * 8) / 8


def test_breaks_what_every_gradient_attack_misses_on_a_masked_model(digits_models):
    model, _, x, y = digits_models
    clf = SNNClassifier(nn.Sequential(Quantise(), model), 8)
    x, y, eps = x[:24], y[:24], 0.1
    with torch.no_grad():
        ok = clf(x).argmax(1) == y
    missed = ok.clone()
    for gradient in ("stbp", "assg", "rga", "hart"):
        member = clf.with_gradient(gradient)
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(member(xg).sum(), xg)
        assert not grad.any()
        for atk in (FGSM(member, eps), PGD(member, eps, eps / 4, 10, seed=0), APGD(member, eps, steps=10)):
            with torch.no_grad():
                missed &= clf(atk(x, y)).argmax(1) == y
    with torch.no_grad():
        square_broke = ok & (clf(Square(clf, eps, queries=150)(x, y)).argmax(1) != y)
    assert int((square_broke & missed).sum()) >= 5


class Counter(nn.Module):
    """Scores by the first two input values; counts its calls."""

    def __init__(self):
        super().__init__()
        self.node, self.calls = neuron.IFNode(), 0

    def forward(self, x_seq):
        self.calls += 1
        return torch.stack([x_seq[..., 0], x_seq[..., 1], x_seq[..., 2]], -1)


def test_poisson_scores_average_the_eot_samples():
    model = Counter()
    clf = SNNClassifier(model, 4, "poisson", eot=5, seed=0)
    atk = Square(clf, 0.05, queries=3)
    x = torch.tensor([[0.2, 0.9, 0.1, 0.5]])
    atk(x, torch.tensor([1]))
    assert model.calls == 5 * int(atk.last_queries.sum()) and model.calls >= 5


def test_targeted_flat_input_reaches_the_target():
    """A [B, D] batch: the model's class is the brightest of the first 3 values; targeted L2 and L∞."""
    clf = SNNClassifier(Counter(), 1)
    x = torch.tensor([[0.5, 0.6, 0.5, 0.5, 0.5, 0.5]]).repeat(4, 1)
    target = torch.tensor([0, 2, 0, 2])
    for norm, eps in (("Linf", 0.2), ("L2", 0.5)):
        atk = Square(clf, eps, norm, queries=200, targeted=True, loss="ce")
        adv = atk(x, target)
        with torch.no_grad():
            assert torch.equal(clf(adv).argmax(1), target)


@pytest.mark.parametrize("kwargs,error", [
    ({"queries": 0}, ValueError), ({"p_init": 0.0}, ValueError), ({"p_init": 1.5}, ValueError),
    ({"loss": "dlr"}, ValueError), ({"norm": "L1"}, ValueError), ({"eps": -1.0}, ValueError),
    ({"seed": -1}, ValueError), ({"targeted": 1}, TypeError),
])
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        Square(SNNClassifier(Counter(), 1), **{"eps": 0.1, **kwargs})


# -- Square in the suites -------------------------------------------------------------------------------------
def test_square_closes_the_standard_suite_and_full_holds_autoattacks_budget():
    from sj_rga.attacks import SUITES
    from sj_rga.attacks.autoattack import SQUARE_QUERIES

    standard, full = SUITES["standard"], SUITES["full"]
    assert standard[-1].optimiser == "square" and standard[-1].steps == SQUARE_QUERIES["standard"] < 5000
    assert full[:-1] == standard[:-1] and full[-1].optimiser == "square" and full[-1].steps == 5000
    assert standard[-1].gradients == () and standard[-1].name == f"square[{SQUARE_QUERIES['standard']}]"
    from sj_rga.attacks import SuiteAttack
    with pytest.raises(ValueError, match="gradient-free"):
        SuiteAttack("square", "assg", 10)
    with pytest.raises(ValueError, match="gradient-free"):
        SuiteAttack("apgd-ce", "none", 10)


def test_suite_keeps_each_samples_square_stream(digits_models):
    """Inside the suite an attack runs on the samples still robust; each keeps its own stream (batch 1 = 6)."""
    from sj_rga.attacks import AutoAttack, SuiteAttack

    model, _, x, y = digits_models
    atk = AutoAttack(SNNClassifier(model, 8), 0.08, version="custom",
                     attacks=[SuiteAttack("square", "none", 3), SuiteAttack("square", "none", 30)])
    with sample_indices(range(10, 16)):
        together = atk(x[:6], y[:6])
    alone = []
    for i in range(6):
        with sample_indices([10 + i]):
            alone.append(atk(x[i:i + 1], y[i:i + 1]))
    assert torch.equal(torch.cat(alone), together)


def test_default_autoattack_breaks_on_a_masked_model_what_square_breaks(digits_models):
    """The default (standard) suite: the gradient attacks are blind on the rounding model; its Square breaks
    at least what Square alone breaks with the same budget and seed."""
    from sj_rga.attacks import SUITES, AutoAttack

    model, _, x, y = digits_models
    clf = SNNClassifier(nn.Sequential(Quantise(), model), 8)
    x, y = x[:4], y[:4]
    suite = AutoAttack(clf, 0.1)
    with torch.no_grad():
        suite_broke = clf(suite(x, y)).argmax(1) != y
        square = Square(clf, 0.1, queries=SUITES["standard"][-1].steps, seed=len(SUITES["standard"]) - 1)
        square_broke = clf(square(x, y)).argmax(1) != y
    assert square_broke.any() and bool((suite_broke | ~square_broke).all())
    assert suite.breakdown[-1].broken > 0
