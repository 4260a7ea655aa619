"""The estimators' contract with users and with the other parts of sj-rga: names and dispatch, bad parameters,
the model left exactly as it was (also after an exception), ASSG's statistics, restarts per attack run,
torchattacks interop, no parameter gradients by default, DataParallel and DistributedDataParallel."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from gradient_reference import ReferenceASSG
from lively import lively
from spikingjelly.activation_based import functional, layer, neuron

import sj_rga
from sj_rga import SNNClassifier
from sj_rga.attacks import FGSM, PGD
from sj_rga.errors import UserModelError
from sj_rga.experiment import GRADIENTS
from sj_rga.gradients import ASSG, BPTR, HART, PDSG, RGA, STBP, estimator, gradient_mode
from sj_rga.models import build, digits_snn

from neurons import DoubledIF, stock_surrogate

NAMES = ("stbp", "rga", "bptr", "hart", "pdsg", "assg")


def _model() -> nn.Module:
    return lively(build("digits_snn", 10, lam=0.9))


def _grad(clf: SNNClassifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(clf(x), y), x)
    return g


def _data(batch=4):
    gen = torch.Generator().manual_seed(2)
    return torch.rand(batch, 1, 8, 8, generator=gen, dtype=torch.float64), torch.arange(batch) % 10


# -- names, dispatch -------------------------------------------------------------------------------------

def test_names_in_report_order_and_both_forms_accepted():
    assert GRADIENTS == NAMES == sj_rga.gradients.NAMES
    model = _model()
    for name in NAMES:
        clf = SNNClassifier(model, 4, gradient=name)
        assert clf.gradient_name == name and clf.estimator == estimator(name)
        assert clf.with_gradient(estimator(name)).gradient_name == name
    tuned = SNNClassifier(model, 4, gradient="stbp").with_gradient(HART(gamma=0.55))
    assert tuned.estimator == HART(gamma=0.55) and tuned.gradient_name == "hart"
    assert tuned.estimator.hyperparameters() == {"gamma": 0.55}
    assert ASSG().hyperparameters() == {"A": 0.425, "relax": 1.5, "beta1": 0.9, "beta2": 0.9}


def test_with_time_steps_keeps_every_setting_and_starts_fresh_statistics():
    clf = SNNClassifier(_model(), 4, encoding="poisson", gradient=ASSG(A=0.4), eot=2, seed=3, rga_path="layer",
                        parameter_gradients=True, mean=0.1, std=0.5)
    x, y = _data()
    _grad(clf, x, y)
    twin = clf.with_time_steps(8)
    assert (twin.T, twin.encoding, twin.estimator, twin.eot, twin.seed, twin.rga_path, twin.parameter_gradients) == \
        (8, "poisson", ASSG(A=0.4), 2, 3, "layer", True)
    assert torch.equal(twin.norm_mean, clf.norm_mean) and torch.equal(twin.norm_std, clf.norm_std)
    assert clf.statistics.layers and not twin.statistics.layers


@pytest.mark.parametrize("call,error,match", [
    (lambda: HART(gamma=0.0), ValueError, r"gamma.*\(0, ∞\)"),
    (lambda: HART(gamma=-1.0), ValueError, r"gamma.*\(0, ∞\)"),
    (lambda: HART(gamma=math.nan), ValueError, r"gamma"),
    (lambda: HART(gamma="wide"), TypeError, r"gamma"),
    (lambda: ASSG(A=0.0), ValueError, r"A .*\(0, 0.5\)"),
    (lambda: ASSG(A=0.5), ValueError, r"A .*\(0, 0.5\)"),
    (lambda: ASSG(A=-0.2), ValueError, r"A .*\(0, 0.5\)"),
    (lambda: ASSG(beta1=1.0), ValueError, r"beta1.*\[0, 1\)"),
    (lambda: ASSG(beta1=-0.1), ValueError, r"beta1.*\[0, 1\)"),
    (lambda: ASSG(beta2=1.5), ValueError, r"beta2.*\[0, 1\)"),
    (lambda: ASSG(relax=-1.0), ValueError, r"relax.*\[0, ∞\)"),
    (lambda: RGA(beta=1.0), ValueError, r"beta must be > 1"),
    (lambda: RGA(gamma=-0.1), ValueError, r"gamma must be >= 0"),
    (lambda: RGA(lam=1.5), ValueError, r"lam.*\[0, 1\]"),
    (lambda: estimator("bptt"), ValueError, r"unknown gradient 'bptt'.*stbp, rga, bptr, hart, pdsg, assg"),
    (lambda: estimator(3), TypeError, r"gradient must be a name"),
    (lambda: SNNClassifier(digits_snn(10), 4, gradient="HART"), ValueError, r"unknown gradient 'HART'"),
    (lambda: SNNClassifier(digits_snn(10), 4, parameter_gradients=1), TypeError, r"parameter_gradients"),
    (lambda: SNNClassifier(digits_snn(10), 4, gradient="stbp", rga_path="quick"), ValueError, r"rga_path"),
])
def test_bad_parameters_name_the_parameter_and_its_range(call, error, match):
    with pytest.raises(error, match=match):
        call()


# -- the model as it was ----------------------------------------------------------------------------------

def _snapshot(model: nn.Module):
    """Everything a call promises to leave as it was."""
    modules = []
    for name, m in model.named_modules():
        memories = {k: (v.clone() if isinstance(v, torch.Tensor) else v)
                    for k, v in getattr(m, "_memories", {}).items()}
        modules.append((name, type(m), m.training, getattr(m, "step_mode", None),
                        id(getattr(m, "surrogate_function", None)), getattr(m, "detach_reset", None),
                        sorted(k for k in m.__dict__ if not k.startswith("_") or k == sj_rga.neuron.HANDLE),
                        tuple(m._forward_hooks), tuple(m._forward_pre_hooks), tuple(m._backward_hooks), repr(memories)))
    return modules, {k: v.detach().clone() for k, v in model.state_dict().items()}, \
        [(p.requires_grad, p.grad) for p in model.parameters()]


def _assert_same(before, after):
    assert before[0] == after[0]
    assert before[1].keys() == after[1].keys() and all(torch.equal(before[1][k], after[1][k]) for k in before[1])
    assert before[2] == after[2]


class Tripwire(nn.Module):
    """An identity that raises at its ``armed``-th call (0: never)."""

    def __init__(self):
        super().__init__()
        self.armed, self.calls = 0, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == self.armed:
            raise KeyError("tripwire")
        return x


@pytest.mark.parametrize("name", NAMES)
def test_model_restored_after_every_estimator_and_after_an_exception(name):
    model = _model()
    hook = model[-1].register_forward_hook(lambda m, a, out: None)  # a user's own hook stays
    tripwire = Tripwire()
    model[-1].register_forward_pre_hook(lambda m, args: (tripwire(args[0]),))
    model[1].weight.requires_grad_(False)  # a user's frozen parameter stays frozen
    model.train()
    functional.set_step_mode(model, "s")
    with torch.no_grad():
        model(torch.rand(2, 1, 8, 8, dtype=torch.float64))  # leftover single-step state
    before = _snapshot(model)
    x, y = _data()
    paths = ("auto", "layer") if name in ("rga", "bptr", "hart") else ("auto",)
    for path in paths:
        clf = SNNClassifier(model, 4, gradient=name, rga_path=path)
        assert _grad(clf, x, y).abs().sum() > 0
        _assert_same(before, _snapshot(model))
        tripwire.armed, tripwire.calls = 1, 0  # the first pass (the fast path's T-step recording pass)
        with pytest.raises(UserModelError, match="tripwire") as raised:  # the model's own exception, chained
            x_grad = x.clone().requires_grad_(True)
            clf(x_grad).sum().backward()
        assert isinstance(raised.value.__cause__, KeyError)
        _assert_same(before, _snapshot(model))
        if path == "auto" and name in ("rga", "bptr", "hart"):
            # a model that fails only in the fast path's T = 1 pass gets the per-layer backward
            tripwire.armed, tripwire.calls = 2, 0
            assert _grad(clf, x, y).abs().sum() > 0 and tripwire.calls == 3
            _assert_same(before, _snapshot(model))
        tripwire.armed = 0
    hook.remove()


def test_no_parameter_gradients_by_default_and_opt_in():
    model = _model()
    x, y = _data()
    clf = SNNClassifier(model, 4, gradient="stbp")
    F.cross_entropy(clf(x.clone().requires_grad_()), y).backward()
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    F.cross_entropy(clf.with_gradient("hart")(x), y)  # nothing to backward to
    F.cross_entropy(SNNClassifier(model, 4, gradient="stbp", parameter_gradients=True)(x), y).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_torchattacks_fab_leaves_no_parameter_gradients():
    torchattacks = pytest.importorskip("torchattacks")
    model = _model().float()
    x, y = _data()
    clf = SNNClassifier(model, 4, gradient="rga")
    adv = torchattacks.FAB(clf, eps=0.1, steps=2, n_classes=10)(x.float(), y)
    assert (adv - x.float()).abs().max() <= 0.1 + 1e-6
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


# -- ASSG's statistics -----------------------------------------------------------------------------------

def _updates(clf: SNNClassifier) -> set:
    return set(clf.statistics.updates.values())


def test_assg_statistics_fresh_updated_once_per_gradient_and_per_sample():
    model = _model()
    clf = SNNClassifier(model, 4, gradient="assg")
    assert clf.statistics.layers == {} and SNNClassifier(model, 4, gradient="assg").statistics is not clf.statistics
    assert SNNClassifier(model, 4, gradient="pdsg").statistics is None
    x, y = _data()
    _grad(clf, x, y)
    assert _updates(clf) == {1} and len(clf.statistics.layers) == 3, "one update per layer per gradient"
    with torch.no_grad():
        clf(x)
    clf(x)  # a forward whose graph is never used still counts: it was taken with gradients
    assert _updates(clf) == {2}
    _grad(clf, x[:2], y[:2])  # an evaluation suite attacks only the samples still robust
    assert _updates(clf) == {1}, "a layer whose batch changes starts afresh"
    assert all(moments.first.shape[:2] == (4, 2) for moments in clf.statistics.layers.values()), "[T, B, ...]"


def test_assg_no_update_inside_eot_repeats_against_the_reference():
    model = _model()
    x, y = _data()
    ours = SNNClassifier(model, 4, encoding="poisson", eot=3, seed=1, gradient="assg")
    theirs = SNNClassifier(model, 4, encoding="poisson", eot=3, seed=1, gradient="stbp")
    reference = ReferenceASSG(model)

    def first_repeat_updates(module, args):
        reference.update = reference.repeat % 3 == 0
        reference.repeat += 1

    reference.repeat = 0
    marker = model.register_forward_pre_hook(first_repeat_updates)
    try:
        for call in range(3):
            g = _grad(ours, x, y)
            with reference:
                g_ref = _grad(theirs, x, y)
            torch.testing.assert_close(g, g_ref, rtol=1e-6, atol=1e-6 * float(g_ref.abs().max()))
            assert _updates(ours) == {call + 1}
    finally:
        marker.remove()


@pytest.mark.parametrize("attack", ["ours_fgsm", "ours_pgd", "torchattacks_fgsm"])
def test_every_attack_run_restarts_the_statistics(attack):
    torchattacks = pytest.importorskip("torchattacks")
    clf = SNNClassifier(_model(), 4, gradient="assg")
    x, y = _data()
    run = {"ours_fgsm": (FGSM(clf, 0.1), 1), "ours_pgd": (PGD(clf, 0.1, 0.03, steps=3, seed=0), 3),
           "torchattacks_fgsm": (torchattacks.FGSM(clf, eps=0.1), 1)}
    atk, steps = run[attack]
    clf.eval()  # else torchattacks calls train() after the run, which restarts too
    first = atk(x, y)
    assert _updates(clf) == {steps}
    assert torch.equal(atk(x, y), first) and _updates(clf) == {steps}, "the second run starts afresh"


# -- Poisson streams, torchattacks ------------------------------------------------------------------------

@pytest.mark.parametrize("gradient", ["rga", "assg"])
def test_same_seed_same_adversarial_examples_through_torchattacks_and_ours(gradient):
    torchattacks = pytest.importorskip("torchattacks")
    model = _model().float()
    x, y = _data()
    x = x.float()
    clf = SNNClassifier(model, 4, encoding="poisson", eot=2, seed=5, gradient=gradient)
    theirs = [torchattacks.FGSM(clf, eps=0.1)(x, y) for _ in range(2)]
    ours = [FGSM(clf, 0.1)(x, y) for _ in range(2)]
    assert torch.equal(theirs[0], theirs[1]) and torch.equal(ours[0], ours[1])
    assert torch.equal(ours[0], theirs[0]) and (ours[0] != x).any()
    pgd = []
    for _ in range(2):
        torch.manual_seed(0)  # torchattacks' random start draws from the global generator
        pgd.append(torchattacks.PGD(clf, eps=0.1, alpha=0.03, steps=2)(x, y))
    assert torch.equal(pgd[0], pgd[1])


# -- DataParallel, DistributedDataParallel, replicas -----------------------------------------------------

def _cpu_replica(module: nn.Module) -> nn.Module:
    """What nn.DataParallel's replicate() makes of a module on each device, made on the CPU: a copy of every
    module's ``__dict__`` flagged ``_is_replica``, sharing the parameters."""
    copies = {m: m._replicate_for_data_parallel() for m in module.modules()}
    for original, copy in copies.items():
        copy._parameters = dict(original._parameters)
        copy._modules = {k: None if c is None else copies[c] for k, c in original._modules.items()}
    return copies[module]


@pytest.mark.parametrize("name", NAMES)
def test_wrapped_models_give_the_true_gradient(name, tmp_path):
    import torch.distributed as dist

    model = _model()
    x, y = _data()
    expected = _grad(SNNClassifier(model, 4, gradient=name), x, y)
    torch.testing.assert_close(_grad(SNNClassifier(nn.DataParallel(model), 4, gradient=name), x, y), expected,
                               rtol=0, atol=0)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        ddp = nn.parallel.DistributedDataParallel(model)
        torch.testing.assert_close(_grad(SNNClassifier(ddp, 4, gradient=name), x, y), expected, rtol=0, atol=0)
        assert all(p.grad is None for p in model.parameters())
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("name", ["rga", "bptr", "hart", "pdsg", "assg"])
def test_dataparallel_copies_take_the_estimator_or_refuse(name):
    """gradient_mode on a model reaches the copies DataParallel makes of it (the handle lives in each module's
    ``__dict__``): per-sample estimators give their gradient there, batch-statistic ones refuse clearly."""
    model = _model()
    functional.set_step_mode(model, "m")
    model.eval()
    for m in sj_rga.spiking_neurons(model):
        m.train()  # SpikingJelly 0.0.0.0.14's IF/LIF have no input gradient in eval()
    x_seq = torch.rand(4, 3, 1, 8, 8, dtype=torch.float64)

    def grad_of(net):
        functional.reset_net(net)
        xg = x_seq.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(net(xg).mean(0)[:, 0].sum(), xg)
        return g

    with gradient_mode(model, estimator(name)):
        replica = _cpu_replica(model)
        if name in ("pdsg", "assg"):
            with pytest.raises(RuntimeError, match="DataParallel"):
                grad_of(replica)
            return
        on_replica = grad_of(replica)
        on_model = grad_of(model)
    torch.testing.assert_close(on_replica, on_model, rtol=0, atol=0)
    assert not torch.equal(on_model, grad_of(model)), "outside the block the model's own BPTT gradient is back"


# -- gradient_mode and neurons sj_rga does not know ------------------------------------------------------

def test_bptr_takes_any_neuron_the_potential_based_ones_refuse_clearly():
    net = nn.Sequential(layer.Linear(3, 5), DoubledIF(), layer.Linear(5, 2))
    functional.set_step_mode(net, "m")
    with torch.no_grad():
        net[0].bias.fill_(0.2)
    x = torch.rand(4, 2, 3, requires_grad=True)
    with gradient_mode(net, BPTR()):
        out = net(x)
        (g,) = torch.autograd.grad(out.sum(), x)
    functional.reset_net(net)
    with torch.no_grad():
        fired = (net[1](net[0](x)).sum(0) > 0).float()
    expected = ((fired * net[2].weight.sum(0)) @ net[0].weight).expand_as(x)
    assert 0 < fired.mean() < 1
    torch.testing.assert_close(g, expected, rtol=1e-5, atol=1e-6)
    for est in (HART(), PDSG(), ASSG()):
        with pytest.raises(ValueError, match="DoubledIF"):
            SNNClassifier(net, 4, gradient=est)
    with pytest.raises(ValueError, match="register_neuron"):
        SNNClassifier(net, 4, gradient="rga")
    with pytest.raises(TypeError, match="gradient_mode takes an estimator"):
        with gradient_mode(net, STBP()):
            pass


@pytest.mark.parametrize("name", ["bptr", "hart", "pdsg", "assg"])
def test_single_step_mode_under_an_estimator_raises_clearly(name):
    node = neuron.LIFNode(surrogate_function=stock_surrogate())
    with gradient_mode(node, estimator(name)):
        with pytest.raises(RuntimeError, match="set_step_mode"):
            node(torch.rand(3, 4, requires_grad=True))
        with torch.no_grad():
            assert node(torch.rand(3, 4)).shape == (3, 4)
