"""AutoAttack's discipline (method §3) with stub attacks whose answers the test controls, its final check,
its versions and bad arguments; then the real suites on a trained digits SNN."""
import dataclasses
import warnings

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import neuron

from sj_rga import SNNClassifier, evaluate
from sj_rga.attacks import APGD, SUITES, AutoAttack, SuiteAttack

CLASSES, EPS = 4, 0.15


class PixelVote(nn.Module):
    """Logits = 10 × the first 4 pixels: the class is the brightest of them. Pixel 5 carries a sample id.
    The unused IF neuron makes it a model the classifier accepts."""

    def __init__(self):
        super().__init__()
        self.node = neuron.IFNode()

    def forward(self, x_seq):
        return 10 * x_seq[..., :CLASSES]


def _batch():
    """Six samples: id 0 is misclassified clean, the others are classified correctly."""
    x = torch.full((6, 6), 0.5)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    x[torch.arange(6), y] = 0.6
    x[0, 2] = 0.7
    x[:, 5] = torch.arange(6) / 10
    return x, y


@dataclasses.dataclass(frozen=True)
class Stub(SuiteAttack):
    """A suite entry whose attack breaks exactly the samples ``breaks`` (by id) and logs the ids it saw."""

    breaks: frozenset = frozenset()
    overshoot: float = 1.0
    poison: bool = False
    escape: bool = False
    seen: list = dataclasses.field(default_factory=list, compare=False)

    def build(self, classifier, eps, norm, seed, ensemble=()):
        def attack(x, y):
            ids = [round(float(v) * 10) for v in x[:, 5]]
            self.seen.append(ids)
            out = x.clone()
            for row, sid in enumerate(ids):
                if sid in self.breaks:
                    out[row, int(y[row])] -= eps * self.overshoot
                    out[row, (int(y[row]) + 1) % CLASSES] += eps * self.overshoot
                    if self.poison:
                        out[row, 4] = float("nan")
                    if self.escape:
                        out[row, 4] = 1.2
            return out
        return attack


def _suite(*breaks, **kwargs):
    return [Stub("apgd-ce", "stbp", 1, breaks=frozenset(b), **kwargs) for b in breaks]


def test_a_sample_is_robust_only_if_every_attack_fails_and_later_attacks_see_only_survivors():
    clf = SNNClassifier(PixelVote(), 2, bounds=(0.0, 1.0))
    x, y = _batch()
    suite = _suite({1, 2}, {2, 3}, {5}, set())
    atk = AutoAttack(clf, EPS, version="custom", attacks=suite)
    adv = atk(x, y)
    result = atk.last_result
    assert result.clean_ok.tolist() == [False, True, True, True, True, True]
    assert result.broken_by.tolist() == [-1, 0, 0, 1, -1, 2]
    assert result.robust_ok.tolist() == [False, False, False, False, True, False]
    assert [s.seen for s in suite] == [[[1, 2, 3, 4, 5]], [[3, 4, 5]], [[4, 5]], [[4]]]
    assert result.attacked == [5, 3, 2, 1]
    assert torch.equal(adv[[0, 4]], x[[0, 4]]), "unbroken and clean-misclassified samples come back unchanged"
    assert torch.equal(clf(adv).argmax(1) != y, torch.tensor([True, True, True, True, False, True]))
    assert [(b.name, b.attacked, b.broken) for b in atk.breakdown] == [
        ("apgd-ce[stbp]", 5, 2), ("apgd-ce[stbp]", 3, 1), ("apgd-ce[stbp]", 2, 1), ("apgd-ce[stbp]", 1, 0)]
    report = evaluate(clf, atk, (x, y), batch_size=4, progress=False)
    assert (report.clean_accuracy, report.robust_accuracy, report.attack_success_rate) == (5 / 6, 1 / 6, 4 / 5)
    assert [b["broken"] for b in report.breakdown] == [2, 1, 1, 0]
    assert sum(b["attacked"] for b in report.breakdown) == 11


@pytest.mark.parametrize("flaw,eps,match", [(dict(overshoot=1.5), EPS, "perturbation of Linf size 0.225"),
                                            (dict(poison=True), EPS, "NaN"),
                                            (dict(escape=True), 1.0, r"bounds \(0.0, 1.0\)")],
                         ids=["outside the ball", "NaN", "outside the bounds"])
def test_the_check_catches_a_flawed_attack(flaw, eps, match):
    clf = SNNClassifier(PixelVote(), 2, bounds=(0.0, 1.0))
    x, y = _batch()
    atk = AutoAttack(clf, eps, version="custom", attacks=_suite({1, 2}, **flaw))
    with pytest.raises(RuntimeError, match=match):
        atk(x, y)


def _poisson(model=None):
    return SNNClassifier(model or PixelVote(), 2, encoding="poisson", seed=0, bounds=(0.0, 1.0))


BAD = {
    "eps < 0": (lambda c: AutoAttack(c, -0.1), ValueError, "eps"),
    "unknown suite": (lambda c: AutoAttack(c, 0.1, version="plus"), ValueError, "version"),
    "unknown norm": (lambda c: AutoAttack(c, 0.1, norm="L1"), ValueError, "norm"),
    "rand on direct input": (lambda c: AutoAttack(c, 0.1, version="rand"), ValueError, "deterministic"),
    "custom without attacks": (lambda c: AutoAttack(c, 0.1, version="custom"), ValueError, "custom"),
    "attacks without custom": (lambda c: AutoAttack(c, 0.1, attacks=SUITES["fast"]), ValueError, "custom"),
    "empty custom suite": (lambda c: AutoAttack(c, 0.1, version="custom", attacks=[]), TypeError, "non-empty"),
    "not a suite attack": (lambda c: AutoAttack(c, 0.1, version="custom", attacks=["apgd"]), TypeError,
                           "SuiteAttack"),
    "eot on direct input": (lambda c: AutoAttack(c, 0.1, version="custom",
                                                 attacks=[SuiteAttack("sapgd", "rga", 5, eot=4)]),
                            ValueError, "Poisson"),
    "unknown optimiser": (lambda c: SuiteAttack("cw", "rga", 10), ValueError, "optimiser"),
    "steps 0": (lambda c: SuiteAttack("apgd-ce", "rga", 0), ValueError, "steps"),
    "unknown gradient": (lambda c: AutoAttack(c, 0.1, version="custom", attacks=[SuiteAttack("apgd-ce", "bptt", 5)]),
                         ValueError, "gradient"),
    "not a classifier": (lambda c: AutoAttack(c.model, 0.1), TypeError, "SNNClassifier"),
    "seed -1": (lambda c: AutoAttack(c, 0.1, seed=-1), ValueError, "seed"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_arguments_raise_clear_errors(name):
    call, error, match = BAD[name]
    with pytest.raises(error, match=match):
        call(SNNClassifier(PixelVote(), 2))


def test_labels_out_of_range_are_refused():
    x, y = _batch()
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        AutoAttack(SNNClassifier(PixelVote(), 2), 0.1, version="custom", attacks=_suite({1}))(x, y + 4)


def test_rand_is_for_poisson_input_and_standard_on_poisson_warns():
    with pytest.warns(UserWarning, match="version='rand'"):
        AutoAttack(_poisson(), 0.1, version="standard")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        atk = AutoAttack(_poisson(), 0.1, version="rand")
    assert all(a.eot > 1 for a in SUITES["rand"])
    assert [c[0].eot for c in atk._crafters] == [a.eot for a in SUITES["rand"]]
    assert all(c[0].encoding == "poisson" and c[0].model is atk.classifier.model for c in atk._crafters)


def test_rand_runs_with_eot_on_poisson_digits(digits_models):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8, encoding="poisson", seed=0)
    suite = [SuiteAttack("apgd-ce", "rga", 3, eot=2), SuiteAttack("apgd-dlr", "stbp", 3, eot=2)]
    atk = AutoAttack(clf, 0.1, version="custom", attacks=suite, seed=1)
    adv = atk(x[:16], y[:16])
    assert torch.equal(adv, AutoAttack(clf, 0.1, version="custom", attacks=suite, seed=1)(x[:16], y[:16]))
    assert atk.last_result.attacked[0] == int(atk.last_result.clean_ok.sum())


def test_fast_suite_on_digits_is_a_worst_case_and_repeats(digits_models):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8)
    data = (x[:96], y[:96])
    atk = AutoAttack(clf, 0.1, version="fast", seed=0)
    report = evaluate(clf, atk, data, batch_size=48, progress=False)
    alone = evaluate(clf, SUITES["fast"][0].build(clf, 0.1, "Linf", 0), data, batch_size=48, progress=False)
    assert report.robust_accuracy <= alone.robust_accuracy
    assert report.clean_correct - sum(b["broken"] for b in report.breakdown) == round(report.robust_accuracy * 96)
    assert all(b["seconds"] > 0 for b in report.breakdown)
    again = AutoAttack(clf, 0.1, version="fast", seed=0)
    assert torch.equal(atk(x[:48], y[:48]), again(x[:48], y[:48])), "same seed, same examples"
    assert torch.equal(atk.last_result.broken_by, again.last_result.broken_by)
    assert atk.composition()[1]["seed"] == 1 and atk.composition()[0]["name"] == SUITES["fast"][0].name


def test_eps_zero_breaks_only_what_is_already_wrong(digits_models):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8)
    atk = AutoAttack(clf, 0.0, version="fast")
    adv = atk(x[:32], y[:32])
    assert torch.equal(adv, x[:32]) and (atk.last_result.broken_by == -1).all()


def test_apgd_alone_is_one_entry(digits_models):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8)
    entry = SuiteAttack("apgd-ce", "rga", 5)
    built = entry.build(clf.with_gradient("rga"), 0.1, "Linf", 3)
    assert isinstance(built, APGD) and built.steps == 5 and built.seed == 3 and built.loss_name == "ce"


def test_an_ensemble_adds_normalised_gradients_and_restarts_its_members(digits_models):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8, gradient="rga")
    assist = clf.with_gradient("assg")
    xb, yb = x[:8], y[:8]
    attack = APGD(clf, 0.1, steps=2, ensemble=[assist])
    objective = attack.objective(xb, yb)
    _, _, combined = attack.loss_and_grad(xb, objective)
    grads = []
    for member in (clf.with_gradient("rga"), clf.with_gradient("assg")):
        xg = xb.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(member(xg), yb, reduction="sum")
        (g,) = torch.autograd.grad(loss, xg)
        grads.append(g / g.flatten(1).abs().mean(1).view(-1, 1, 1, 1))
    assert torch.allclose(combined, grads[0] + grads[1], rtol=1e-5, atol=1e-6)
    assist(xb.requires_grad_(True))  # leaves ASSG statistics behind
    attack(xb.detach(), yb)
    again = APGD(clf, 0.1, steps=2, ensemble=[clf.with_gradient("assg")])(xb.detach(), yb)
    assert torch.equal(attack(xb.detach(), yb), again), "members restart at every call"
    entry = SuiteAttack("sapgd", "assg+rga", 3)
    assert entry.gradients == ("assg", "rga") and entry.name == "sapgd[assg+rga]"
    suite = AutoAttack(clf, 0.1, version="custom", attacks=[entry])
    assert [c.gradient_name for c in suite._crafters[0]] == ["assg", "rga"]
    with pytest.raises(TypeError, match="ensemble"):
        APGD(clf, 0.1, ensemble=[model])
