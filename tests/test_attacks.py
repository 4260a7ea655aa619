"""The attack toolkit on real data (scikit-learn digits): what the paper claims, measured, plus invariants."""
import pytest
import torch
from spikingjelly.activation_based import functional

import sj_rga
from sj_rga import SNNClassifier, evaluate, shuffle_test
from sj_rga.attacks import FGSM, PGD
from sj_rga.shuffle import shuffle_time

N = 240  # test images used for rates; measured figures below are on these with the fixture's seeds
EPS = 0.15  # where FGSM's ASR is between 20 and 90 % on the digits model (measured ~0.67 STBP, ~0.75 RGA)


def _asr(target, attack, x, y):
    return evaluate(target, attack, (x[:N], y[:N]), progress=False).attack_success_rate


def test_shuffle_changes_accuracy_by_at_most_two_points(digits_models):
    model, _, x, y = digits_models
    report = shuffle_test(SNNClassifier(model, 8), (x, y), seed=0)
    assert report.clean_accuracy > 0.85
    assert abs(report.clean_accuracy - report.shuffled_accuracy) <= 0.02  # measured: 0.914 vs 0.917


def test_shuffle_time_permutes_each_train_and_keeps_counts():
    spikes = (torch.rand(16, 50, 7) < 0.3).float()
    shuffled = shuffle_time(spikes, torch.Generator().manual_seed(0))
    assert torch.equal(shuffled.sum(0), spikes.sum(0))
    assert not torch.equal(shuffled, spikes)
    assert torch.equal(shuffled, shuffle_time(spikes, torch.Generator().manual_seed(0)))


def test_rga_fgsm_at_least_as_strong_as_stbp(digits_models):
    model, _, x, y = digits_models
    stbp, rga = SNNClassifier(model, 8, gradient="stbp"), SNNClassifier(model, 8, gradient="rga")
    asr_stbp, asr_rga = _asr(stbp, FGSM(stbp, EPS), x, y), _asr(rga, FGSM(rga, EPS), x, y)
    assert 0.2 <= asr_stbp <= 0.9
    assert asr_rga >= asr_stbp - 0.01  # measured on all 360: 0.754 (RGA) vs 0.669 (STBP)


def test_pgd_at_least_as_strong_as_fgsm_and_black_box_weaker(digits_models):
    model, source, x, y = digits_models
    target = SNNClassifier(model, 8)
    asr_fgsm = _asr(target, FGSM(target, EPS), x, y)
    asr_pgd = _asr(target, PGD(target, EPS, alpha=EPS / 4, steps=10, seed=0), x, y)
    asr_black = _asr(target, FGSM(SNNClassifier(source, 8), EPS), x, y)
    assert asr_pgd >= asr_fgsm
    assert 0.1 < asr_black < asr_fgsm  # measured on all 360: 0.54 transfer vs 0.75 white-box


def test_time_extended_attack_crafts_with_2T(digits_models):
    model, _, x, y = digits_models
    target = SNNClassifier(model, 8)
    extended = target.with_time_steps(16)
    assert extended.T == 16 and extended.model is model
    assert _asr(target, FGSM(extended, EPS), x, y) > 0.4


def _model_snapshot(model):
    return ([(type(m), m.training, getattr(m, "step_mode", None), id(getattr(m, "surrogate_function", None)))
             for m in model.modules()],
            {k: v.clone() for k, v in model.state_dict().items()})


def _assert_same(a, b):
    assert a[0] == b[0]
    assert all(torch.equal(a[1][k], b[1][k]) for k in a[1])


@pytest.mark.parametrize("gradient", ["stbp", "rga"])
@pytest.mark.parametrize("norm,eps", [("Linf", 0.1), ("L2", 1.0)])
def test_invariants_ball_bounds_model_and_seed(digits_models, gradient, norm, eps):
    model, _, x, y = digits_models
    model.train()  # a user's mode must come back
    functional.set_step_mode(model, "s")
    before = _model_snapshot(model)
    clf = SNNClassifier(model, 8, gradient=gradient)
    xb, yb = x[:32], y[:32]
    adv = PGD(clf, eps, alpha=eps / 4, steps=3, norm=norm, seed=1)(xb, yb)
    adv2 = PGD(clf, eps, alpha=eps / 4, steps=3, norm=norm, seed=1)(xb, yb)
    delta = (adv - xb).flatten(1)
    size = delta.abs().max(1).values if norm == "Linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-6).all()
    assert adv.min() >= 0 and adv.max() <= 1
    assert (adv != xb).any()
    assert torch.equal(adv, adv2)
    _assert_same(before, _model_snapshot(model))
    model.eval()
    functional.set_step_mode(model, "m")


@pytest.mark.parametrize("shape", [(2,), (3,), (1, 8, 8)], ids=["d=2", "d=3", "d=64"])
def test_l2_random_start_is_uniform_in_the_ball(shape):
    """Uniform in a d-ball: the radius r (in units of ε) has P(r <= t) = t^d, and the direction is isotropic."""
    from scipy import stats

    from sj_rga.models import digits_snn

    eps, samples = 0.5, 4000
    attack = PGD(SNNClassifier(digits_snn(10), 4), eps, alpha=0.1, steps=1, norm="L2", seed=3)
    delta = attack._random_delta(torch.zeros(samples, *shape, dtype=torch.float64)).flatten(1)
    d = delta.shape[1]
    radius = delta.norm(dim=1) / eps
    assert float(radius.max()) <= 1 + 1e-12
    assert stats.kstest((radius ** d).numpy(), "uniform").pvalue > 0.01
    direction = delta / delta.norm(dim=1, keepdim=True)
    assert float(direction.mean(0).abs().max()) < 4 / samples ** 0.5  # no preferred direction


def test_poisson_straight_through_eot_and_seed(digits_models):
    model, _, x, y = digits_models
    xg = x[:4].clone().requires_grad_()
    sj_rga.encoding.poisson(xg, 8).sum().backward()
    assert torch.equal(xg.grad, torch.full_like(xg, 8.0)), "d Poisson(x)/dx = 1 per step, summed over T"
    clf = SNNClassifier(model, 8, encoding="poisson", eot=3, seed=5)
    a1 = FGSM(clf, 0.1)(x[:16], y[:16])
    a2 = FGSM(SNNClassifier(model, 8, encoding="poisson", eot=3, seed=5), 0.1)(x[:16], y[:16])
    assert torch.equal(a1, a2) and (a1 != x[:16]).any()
    assert evaluate(clf, None, (x[:64], y[:64]), progress=False).clean_accuracy > 0.5


def test_frames_classifier_has_no_upper_bound():
    from sj_rga.models.vgg import dvs_vgg
    net = dvs_vgg(10)
    clf = SNNClassifier(net, 3, encoding="frames", bounds=(0.0, None))
    frames = torch.randint(0, 5, (2, 3, 2, 48, 48)).float()
    adv = FGSM(clf, 2.0)(frames, torch.tensor([1, 2]))
    assert adv.min() >= 0 and adv.max() > 5 and (adv - frames).abs().max() <= 2.0 + 1e-6
    with pytest.raises(ValueError, match="time steps"):
        SNNClassifier(net, 4, encoding="frames", bounds=(0.0, None))(frames)


BAD_CALLS = {
    "FGSM negative eps": lambda clf, model, xb, yb: FGSM(clf, -0.1),
    "PGD zero steps": lambda clf, model, xb, yb: PGD(clf, 0.1, 0.01, steps=0),
    "classifier T 0": lambda clf, model, xb, yb: SNNClassifier(model, 0),
    "labels of another length": lambda clf, model, xb, yb: FGSM(clf, 0.1)(xb, yb[:3]),
    "label out of range": lambda clf, model, xb, yb: FGSM(clf, 0.1)(xb, yb + 10),
    "float labels": lambda clf, model, xb, yb: FGSM(clf, 0.1)(xb, yb.float()),
    "NaN inputs": lambda clf, model, xb, yb: FGSM(clf, 0.1)(torch.full_like(xb, float("nan")), yb),
    "inputs above 1": lambda clf, model, xb, yb: FGSM(clf, 0.1)(xb + 2.0, yb),
    "inputs below 0": lambda clf, model, xb, yb: FGSM(clf, 0.1)(xb - 1.0, yb),
    "5-D input to an image classifier": lambda clf, model, xb, yb: clf(torch.rand(4, 8, 1, 8, 8)),
    "unknown norm": lambda clf, model, xb, yb: PGD(clf, 0.1, 0.01, norm="L3"),
    "unknown encoding": lambda clf, model, xb, yb: SNNClassifier(model, 8, encoding="morse"),
    "unknown gradient": lambda clf, model, xb, yb: SNNClassifier(model, 8, gradient="bptt"),
    "model without spiking neurons": lambda clf, model, xb, yb: SNNClassifier(torch.nn.Linear(2, 2), 8),
    "eot without poisson input": lambda clf, model, xb, yb: SNNClassifier(model, 8, eot=2),
    "integer inputs": lambda clf, model, xb, yb: clf(xb.long()),
    "evaluate on mismatched data": lambda clf, model, xb, yb: evaluate(clf, None, (xb, yb[:2])),
}


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_input_raises_and_mutates_nothing(digits_models, call):
    model, _, x, y = digits_models
    before = _model_snapshot(model)
    clf = SNNClassifier(model, 8)
    with pytest.raises((ValueError, TypeError)):
        call(clf, model, x[:4], y[:4])
    _assert_same(before, _model_snapshot(model))


def test_torchattacks_run_on_the_classifier_with_real_gradients(digits_models):
    torchattacks = pytest.importorskip("torchattacks")
    model, _, x, y = digits_models
    before = _model_snapshot(model)
    clf = SNNClassifier(model, 8, gradient="rga")
    xb, yb = x[:8], y[:8]
    ours = FGSM(clf, 0.1)(xb, yb)
    theirs = torchattacks.FGSM(clf, eps=0.1)(xb, yb)
    assert torch.equal(ours, theirs), "torchattacks' FGSM follows the same RGA gradient"
    attacks = [torchattacks.PGD(clf, eps=0.1, alpha=0.03, steps=3), torchattacks.MIFGSM(clf, eps=0.1, steps=3),
               torchattacks.EOTPGD(clf, eps=0.1, alpha=0.03, steps=2, eot_iter=2),
               torchattacks.APGD(clf, eps=0.1, steps=3, n_restarts=1),
               torchattacks.AutoAttack(clf, norm="Linf", eps=0.1, version="standard", n_classes=10, seed=0)]
    for atk in attacks[:-1]:
        adv = atk(xb, yb)
        assert (adv - xb).abs().max() > 0.007, f"{type(atk).__name__} moved nothing: zero gradient"
    auto = attacks[-1]
    for sub in auto._autoattack.attacks:  # keep the four attacks short: this checks interop, not strength
        for name, value in (("steps", 2), ("n_queries", 10)):
            if hasattr(sub, name):
                setattr(sub, name, value)
    adv = auto(xb[:4], yb[:4])
    assert (adv - xb[:4]).abs().max() <= 0.1 + 1e-6
    _assert_same(before, _model_snapshot(model))
