"""Gradient-masking checks: measured figures that expose a robust accuracy inflated by a useless gradient.

Spikes are step functions, so every SNN input gradient is a surrogate, and a model can look robust only
because its surrogate gradient points nowhere (Athalye, Carlini, Wagner, ICML 2018). Carlini et al., "On
Evaluating Adversarial Robustness" (2019, §5), list the symptoms; each check measures one on the evaluation
just run and gives a verdict (method §3):

1. ``zero_gradient``: samples whose input gradient (of the cross-entropy at the clean input) is exactly zero
   or not finite, per estimator of the evaluation: a silent output or a dead surrogate gives no direction.
2. ``unbounded``: at ε = the whole input range every sample can be sent anywhere, so an attack that works
   breaks every sample; a sample it cannot break is flagged.
3. ``gradient_free``: samples Square (no gradient) breaks that every gradient attack left robust.
4. ``iterative_vs_one_step``: samples one FGSM step breaks that the evaluation left robust (iterative attacks
   must be at least as strong); ``white_box_vs_transfer``: samples a transfer attack from a source model
   breaks that the white-box evaluation left robust (only where a source model is given).
5. ``monotone_eps``: robust accuracy under the same attack at ε/2, ε, 2ε and the whole range must not rise.

Each check is a dict ``{"name", "value", "verdict": "pass" | "warn", "message"}``. They are cheap: checks 1,
2, 4 and 5 look at the first ``samples`` (16) samples only, with APGD-CE of ``steps`` (10) steps (the
evaluation's first estimator) at the four ε and Square of ``queries`` (100) queries at the whole range;
check 3 reads the evaluation's own Square results (or runs Square of ``queries`` queries on those samples
when the evaluation has none).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Optional, Sequence

import torch

from .attacks.autoattack import GRADIENT_FREE, NO_GRADIENT, AutoAttack, SuiteAttack
from .attacks.fgsm import FGSM
from .attacks.square import Square
from .classifier import SNNClassifier
from .seeding import sample_indices

#: Defaults: samples the checks look at, APGD steps and Square queries of their own attacks.
SAMPLES, STEPS, QUERIES = 16, 10, 100
#: What to try when a check warns (printed in the report's first lines).
ADVICE = ("the robust accuracy may be overestimated: try other estimators or more steps (a custom suite: "
          "AutoAttack(clf, eps, version='custom', attacks=[SuiteAttack(...)])), or the full suite "
          "(--suite full, version='full')")


def check(name: str, value: Any, warn: bool, message: str) -> dict[str, Any]:
    """One check as reports hold it."""
    return {"name": name, "value": value, "verdict": "warn" if warn else "pass", "message": message}


def input_range(classifier: SNNClassifier, x: torch.Tensor) -> float:
    """The width of the input range: ``high − low`` of the classifier's bounds, where a bound is missing the
    data's own extent (at least 1)."""
    low, high = classifier.bounds
    low = float(x.min()) if low is None else low
    high = max(float(x.max()), low + 1.0) if high is None else high
    return high - low


def unbounded_eps(classifier: SNNClassifier, x: torch.Tensor, norm: str) -> float:
    """ε that reaches every input from every input: the range (L∞), the range times √(elements) (L2)."""
    width = input_range(classifier, x)
    return width if norm == "Linf" else width * math.sqrt(x[0].numel())


def zero_gradients(classifier: SNNClassifier, gradients: Sequence[str], x: torch.Tensor, y: torch.Tensor
                   ) -> dict[str, int]:
    """Per estimator: the samples whose input gradient of the cross-entropy at ``x`` is all zero or not finite."""
    counts = {}
    for name in gradients:
        member = classifier.with_gradient(name)
        xg = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            loss = torch.nn.functional.cross_entropy(member(xg), y, reduction="sum")
            grad = torch.autograd.grad(loss, xg, allow_unused=True)[0] if loss.requires_grad else None
        if grad is None:
            counts[name] = int(x.shape[0])
            continue
        flat = grad.flatten(1)
        counts[name] = int(((flat == 0).all(1) | ~torch.isfinite(flat).all(1)).sum())
    return counts


def _robust(classifier: SNNClassifier, attack: Callable, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with sample_indices(range(x.shape[0])), torch.no_grad():
        adversarial = attack(x, y)
        return classifier(adversarial).argmax(1) == y


def _names(mask: torch.Tensor) -> str:
    rows = mask.nonzero()[:, 0].tolist()
    return ", ".join(map(str, rows[:8])) + (" ..." if len(rows) > 8 else "")


def masking_checks(target: SNNClassifier, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str,
                   robust_ok: torch.Tensor, gradients: Sequence[str] = (), gradient_free: Optional[int] = None,
                   gradient_survivors: Optional[int] = None, source: Optional[SNNClassifier] = None,
                   steps: Optional[int] = None, queries: Optional[int] = None, seed: int = 0
                   ) -> list[dict[str, Any]]:
    """The five checks (six entries) on an evaluation of ``target`` at ``eps`` (``norm``).

    ``x``, ``y``: the samples the checks look at (e.g. the first :data:`SAMPLES` of the data), pixel space;
    ``robust_ok`` ``[n]``: the evaluation's per-sample verdict on them. ``gradients``: the estimators the
    evaluation used (default: the target's). ``gradient_free`` / ``gradient_survivors``: how many samples
    the evaluation's Square broke, of how many the gradient attacks left robust (None: Square is run here
    on ``x``). ``source``: a model to transfer from (check 4b). ``steps``/``queries``: of the checks' own
    APGD and Square (defaults :data:`STEPS`, :data:`QUERIES`). The target's model is left as it was.
    """
    steps, queries = steps or STEPS, queries or QUERIES
    target.restart()  # the checks' Poisson spikes do not depend on what ran before
    gradients = tuple(dict.fromkeys(gradients)) or (target.gradient_name,)
    robust_ok = robust_ok.to(torch.bool).cpu()
    clean_ok = _robust(target, lambda a, b: a, x, y)
    n = int(x.shape[0])
    checks = []

    counts = zero_gradients(target, gradients, x, y)
    checks.append(check("zero_gradient", counts, any(counts.values()), (
        f"samples (of {n}) whose input gradient is exactly zero or not finite, per estimator: "
        + ", ".join(f"{g} {c}" for g, c in counts.items())
        + ("; a zero gradient gives gradient attacks no direction (silent output, dead surrogate)"
           if any(counts.values()) else ""))))

    def sweep_attack(e: float, with_square: bool) -> AutoAttack:
        suite = [SuiteAttack("apgd-ce", gradients[0], steps)]
        if with_square:
            suite.append(SuiteAttack("square", NO_GRADIENT, queries))
        return AutoAttack(target, e, norm, "custom", seed, suite)

    whole = unbounded_eps(target, x, norm)
    values = sorted({min(e, whole) for e in (eps / 2, eps, 2 * eps, whole)})
    accuracy = {}
    for e in values:
        ok = _robust(target, sweep_attack(e, e == whole), x, y)
        accuracy[e] = ok
    unbroken = accuracy[whole] & clean_ok
    checks.append(check("unbounded", int(unbroken.sum()), bool(unbroken.any()), (
        f"at ε = {whole:.4g} (the whole input range, {norm}) APGD-CE ({steps} steps) and Square ({queries} "
        f"queries) left {int(unbroken.sum())} of {int(clean_ok.sum())} correctly classified samples robust"
        + (f" (rows {_names(unbroken)}): every sample should break; the attacks are not working"
           if unbroken.any() else ""))))

    if gradient_free is None:
        todo = (robust_ok & clean_ok).nonzero()[:, 0]
        gradient_survivors = int(todo.numel())
        gradient_free = 0
        if todo.numel():
            square = Square(target, eps, norm, queries=queries, seed=seed)
            gradient_free = int((~_robust(target, square, x[todo], y[todo])).sum())
    checks.append(check("gradient_free", gradient_free, gradient_free > 0, (
        f"Square (no gradient) broke {gradient_free} of the {gradient_survivors} samples every gradient attack "
        "left robust" + ("; the gradients miss adversarial examples a random search finds (masking)"
                         if gradient_free else ""))))

    one_step = _robust(target, FGSM(target.with_gradient(gradients[0]), eps), x, y)
    stronger = robust_ok & ~one_step & clean_ok
    checks.append(check("iterative_vs_one_step", int(stronger.sum()), bool(stronger.any()), (
        f"one FGSM step ({gradients[0]}) broke {int(stronger.sum())} of {n} samples the evaluation left robust"
        + ("; iterative attacks should be at least as strong as one step" if stronger.any() else ""))))

    if source is None:
        checks.append(check("white_box_vs_transfer", None, False, "not run: no source model given"))
    else:
        transfer = AutoAttack(source, eps, norm, "custom", seed, [SuiteAttack("apgd-ce", source.gradient_name, steps)])
        with sample_indices(range(n)), torch.no_grad():
            transferred = target(transfer(x, y)).argmax(1) == y
        white = accuracy[eps] & robust_ok
        beaten = white & ~transferred & clean_ok
        checks.append(check("white_box_vs_transfer", int(beaten.sum()), bool(beaten.any()), (
            f"a transfer attack from the source model (APGD-CE, {steps} steps) broke {int(beaten.sum())} of {n} "
            "samples the white-box attacks left robust"
            + ("; white-box attacks should be at least as strong as transfer" if beaten.any() else ""))))

    curve = [{"eps": e, "robust_accuracy": float(ok.float().mean())} for e, ok in accuracy.items()]
    rises = [(a, b) for a, b in zip(curve, curve[1:]) if b["robust_accuracy"] > a["robust_accuracy"]]
    checks.append(check("monotone_eps", curve, bool(rises), (
        f"robust accuracy of {n} samples under APGD-CE ({steps} steps) at ε = "
        + ", ".join(f"{c['eps']:.4g}: {100 * c['robust_accuracy']:.1f} %" for c in curve)
        + ("; it rises with ε, which no working attack allows" if rises else ""))))
    return checks


def warnings_of(checks: Sequence[dict[str, Any]]) -> list[str]:
    """The names of the checks that warn."""
    return [c["name"] for c in checks if c["verdict"] == "warn"]


def format_checks(checks: Sequence[dict[str, Any]]) -> str:
    """The checks as report lines: a first line that says whether any warns (and what to try), then one line
    per check."""
    warned = warnings_of(checks)
    head = (f"WARNING: {len(warned)} gradient-masking check(s) warn ({', '.join(warned)}): {ADVICE}" if warned
            else "Gradient-masking checks: all pass")
    return "\n".join([head] + [f"  [{c['verdict']}] {c['name']}: {c['message']}" for c in checks])


def evaluation_checks(target: SNNClassifier, attack: Callable, x: torch.Tensor, y: torch.Tensor,
                      robust_ok: torch.Tensor, tallies: Optional[Sequence[tuple[int, int]]] = None,
                      samples: int = SAMPLES) -> Optional[list[dict[str, Any]]]:
    """The checks of an evaluation of ``target`` with ``attack`` (``x``, ``y``, ``robust_ok``: evaluated samples,
    of which the first ``samples`` are looked at): for an :class:`~sj_rga.attacks.AutoAttack` suite, with its
    Square results from ``tallies`` (per attack of the suite, in order: samples attacked, samples broken, over
    the whole evaluation); for another attack with an ``eps`` (ours or torchattacks'), with the attack's
    estimator, and a transfer check when it was built on another model. None for an attack without ``eps``."""
    x, y, robust_ok = x[:samples], y[:samples], robust_ok[:samples]
    if isinstance(attack, AutoAttack):
        free = [i for i, a in enumerate(attack.attacks) if a.optimiser in GRADIENT_FREE]
        gradient_free = survivors = None
        if free and tallies is not None:
            gradient_free, survivors = sum(tallies[i][1] for i in free), tallies[min(free)][0]
        gradients = [g for a in attack.attacks for g in a.gradients]
        return masking_checks(target, x, y, attack.eps, attack.norm, robust_ok, gradients, gradient_free, survivors,
                              seed=attack.seed)
    eps = getattr(attack, "eps", None)
    if eps is None:
        return None
    crafter = getattr(attack, "classifier", getattr(attack, "model", None))
    crafter = crafter if isinstance(crafter, SNNClassifier) else target
    source = crafter if crafter.network is not target.network else None
    gradients = (target.gradient_name,) if source is not None else (crafter.gradient_name,)
    return masking_checks(target, x, y, float(eps), getattr(attack, "norm", "Linf"), robust_ok, gradients,
                          source=source)


def first_samples(data: Iterable[tuple[torch.Tensor, torch.Tensor]], count: int = SAMPLES
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` samples (inputs, labels) of a loader of ``(x, y)`` batches, in its order."""
    xs, ys, held = [], [], 0
    for x, y in data:
        xs.append(x[:count - held])
        ys.append(y[:count - held])
        held += len(ys[-1])
        if held >= count:
            break
    if not xs:
        raise ValueError("data holds no samples")
    return torch.cat(xs), torch.cat(ys)
