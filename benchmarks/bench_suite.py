"""Strength and cost of the standard robustness evaluation (``AutoAttack``, issue 12) against every published
single attack, on digits SNNs; and its time per sample on the paper's VGG-11 at CIFAR size.

Three parts (method §2, §3):

- ``select``: the measurement the suites were chosen from. Two selection models (``digits_snn`` with IF
  neurons and with LIF λ = 0.9, T = 8) are trained on 1037 of the 1437 images of the digits training split
  (seeds 10 and 11, not the package's models); candidate attacks (every (gradient, optimiser) pair of the
  suites' building blocks) run on the other 400 training images, the held-out split, at ε = 0.1 L∞. Per
  candidate: which held-out samples it breaks and its seconds. Then the greedy choice: the candidate that
  adds the most broken samples, over both models, at each step. The test split is never used here.
- ``compare``: on the package's digits models (``sj_rga.training.train_digits(lam=1.0)`` and ``lam=0.9``)
  and the test split (360 images), the union of the 24 published single attacks (each of stbp, rga, bptr,
  hart, pdsg, assg with FGSM, PGD-10 (α = 2.5ε/10), APGD-20 (CE) and SA-PGD-100; a sample counts broken if
  any of them breaks it) against ``AutoAttack(version='standard')`` run as a user runs it, with the
  sample count, the binomial standard error, the samples only one side breaks, and wall times.
- ``vgg``: time per sample on the paper's VGG-11 (``build('vgg11', 10)``, 3×32×32, T = 8, random weights):
  seconds per input gradient of each estimator the suite uses (mean of ``--rounds`` after a warm-up, per
  sample of a ``--samples`` batch), times the gradient evaluations each attack spends on a sample it never
  breaks: the suite's cost per robust sample (its upper bound); and the suite as run on these samples
  (labels = the model's clean answers), with how many each attack broke.

    python benchmarks/bench_suite.py select  [--cache FILE] [--eps 0.1]
    python benchmarks/bench_suite.py select --rand --steps 50 --eot 10 --cache FILE   # Poisson input
    python benchmarks/bench_suite.py compare [--eps 0.1] [--suite standard]
    python benchmarks/bench_suite.py vgg     [--samples 4] [--rounds 3] [--T 8]
    python benchmarks/bench_suite.py compare --smoke     # seconds: a tiny run of the code paths (tests)
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import torch
from machine import describe, load

from sj_rga import SNNClassifier
from sj_rga.attacks import APGD, FGSM, PGD, SAPGD, SUITES, AutoAttack, SuiteAttack

GRADIENTS = ("stbp", "rga", "bptr", "hart", "pdsg", "assg")
PUBLISHED = ("fgsm", "pgd10", "apgd20", "sapgd100")
MODELS = {"IF": 1.0, "LIF 0.9": 0.9}
SELECTION_SEEDS = {"IF": 10, "LIF 0.9": 11}
#: ``--smoke``: the samples attacked (of the held-out split for ``select``, of the test split for ``compare``).
SMOKE_SAMPLES = 8


# ------------------------------------------------------------------------------------------- attacks
def published_attack(name: str, classifier: SNNClassifier, eps: float) -> Callable:
    """One of the published single attacks (the union's members)."""
    if name == "fgsm":
        return FGSM(classifier, eps)
    if name == "pgd10":
        return PGD(classifier, eps, 2.5 * eps / 10, 10, seed=0)
    if name == "apgd20":
        return APGD(classifier, eps, steps=20, seed=0)
    return SAPGD(classifier, eps, steps=100, seed=0)


def candidates(steps: int) -> dict[str, SuiteAttack]:
    """The building blocks the suites are chosen from: every optimiser with every gradient; ensembles of
    normalised gradients; a longer horizon and restarts."""
    pool = {}
    for gradient in GRADIENTS:
        for optimiser in ("apgd-ce", "apgd-dlr", "sapgd"):
            entry = SuiteAttack(optimiser, gradient, steps)
            pool[entry.name] = entry
        entry = SuiteAttack("apgd-t", gradient, steps, target_classes=3)
        pool[f"{entry.name}x3"] = entry
    extras = [SuiteAttack("sapgd", "assg+rga", steps), SuiteAttack("apgd-ce", "assg+rga", steps),
              SuiteAttack("apgd-ce", "assg+stbp", steps), SuiteAttack("apgd-dlr", "assg+rga", steps)]
    for entry in extras:
        pool[entry.name] = entry
    pool["apgd-t[assg+rga]x3"] = SuiteAttack("apgd-t", "assg+rga", steps, target_classes=3)
    pool["apgd-t[assg]x9"] = SuiteAttack("apgd-t", "assg", steps, target_classes=9)
    pool[f"sapgd[assg]x{3 * steps}"] = SuiteAttack("sapgd", "assg", 3 * steps)
    pool["apgd-ce[assg]r3"] = SuiteAttack("apgd-ce", "assg", steps, restarts=3)
    return pool


def rand_candidates(steps: int, eot: int) -> dict[str, SuiteAttack]:
    """For Poisson input: APGD with CE and DLR losses, EOT over ``eot`` spike samples, three gradients."""
    pool = {}
    for gradient in ("stbp", "rga", "assg"):
        for optimiser in ("apgd-ce", "apgd-dlr"):
            entry = SuiteAttack(optimiser, gradient, steps, eot=eot)
            pool[f"{entry.name}eot{eot}"] = entry
    return pool


def build(entry: SuiteAttack, target: SNNClassifier, eps: float, seed: int = 0) -> Callable:
    """A suite entry on ``target``, its ensemble included."""
    crafters = [target.with_gradient(g) for g in entry.gradients]
    return entry.build(crafters[0], eps, "Linf", seed, crafters[1:])


def broken_by(attack: Callable, target: SNNClassifier, x: torch.Tensor, y: torch.Tensor,
              batch: int) -> tuple[list[bool], float]:
    """Per sample, whether ``attack`` fools ``target``; and the seconds it took. The batches run through the
    evaluation engine (:mod:`sj_rga.engine`), so each sample's random draws are its own."""
    from sj_rga import engine

    def fooled(part) -> dict:
        adv = attack(part.x, part.y)
        with torch.no_grad():
            return {"broken": (target(adv).argmax(1) != part.y).tolist()}

    start = time.perf_counter()
    records = engine.run((x, y), fooled, batch, progress=False)
    return [v for r in records for v in r["broken"]], time.perf_counter() - start


# --------------------------------------------------------------------------------------------- models
def selection_models(smoke: bool, poisson: bool = False):
    """Models trained on 1037 training images and the 400 held-out training images (never the test split);
    ``poisson``: one IF model trained and attacked with Poisson input (for the 'rand' suite)."""
    from sklearn.model_selection import train_test_split
    from torch.utils.data import Subset

    from sj_rga.data.digits import digits
    from sj_rga.data.registry import DATASETS
    from sj_rga.models import build
    from sj_rga.training import DIGITS_PRESET, InputSpec, TrainConfig, train

    train_set, _ = digits()
    labels = train_set.tensors[1].numpy()
    fit, held_out = train_test_split(list(range(len(labels))), test_size=400, random_state=0, stratify=labels)
    info = DATASETS["digits"]
    inputs = InputSpec(8, "poisson") if poisson else InputSpec(8, "direct", info.mean, info.std)
    models = {}
    for name, lam in ({"IF Poisson": 1.0} if poisson else MODELS).items():
        config = TrainConfig(**{**DIGITS_PRESET.__dict__, "seed": SELECTION_SEEDS.get(name, 12),
                                "epochs": 1 if smoke else DIGITS_PRESET.epochs})
        torch.manual_seed(config.seed)
        model = train(build("digits_snn", 10, in_channels=1, image_size=8, lam=lam), Subset(train_set, fit), inputs,
                      config).model
        models[name] = SNNClassifier(model, 8, "poisson", seed=0) if poisson else \
            SNNClassifier(model, 8, mean=info.mean, std=info.std)
    x, y = train_set.tensors[0][held_out], train_set.tensors[1][held_out]
    return models, (x[:SMOKE_SAMPLES], y[:SMOKE_SAMPLES]) if smoke else (x, y)


def package_models(smoke: bool):
    """The package's digits models (``--smoke``: trained for one epoch instead of four) and the test split."""
    from dataclasses import replace

    from sj_rga.checkpoints import classifier_from_meta
    from sj_rga.data.digits import digits
    from sj_rga.training import DIGITS_PRESET, train_digits, train_model

    models = {}
    for name, lam in MODELS.items():
        model, meta = train_model("digits_snn", "digits", lam=lam, config=replace(DIGITS_PRESET, epochs=1)) \
            if smoke else train_digits(lam=lam)
        models[name] = classifier_from_meta(model, meta)
    x, y = digits()[1].tensors
    return models, x, y


def _clean_correct(target: SNNClassifier, x: torch.Tensor, y: torch.Tensor):
    with torch.no_grad():
        ok = target(x).argmax(1) == y
    return x[ok], y[ok], int(len(y))


def _machine() -> str:
    return f"{describe()}, torch {torch.__version__}, load average {load()}, {datetime.datetime.now():%Y-%m-%d %H:%M}"


def _se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n) if n else float("nan")


# ------------------------------------------------------------------------------------------------ parts
def run_select(args: argparse.Namespace) -> None:
    cache = Path(args.cache)
    results = json.loads(cache.read_text()) if cache.is_file() else {}
    models, (x, y) = selection_models(args.smoke, args.rand)
    pool = rand_candidates(args.steps, args.eot) if args.rand else candidates(args.steps)
    print(f"# select: ε = {args.eps} L∞, {args.steps} steps, held-out training images; {_machine()}")
    for model_name, target in models.items():
        xc, yc, total = _clean_correct(target, x, y)
        print(f"{model_name}: {len(yc)} of {total} held-out images classified correctly")
        store = results.setdefault(model_name, {"correct": len(yc), "attacks": {}})
        todo = [] if args.only_published else [(n, e) for n, e in pool.items() if n not in store["attacks"]]
        if (args.published or args.only_published) and not args.rand:
            todo += [(f"published {a}[{g}]", (a, g)) for g in GRADIENTS for a in PUBLISHED
                     if f"published {a}[{g}]" not in store["attacks"]]
        if args.smoke:
            todo = todo[:2]
        for name, entry in todo:
            attack = published_attack(entry[0], target.with_gradient(entry[1]), args.eps) \
                if isinstance(entry, tuple) else build(entry, target, args.eps)
            broken, seconds = broken_by(attack, target, xc, yc, args.batch)
            store["attacks"][name] = {"broken": broken, "seconds": seconds}
            cache.write_text(json.dumps(results))
            print(f"  {name:22s} ASR {100 * sum(broken) / len(broken):6.2f} %  {seconds:7.1f} s", flush=True)
    greedy(results)


def greedy(results: dict) -> None:
    """Pick, step by step, the candidate adding the most broken samples summed over the models; beside it,
    the union of the published single attacks when they were measured."""
    names = sorted(n for n in set.intersection(*(set(r["attacks"]) for r in results.values()))
                   if not n.startswith("published"))
    for m, r in results.items():
        published = [a["broken"] for n, a in r["attacks"].items() if n.startswith("published")]
        if published:
            union = [any(column) for column in zip(*published)]
            print(f"{m}: union of the {len(published)} published attacks: ASR {100 * sum(union) / len(union):.2f} %")
    broken = {m: [False] * r["correct"] for m, r in results.items()}
    chosen: list[str] = []
    print("\ngreedy choice (added samples, both models; cumulative ASR per model; seconds per model)")
    for _ in range(min(8, len(names))):
        def gain(name: str) -> int:
            return sum(sum(b and not a for a, b in zip(broken[m], results[m]["attacks"][name]["broken"]))
                       for m in results)
        best = max((n for n in names if n not in chosen), key=lambda n: (gain(n), -sum(
            results[m]["attacks"][n]["seconds"] for m in results)))
        added = gain(best)
        chosen.append(best)
        for m in results:
            broken[m] = [a or b for a, b in zip(broken[m], results[m]["attacks"][best]["broken"])]
        print(f"  + {best:22s} +{added:3d}  " + "  ".join(
            f"{m}: {100 * sum(broken[m]) / len(broken[m]):6.2f} %" for m in results) + "  " + "  ".join(
            f"{results[m]['attacks'][best]['seconds']:.0f}" for m in results))
        if added == 0:
            break


def run_compare(args: argparse.Namespace) -> None:
    models, x, y = package_models(args.smoke)
    if args.smoke:
        x, y = x[:SMOKE_SAMPLES], y[:SMOKE_SAMPLES]
    gradients = GRADIENTS[:2] if args.smoke else GRADIENTS
    attacks = PUBLISHED[:1] if args.smoke else PUBLISHED
    print(f"# compare: ε = {args.eps} L∞ on the digits test split; {_machine()}")
    print("| model | clean correct | union of the 24 published attacks (ASR ± SE) | its time (s) | "
          f"AutoAttack {args.suite} (ASR ± SE) | its time (s) | only the suite breaks | only the union breaks |")
    print("|---|---|---|---|---|---|---|---|")
    detail = []
    for model_name, target in models.items():
        xc, yc, total = _clean_correct(target, x, y)
        union, union_seconds = [False] * len(yc), 0.0
        for gradient in gradients:
            for name in attacks:
                broken, seconds = broken_by(published_attack(name, target.with_gradient(gradient), args.eps),
                                            target, xc, yc, args.batch)
                union = [a or b for a, b in zip(union, broken)]
                union_seconds += seconds
                detail.append(f"{model_name} {name}[{gradient}]: ASR {100 * sum(broken) / len(yc):.2f} %, "
                              f"{seconds:.1f} s")
        suite = AutoAttack(target, args.eps, version=args.suite, seed=0)
        suite_broken, suite_seconds = broken_by(suite, target, xc, yc, args.batch)
        n, p_union, p_suite = len(yc), sum(union) / len(yc), sum(suite_broken) / len(yc)
        only_suite = sum(s and not u for s, u in zip(suite_broken, union))
        only_union = sum(u and not s for s, u in zip(suite_broken, union))
        print(f"| {model_name} | {n} of {total} | {100 * p_union:.2f} ± {100 * _se(p_union, n):.2f} | "
              f"{union_seconds:.0f} | {100 * p_suite:.2f} ± {100 * _se(p_suite, n):.2f} | {suite_seconds:.0f} | "
              f"{only_suite} | {only_union} |", flush=True)
        detail.append(f"{model_name} suite breakdown: " + ", ".join(
            f"{b.name} {b.broken}/{b.attacked} in {b.seconds:.1f} s" for b in suite.breakdown))
    print("\n" + "\n".join(detail))


def evaluations(entry: SuiteAttack, classes: int) -> int:
    """Gradient evaluations ``entry`` spends on a sample it never breaks (the most it can spend); for Square,
    score evaluations (forwards without gradient)."""
    if not entry.gradients:
        return 1 + entry.steps
    per_run = entry.steps + (0 if entry.optimiser == "sapgd" else 1)
    runs = entry.restarts * (min(entry.target_classes, classes - 1) if entry.optimiser == "apgd-t" else 1)
    return runs * per_run


def run_vgg(args: argparse.Namespace) -> None:
    from sj_rga.models import build

    torch.manual_seed(0)
    model = build("vgg11", 10)
    target = SNNClassifier(model, args.T)
    x = torch.rand(args.samples, 3, 32, 32)
    with torch.no_grad():
        y = target(x).argmax(1)
    entries = SUITES[args.suite]
    print(f"# vgg: VGG-11, 3x32x32, T = {args.T}, batch {args.samples}, ε = 8/255 L∞, suite {args.suite}; {_machine()}")
    seconds = {}
    for gradient in dict.fromkeys(g for e in entries for g in e.gradients):
        clf = target.with_gradient(gradient)
        xg = x.clone().requires_grad_(True)
        torch.autograd.grad(torch.nn.functional.cross_entropy(clf(xg), y), xg)  # warm-up
        start = time.perf_counter()
        for _ in range(args.rounds):
            torch.autograd.grad(torch.nn.functional.cross_entropy(clf(xg), y), xg)
        seconds[gradient] = (time.perf_counter() - start) / args.rounds / args.samples
    with torch.no_grad():
        target(x)  # warm-up
        start = time.perf_counter()
        for _ in range(args.rounds):
            target(x)
    forward = (time.perf_counter() - start) / args.rounds / args.samples
    print("| attack | gradient (Square: score) evaluations per robust sample | seconds per sample |")
    print("|---|---|---|")
    total = 0.0
    for entry in entries:
        count = evaluations(entry, 10)
        cost = count * (sum(seconds[g] for g in entry.gradients) if entry.gradients else forward)
        total += cost
        budget = f"{entry.steps} steps, {entry.restarts} restart(s)" if entry.gradients else f"{entry.steps} queries"
        print(f"| {entry.name} ({budget}"
              f"{f', {entry.target_classes} targets' if entry.optimiser == 'apgd-t' else ''}) | {count} | {cost:.0f} |")
    print(f"| the whole suite on a sample no attack breaks | | {total:.0f} |")
    gradient_only = sum(evaluations(e, 10) * sum(seconds[g] for g in e.gradients) for e in entries if e.gradients)
    if gradient_only < total:
        print(f"the gradient attacks alone: {gradient_only:.0f} s per robust sample; with Square "
              f"{total / gradient_only:.2f}x that")
    print("seconds per gradient evaluation per sample: " + ", ".join(f"{g} {t:.3f}" for g, t in seconds.items())
          + f"; per score evaluation (forward without gradient): {forward:.3f}")
    if args.time_only:
        return
    suite = AutoAttack(target, 8 / 255, version=args.suite)
    start = time.perf_counter()
    suite(x, y)
    print(f"AutoAttack {args.suite} as run on these random-weight samples: "
          f"{(time.perf_counter() - start) / args.samples:.1f} s per sample; " + ", ".join(
              f"{b.name} broke {b.broken}/{b.attacked}" for b in suite.breakdown))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("select", "compare", "vgg"))
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=100, help="select: steps of each candidate")
    parser.add_argument("--suite", default="standard", choices=tuple(SUITES))
    parser.add_argument("--batch", type=int, default=400, help="samples per attack call")
    parser.add_argument("--samples", type=int, default=4, help="vgg: samples timed")
    parser.add_argument("--rounds", type=int, default=3, help="vgg: timed gradient evaluations per estimator")
    parser.add_argument("-T", "--T", type=int, default=8, help="vgg: time steps (the paper's 8)")
    parser.add_argument("--time-only", action="store_true", help="vgg: time the evaluations, do not run the suite")
    parser.add_argument("--cache", default="bench_suite_select.json", help="select: per-candidate results")
    parser.add_argument("--rand", action="store_true", help="select: Poisson input, EOT candidates")
    parser.add_argument("--published", action="store_true", help="select: measure the published attacks too")
    parser.add_argument("--only-published", action="store_true", help="select: only the published attacks")
    parser.add_argument("--eot", type=int, default=10, help="select --rand: spike samples per gradient")
    parser.add_argument("--smoke", action="store_true", help="a tiny run of every code path (seconds)")
    args = parser.parse_args(argv)
    {"select": run_select, "compare": run_compare, "vgg": run_vgg}[args.part](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
