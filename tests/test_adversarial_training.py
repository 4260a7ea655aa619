"""Adversarial training (method §4): the inner maximisation and one training step against plain-torch references
written from the papers' formulas, BatchNorm and modes in both phases, settings, checkpoints and the command line."""
import contextlib
import copy
import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, neuron

from sj_rga import SNNClassifier, checkpoints, training
from sj_rga.adversarial import AdversarialConfig, adversarial_examples, adversarial_loss
from sj_rga.cli import main as cli_main
from sj_rga.experiment import GRADIENTS
from sj_rga.training import InputSpec, TrainConfig

from rga_reference import ReferenceRGA

T = 8


def _reference_logits(model, x, mean=None, std=None):
    """Logits ``[B, classes]``: BatchNorm in eval, neurons in train (0.0.0.0.14's eval path has no input
    gradient), fresh state, the image repeated T times, optionally normalised, output averaged over T."""
    model.eval()
    for m in model.modules():
        if isinstance(m, neuron.BaseNode):
            m.train()
    functional.reset_net(model)
    x_seq = x.unsqueeze(0).repeat(T, *([1] * x.dim()))
    if mean is not None:
        x_seq = (x_seq - mean) / std
    return model(x_seq).mean(0)


def reference_inner(model, x, y, delta, method, eps, alpha, steps, gradient, mean=None, std=None):
    """PGD-AT / FGSM-AT (Madry et al.; Wong et al.) and TRADES (Zhang et al.) inner maximisation in plain torch:
    start at clip(x + δ), ``steps`` signed steps of ``alpha`` on CE (or KL(p(x) ‖ p(x')) for TRADES), each
    projected onto the L∞ ball and [0, 1]. RGA gradients by the independent hook reference (method §1.2)."""
    context = ReferenceRGA(model) if gradient == "rga" else contextlib.nullcontext()
    with context:
        if method == "trades":
            with torch.no_grad():
                clean = F.softmax(_reference_logits(model, x, mean, std), dim=-1)
        x_adv = (x + delta).clamp(0, 1)
        for _ in range(steps):
            z = x_adv.clone().requires_grad_(True)
            out = _reference_logits(model, z, mean, std)
            if method == "trades":
                loss = (clean * (clean.log() - F.log_softmax(out, -1))).sum()
            else:
                loss = F.cross_entropy(out, y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, z)
            x_adv = torch.min(torch.max(x_adv + alpha * grad.sign(), x - eps), x + eps).clamp(0, 1)
    functional.reset_net(model)
    return x_adv.detach()


@pytest.fixture(scope="module")
def trained(digits_models):
    model, _, x, y = digits_models
    return model, x[:24], y[:24]


@pytest.mark.parametrize("gradient", ["stbp", "rga"])
@pytest.mark.parametrize("method,steps", [("fgsm", 1), ("pgd", 3), ("trades", 3)])
def test_inner_maximisation_equals_the_reference(trained, method, steps, gradient):
    model, x, y = trained
    config = AdversarialConfig(method, eps=0.1, steps=steps, gradient=gradient)
    delta = torch.empty_like(x).uniform_(-0.1, 0.1) if method != "trades" else 0.001 * torch.randn_like(x)
    before = copy.deepcopy(model.state_dict())
    adv = adversarial_examples(SNNClassifier(model, T, gradient=gradient), config, x, y, delta)
    expected = reference_inner(model, x, y, delta, method, 0.1, config.alpha, steps, gradient)
    assert (adv - x).abs().max() <= 0.1 + 1e-6 and not torch.equal(adv, x)
    torch.testing.assert_close(adv, expected, atol=1e-6, rtol=0)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_default_step_sizes_and_recorded_values():
    assert AdversarialConfig("fgsm", eps=0.1).alpha == pytest.approx(0.125)  # Wong et al.: 1.25 ε
    pgd = AdversarialConfig("pgd", eps=8 / 255)
    assert (pgd.steps, pgd.alpha, pgd.gradient) == (10, pytest.approx(2.5 * 8 / 255 / 10), "rga")
    assert AdversarialConfig("trades", eps=0.1, steps=4, alpha=0.03).beta == 6.0
    assert not AdversarialConfig().active and AdversarialConfig().eps is None


def test_losses_follow_the_formulas():
    torch.manual_seed(1)
    clean, adv, y = torch.randn(5, 10), torch.randn(5, 10), torch.randint(0, 10, (5,))
    ce = -F.log_softmax(adv, -1)[torch.arange(5), y]
    torch.testing.assert_close(adversarial_loss(AdversarialConfig("pgd", eps=0.1), None, adv, y), ce)
    p_clean, p_adv = F.softmax(clean.double(), -1), F.softmax(adv.double(), -1)
    kl = (p_clean * (p_clean / p_adv).log()).sum(-1)
    trades = -p_clean.log()[torch.arange(5), y] + 2.5 * kl
    got = adversarial_loss(AdversarialConfig("trades", eps=0.1, beta=2.5), clean, adv, y)
    torch.testing.assert_close(got.double(), trades, atol=1e-5, rtol=1e-5)


def _sgd_reference_step(model, loss, lr, momentum, weight_decay):
    """One SGD step from zero momentum: p ← p − lr·(∇p + wd·p) (torch's first momentum step is the gradient)."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p -= lr * (g + weight_decay * p)


@pytest.mark.parametrize("method,gradient,normalise", [("pgd", "rga", False), ("pgd", "stbp", True),
                                                       ("fgsm", "rga", True), ("trades", "rga", False)])
def test_one_training_step_equals_the_reference(trained, method, gradient, normalise):
    source, x, y = trained
    n, seed = 16, 3
    mean, std = ((0.3,), (0.4,)) if normalise else (None, None)
    model, reference = copy.deepcopy(source), copy.deepcopy(source)
    steps = 1 if method == "fgsm" else 2
    adversarial = AdversarialConfig(method, eps=0.1, steps=steps, gradient=gradient, beta=3.0)
    config = TrainConfig(epochs=1, batch_size=n, lr=0.05, seed=seed, progress=False, device="cpu",
                         adversarial=adversarial)
    data = torch.utils.data.TensorDataset(x[:n], y[:n])
    training.train(model, data, InputSpec(T, mean=mean, std=std), config)

    # the reference: GlobalBatches' documented order and start generator, then BPTT in training mode
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    xb, yb = x[:n][order], y[:n][order]
    starts = torch.Generator().manual_seed(seed + training.START_SEED_OFFSET)
    delta = (0.001 * torch.randn(xb.shape, generator=starts) if method == "trades"
             else (torch.rand(xb.shape, generator=starts) * 2 - 1) * 0.1)
    m = None if mean is None else torch.tensor(mean).reshape(1, 1, -1, 1, 1)
    s = None if std is None else torch.tensor(std).reshape(1, 1, -1, 1, 1)
    x_adv = reference_inner(reference, xb, yb, delta, method, 0.1, adversarial.alpha, steps, gradient, m, s)
    reference.train()

    def train_logits(z):
        functional.reset_net(reference)
        z_seq = z.unsqueeze(0).repeat(T, 1, 1, 1, 1)
        return reference((z_seq - m) / s if m is not None else z_seq).mean(0)

    if method == "trades":
        clean = train_logits(xb)
        adv = train_logits(x_adv)
        p_clean = F.softmax(clean, -1)
        kl = (p_clean * (F.log_softmax(clean, -1) - F.log_softmax(adv, -1))).sum(-1)
        loss = (F.cross_entropy(clean, yb, reduction="none") + 3.0 * kl).mean()
    else:
        loss = F.cross_entropy(train_logits(x_adv), yb)
    _sgd_reference_step(reference, loss, 0.05, 0.9, 5e-4)
    for (name, got), expected in zip(model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4, msg=name)
    assert not model.training


def test_attack_sees_eval_mode_and_the_update_trains_batchnorm(trained):
    source, x, y = trained
    model = copy.deepcopy(source)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    modes: list[bool] = []
    handle = norms[0].register_forward_hook(lambda module, args, out: modes.append(module.training))
    running = norms[0].running_mean.clone()
    config = TrainConfig(epochs=1, batch_size=8, max_batches=2, progress=False, device="cpu",
                         adversarial=AdversarialConfig("pgd", eps=0.1, steps=3, gradient="stbp"))
    training.train(model, torch.utils.data.TensorDataset(x, y), InputSpec(T), config)
    handle.remove()
    # per step: 3 attack gradients with BatchNorm in eval, then one training forward in train mode
    assert modes == [False, False, False, True] * 2
    assert norms[0].num_batches_tracked == source[1].num_batches_tracked + 2
    assert not torch.equal(norms[0].running_mean, running)
    assert not model.training


def test_trades_updates_statistics_on_both_forwards(trained):
    source, x, y = trained
    model = copy.deepcopy(source)
    config = TrainConfig(epochs=1, batch_size=8, max_batches=1, progress=False, device="cpu",
                         adversarial=AdversarialConfig("trades", eps=0.1, steps=1))
    result = training.train(model, torch.utils.data.TensorDataset(x, y), InputSpec(T), config)
    assert model[1].num_batches_tracked == source[1].num_batches_tracked + 2
    assert set(result.history[0]) == {"epoch", "loss", "accuracy", "adversarial_accuracy"}


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(method="madry", eps=0.1), ValueError, "fgsm, pgd, trades"),
    (dict(method="pgd"), ValueError, "needs eps"),
    (dict(method="pgd", eps=0.0), ValueError, "must be > 0"),
    (dict(method="pgd", eps=float("nan")), ValueError, "finite"),
    (dict(method="pgd", eps="0.1"), TypeError, "real number"),
    (dict(method="pgd", eps=0.1, steps=0), ValueError, "steps"),
    (dict(method="pgd", eps=0.1, steps=2.5), ValueError, "steps"),
    (dict(method="pgd", eps=0.1, alpha=-1.0), ValueError, "alpha"),
    (dict(method="fgsm", eps=0.1, steps=3), ValueError, "exactly one step"),
    (dict(method="pgd", eps=0.1, gradient="bptt"), ValueError, "gradient"),
    (dict(method="trades", eps=0.1, beta=-1.0), ValueError, "beta"),
    (dict(method="none", eps=0.1), ValueError, "'none'"),
])
def test_bad_settings_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        AdversarialConfig(**kwargs)


def test_bad_adversarial_setting_in_train_config_and_untouched_model():
    with pytest.raises(TypeError, match="AdversarialConfig"):
        TrainConfig(adversarial="pgd")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))  # no spiking neuron to attack
    before = copy.deepcopy(model.state_dict())
    config = TrainConfig(epochs=1, progress=False, adversarial=AdversarialConfig("pgd", eps=0.1))
    with pytest.raises(ValueError, match="no spiking neuron"):
        training.train(model, torch.utils.data.TensorDataset(torch.rand(4, 1, 8, 8), torch.zeros(4).long()),
                       InputSpec(2), config)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items()) and model.training


def test_checkpoint_records_the_adversarial_settings(tmp_path):
    config = TrainConfig(epochs=1, batch_size=32, max_batches=1, progress=False,
                         adversarial=AdversarialConfig("trades", eps=0.1, steps=2, gradient="stbp"))
    training.train_model("digits_snn", "digits", T=2, config=config, checkpoint=tmp_path / "m.pt")
    _, meta = checkpoints.load_checkpoint(tmp_path / "m.pt")
    assert meta["train"]["adversarial"] == {"method": "trades", "eps": 0.1, "steps": 2, "alpha": pytest.approx(0.125),
                                            "gradient": "stbp", "beta": 6.0}
    assert TrainConfig(**meta["train"]).adversarial == config.adversarial
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left


def _cli_error(capsys, *args):
    code = cli_main(list(args))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("sj-rga train: error:"), lines
    return lines[0]


@pytest.mark.parametrize("args,match", [
    (("--adversarial", "pgd"), "needs --adv-eps"),
    (("--adv-eps", "0.1"), "without --adversarial"),
    (("--adv-gradient", "stbp"), "without --adversarial"),
    (("--adversarial", "fgsm", "--adv-eps", "0.1", "--adv-steps", "2"), "exactly one step"),
    (("--adversarial", "pgd", "--adv-eps", "0.1", "--adv-steps", "0"), "steps"),
    (("--adversarial", "pgd", "--adv-eps", "1/0"), "malformed"),
    (("--adversarial", "pgd", "--adv-eps", "0"), "must be > 0"),
    (("--adversarial", "pgd", "--adv-eps", "0.1", "--adv-alpha", "-1"), "ε must be"),
    (("--adversarial", "pgd", "--adv-eps", "0.1", "--adv-beta", "2"), "TRADES"),
    (("--adversarial", "trades", "--adv-eps", "0.1", "--adv-beta", "-2"), "beta"),
    (("--adversarial", "pgd", "--adv-eps", "0.1", "--adv-gradient", "fast"), "invalid choice"),
    (("--adversarial", "pgdd", "--adv-eps", "0.1"), "invalid choice"),
])
def test_cli_rejects_bad_adversarial_options_before_any_work(tmp_path, capsys, args, match):
    out = tmp_path / "m.pt"
    assert match in _cli_error(capsys, "train", "--out", str(out), *args)
    assert not out.exists()


def test_cli_trains_adversarially_and_records_it(tmp_path, capsys):
    out = tmp_path / "at.pt"
    code = cli_main(["train", "--data", "digits", "--epochs", "1", "--max-batches", "2", "-T", "4", "--adversarial",
                     "pgd", "--adv-eps", "0.1", "--adv-steps", "2", "--adv-gradient", "stbp", "--out", str(out),
                     "--no-progress"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "pgd adversarial training (ε=0.1, 2 step(s) of 0.125, stbp gradient)" in printed.out
    cli_model, meta = checkpoints.load_checkpoint(out)
    assert json.loads(json.dumps(meta["train"]["adversarial"])) == {
        "method": "pgd", "eps": 0.1, "steps": 2, "alpha": 0.125, "gradient": "stbp", "beta": 6.0}
    # the command line trains exactly what the library trains with the same settings (the benchmark relies on it)
    config = replace(training.DIGITS_PRESET, epochs=1, max_batches=2, device="cpu",
                     adversarial=AdversarialConfig("pgd", eps=0.1, steps=2, gradient="stbp"))
    model, _ = training.train_model("digits_snn", "digits", T=4, config=config)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in cli_model.state_dict().items())


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_every_gradient_estimator_drives_the_inner_maximisation(trained, gradient):
    model, x, y = trained
    config = AdversarialConfig("pgd", eps=0.1, steps=2, gradient=gradient)
    classifier = training.inner_classifier(model, InputSpec(T), gradient)
    adv = adversarial_examples(classifier, config, x, y, torch.zeros_like(x))
    assert (adv - x).abs().max() <= 0.1 + 1e-6 and (adv != x).float().mean() > 0.5
    with torch.no_grad():
        assert F.cross_entropy(classifier(adv), y) > F.cross_entropy(classifier(x), y)
