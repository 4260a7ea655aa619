"""APGD and APGD-T (method §3): the loop against a plain reference, the losses, the ball and the bounds,
targeted runs, determinism, torchattacks side by side, and bad arguments."""
import pytest
import torch

from sj_rga import SNNClassifier, evaluate
from sj_rga.attacks import APGD, APGDT
from sj_rga.attacks.iterative import halving_points
from sj_rga.attacks.losses import cross_entropy, dlr, targeted_dlr

from optimiser_reference import ref_apgd, ref_loss, ref_schedule


def _snapshot(model):
    return ([(type(m), m.training, getattr(m, "step_mode", None)) for m in model.modules()],
            {k: v.clone() for k, v in model.state_dict().items()})


def test_halving_points_follow_croce_and_hein():
    assert halving_points(100) == [22, 41, 57, 70, 80, 87, 93, 99] == ref_schedule(100)
    for steps in (1, 2, 5, 10, 20, 37, 250):
        points = halving_points(steps)
        assert points == ref_schedule(steps) and points[-1] <= steps and points == sorted(set(points))


def test_losses_equal_the_formulas():
    torch.manual_seed(3)
    logits, y = torch.randn(12, 10, dtype=torch.float64), torch.randint(0, 10, (12,))
    t = (y + 3) % 10
    assert torch.allclose(cross_entropy(logits, y), ref_loss(logits, y, "ce"))
    assert torch.allclose(dlr(logits, y), ref_loss(logits, y, "dlr"))
    for b in range(12):
        s = sorted(logits[b].tolist(), reverse=True)
        expected = -(logits[b, y[b]] - logits[b, t[b]]) / (s[0] - 0.5 * (s[2] + s[3]) + 1e-12)
        assert float(targeted_dlr(logits, y, t)[b]) == pytest.approx(float(expected), rel=1e-12)
    # DLR is positive exactly on misclassified samples and invariant to shifting and scaling the logits
    assert torch.equal(dlr(logits, y) > 0, logits.argmax(1) != y)
    assert torch.allclose(dlr(3 * logits + 7, y), dlr(logits, y))


@pytest.mark.parametrize("norm,eps,loss", [("Linf", 0.1, "ce"), ("Linf", 0.1, "dlr"), ("L2", 0.8, "ce")])
def test_apgd_equals_the_reference_loop(digits_models, norm, eps, loss):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8, gradient="rga")
    xb, yb = x[:24], y[:24]
    ours = APGD(clf, eps, norm, steps=25, loss=loss, seed=4)(xb, yb)
    theirs, fooled, halvings = ref_apgd(clf, xb, yb, eps, norm, 25, loss, seed=4)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert 0 < int(fooled.sum()) < 24
    assert min(halvings) < max(halvings), "the test must see samples that halve and samples that do not"


@pytest.mark.parametrize("norm,eps", [("Linf", 0.1), ("L2", 0.8)])
@pytest.mark.parametrize("gradient", ["stbp", "rga"])
def test_apgd_stays_in_ball_and_bounds_leaves_model_and_repeats(digits_models, norm, eps, gradient):
    model, _, x, y = digits_models
    before = _snapshot(model)
    clf = SNNClassifier(model, 8, gradient=gradient)
    xb, yb = x[:32], y[:32]
    attack = APGD(clf, eps, norm, steps=8, restarts=2, seed=1)
    adv = attack(xb, yb)
    delta = (adv - xb).flatten(1)
    size = delta.abs().amax(1) if norm == "Linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-6).all() and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        assert torch.equal(clf(adv).argmax(1) != yb, attack.last_broken)
    assert torch.equal(adv, APGD(clf, eps, norm, steps=8, restarts=2, seed=1)(xb, yb)), "same seed, same examples"
    assert not torch.equal(adv, APGD(clf, eps, norm, steps=8, restarts=2, seed=2)(xb, yb))
    after = _snapshot(model)
    assert before[0] == after[0] and all(torch.equal(before[1][k], after[1][k]) for k in before[1])


def test_restarts_only_run_on_unbroken_samples(digits_models):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8)
    xb, yb = x[:40], y[:40]
    one = APGD(clf, 0.1, steps=10, seed=0)
    adv1 = one(xb, yb)
    three = APGD(clf, 0.1, steps=10, restarts=3, seed=0)
    adv3 = three(xb, yb)
    assert torch.equal(adv3[one.last_broken], adv1[one.last_broken]), "restart 1 is the single run"
    assert (three.last_broken >= one.last_broken).all() and three.last_broken.sum() >= one.last_broken.sum()


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_targeted_apgd_reaches_the_target(digits_models, loss):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8)
    xb, yb = x[:48], y[:48]
    target = (yb + 1) % 10
    attack = APGD(clf, 0.25, steps=30, loss=loss, targeted=True, seed=0)
    adv = attack(xb, target)
    with torch.no_grad():
        predicted = clf(adv).argmax(1)
        untargeted = clf(APGD(clf, 0.25, steps=30, loss=loss, seed=0)(xb, yb)).argmax(1)
    assert torch.equal(predicted == target, attack.last_broken)
    assert (predicted == target).float().mean() > 0.5  # measured: 0.98 (CE), 0.98 (DLR)
    assert (predicted == target).sum() > (untargeted == target).sum()


def test_apgdt_runs_over_the_top_classes_and_beats_untargeted_dlr(digits_models):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8, gradient="rga")
    xb, yb = x[:64], y[:64]
    asr_t = evaluate(clf, APGDT(clf, 0.08, steps=20, target_classes=3), (xb, yb), progress=False).attack_success_rate
    asr_dlr = evaluate(clf, APGD(clf, 0.08, steps=20, loss="dlr"), (xb, yb), progress=False).attack_success_rate
    assert asr_t >= asr_dlr  # measured on these 64: 0.49 vs 0.44
    clean_wrong = torch.tensor([1, 2, 3, 4]), torch.tensor([0, 0, 0, 0])  # digits 1-4 labelled 0
    wrong_x = x[(y >= 1) & (y <= 4)][:4]
    adv = APGDT(clf, 0.1, steps=5)(wrong_x, clean_wrong[1])
    assert torch.equal(adv, wrong_x), "samples misclassified clean are not attacked"


def test_apgd_as_strong_as_torchattacks(digits_models):
    """The same algorithm on the same classifier; the two differ only in their random starts, so their
    ASRs are compared summed over seeds and both losses, within one point (one run's noise is about 1)."""
    torchattacks = pytest.importorskip("torchattacks")
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8, gradient="rga")
    data = (x[:240], y[:240])
    ours = theirs = 0.0
    for loss in ("ce", "dlr"):
        for seed in range(2):
            ours += evaluate(clf, APGD(clf, 0.1, steps=20, loss=loss, seed=seed), data,
                             progress=False).attack_success_rate / 4
            theirs += evaluate(clf, torchattacks.APGD(clf, eps=0.1, steps=20, loss=loss, seed=seed), data,
                               progress=False).attack_success_rate / 4
    # measured over 10 seeds, all 360 test digits, two models: 0.544 (ours) vs 0.544 (torchattacks) mean ASR
    print(f"mean ASR: ours {ours:.4f}, torchattacks {theirs:.4f}")
    assert ours >= theirs - 0.01


BAD = {
    "eps < 0": (lambda c: APGD(c, -0.1), ValueError),
    "eps nan": (lambda c: APGD(c, float("nan")), ValueError),
    "eps str": (lambda c: APGD(c, "8/255"), TypeError),
    "norm L3": (lambda c: APGD(c, 0.1, norm="L3"), ValueError),
    "steps 0": (lambda c: APGD(c, 0.1, steps=0), ValueError),
    "restarts 0": (lambda c: APGD(c, 0.1, restarts=0), ValueError),
    "loss hinge": (lambda c: APGD(c, 0.1, loss="hinge"), ValueError),
    "rho 1": (lambda c: APGD(c, 0.1, rho=1.0), ValueError),
    "seed -1": (lambda c: APGD(c, 0.1, seed=-1), ValueError),
    "targeted str": (lambda c: APGD(c, 0.1, targeted="yes"), TypeError),
    "target_classes 0": (lambda c: APGDT(c, 0.1, target_classes=0), ValueError),
    "not a classifier": (lambda c: APGD(c.model, 0.1), TypeError),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_arguments_raise_clear_errors(digits_models, name):
    call, error = BAD[name]
    with pytest.raises(error):
        call(SNNClassifier(digits_models[0], 8))


def test_dlr_needs_enough_classes_and_labels_in_range(digits_models):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        APGD(clf, 0.1, steps=2)(x[:4], y[:4] + 10)
    with pytest.raises(ValueError, match="at least 4 classes"):
        targeted_dlr(torch.randn(2, 3), torch.tensor([0, 1]), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="at least 3 classes"):
        dlr(torch.randn(2, 2), torch.tensor([0, 1]))
