"""Robustness bought by adversarial training on digits: clean training against PGD-AT with the RGA inner gradient
and PGD-AT with the STBP inner gradient (issue 14, method §4).

Models: ``digits_snn`` (IF neurons, triangle surrogate, T = 8, direct input), the paper's SGD recipe with
batch 32 (``DIGITS_PRESET``) for ``--clean-epochs`` or ``--at-epochs`` epochs; PGD-AT at ε = 0.1 with
``--at-steps`` inner steps of 2.5·ε/K from a uniform random start. Each final model is trained by
``sj_rga.training.train_model`` exactly as ``sj-rga train`` trains it (the commands are printed; same seed, same
weights) on the 1437 training digits and scored on the 360 test digits.

Robust accuracy at ε = 0.1 (pixel space [0, 1]) is the per-sample worst case over L∞ PGD with STBP gradients
and PGD with RGA gradients (``--eval-steps`` steps of 2.5·ε/steps, random start) and, with ``--suite``,
the evaluation suite ``sj_rga.attacks.AutoAttack`` (its ``fast`` or ``standard`` composition): a sample counts
as robust only if every attack leaves it correctly classified. The standard error of an accuracy p on n samples is
sqrt(p·(1 − p)/n) (binomial).

The training times of the final run are one run each on a shared machine; ``--cost`` times one epoch of
each kind in interleaved rounds (minimum and median), which is the fair comparison of their cost.

``--select`` chooses the schedules on a held-out split instead (never on the test split): 20 % of the training
digits (stratified, seed 0) are held out, each candidate epoch count of ``--clean-grid`` (clean training) and
``--at-grid`` (PGD-AT with RGA; PGD-AT with STBP uses the same schedule) is trained on the other 80 % and
scored on the held-out digits with the same attacks; it prints the table and the choice (clean: best clean
accuracy; AT: best robust accuracy).

    python benchmarks/bench_adv_robustness.py --select [--clean-grid 4 10 20] [--at-grid 10 20 30]
    python benchmarks/bench_adv_robustness.py --clean-epochs E1 --at-epochs E2 [--at-steps 7] [--suite standard]
    python benchmarks/bench_adv_robustness.py --cost [--rounds 3]   # one epoch of each, interleaved
"""
from __future__ import annotations

import argparse
import datetime
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

import torch
from machine import load

EPS = 0.1


def _adversarial(kind: str, steps: int):
    from sj_rga.adversarial import AdversarialConfig

    return AdversarialConfig() if kind == "clean" else AdversarialConfig("pgd", eps=EPS, steps=steps, gradient=kind)


def _config(kind: str, epochs: int, steps: int, max_batches: Optional[int] = None):
    from sj_rga.training import DIGITS_PRESET

    return replace(DIGITS_PRESET, epochs=epochs, max_batches=max_batches, adversarial=_adversarial(kind, steps))


def cli_command(kind: str, epochs: int, steps: int, out: str) -> str:
    adversarial = "" if kind == "clean" else (f" --adversarial pgd --adv-eps {EPS} --adv-steps {steps} "
                                              f"--adv-gradient {kind}")
    return f"sj-rga train --data digits --epochs {epochs}{adversarial} --out {out}"


def robustness(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eval_steps: int,
               suite: str = "none", batch_size: int = 120) -> dict[str, float]:
    """Clean accuracy, robust accuracy under each attack, and the per-sample worst case, as fractions.
    ``suite`` (``fast``/``standard``) adds sj_rga.attacks.AutoAttack's suite (seed 0) to the worst case."""
    from sj_rga import SNNClassifier, engine
    from sj_rga.attacks import PGD, AutoAttack

    target = SNNClassifier(model, 8, gradient="stbp")
    attacks = {f"PGD-{eval_steps} {g.upper()}": PGD(SNNClassifier(model, 8, gradient=g), EPS, 2.5 * EPS / eval_steps,
                                                    eval_steps, seed=0)
               for g in ("stbp", "rga")}
    if suite != "none":
        attacks[f"AutoAttack ({suite})"] = AutoAttack(target, EPS, "Linf", suite, seed=0)

    def score(part) -> dict:  # per sample: right clean, and right under each attack
        with torch.no_grad():
            return {"clean": (target(part.x).argmax(-1) == part.y).tolist(),
                    **{name: (target(attack(part.x, part.y)).argmax(-1) == part.y).tolist()
                       for name, attack in attacks.items()}}

    records = engine.run((x, y), score, batch_size, progress=False)  # each sample's random draws its own
    right = {name: [v for r in records for v in r[name]] for name in ("clean", *attacks)}
    right["worst case"] = [all(column) for column in zip(*right.values())]
    correct = {name: sum(values) for name, values in right.items()}
    return {name: count / len(y) for name, count in correct.items()}


def _se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


def _row(label: str, scores: dict[str, float], n: int, seconds: float) -> str:
    cells = " | ".join(f"{100 * p:.1f} ± {100 * _se(p, n):.1f}" for p in scores.values())
    return f"| {label} | {cells} | {seconds:.0f} |"


def _header(scores: dict[str, float]) -> str:
    return ("| model | " + " | ".join(f"{name} (%)" for name in scores) + " | training time (s) |\n|"
            + "---|" * (len(scores) + 2))


def select(args: argparse.Namespace) -> None:
    from sklearn.model_selection import train_test_split

    from sj_rga.data import digits
    from sj_rga.models import build
    from sj_rga.training import InputSpec, train

    x, y = digits()[0].tensors
    fit, held = train_test_split(torch.arange(len(y)).numpy(), test_size=0.2, random_state=0, stratify=y.numpy())
    fit_set = torch.utils.data.TensorDataset(x[fit], y[fit])
    xh, yh = x[held], y[held]
    print(f"# held-out selection: {len(fit)} training digits, {len(held)} held out (stratified, seed 0)\n")
    header_done = False
    chosen = {}
    for kind, grid in (("clean", args.clean_grid), ("rga", args.at_grid)):
        best = None
        for epochs in sorted(grid):
            torch.manual_seed(0)
            model = build("digits_snn", 10)
            started = time.perf_counter()
            train(model, fit_set, InputSpec(8), _config(kind, epochs, args.at_steps))
            seconds = time.perf_counter() - started
            scores = robustness(model, xh, yh, args.eval_steps)
            if not header_done:
                print(_header(scores))
                header_done = True
            label = "clean" if kind == "clean" else f"PGD-AT RGA, K = {args.at_steps}"
            print(_row(f"{label}, {epochs} epochs", scores, len(yh), seconds) + f" load {load()}", flush=True)
            score = scores["clean" if kind == "clean" else "worst case"]
            if best is None or score > best[0]:  # ties go to the shorter schedule
                best = (score, epochs)
        chosen[kind] = best[1]
    print(f"\nchosen: --clean-epochs {chosen['clean']} --at-epochs {chosen['rga']} "
          "(clean: best held-out clean accuracy; AT: best held-out worst-case robust accuracy; ties: fewer epochs)")


def final(args: argparse.Namespace) -> None:
    from sj_rga.data import digits
    from sj_rga.training import train_model

    x, y = digits()[1].tensors
    print(f"# {len(y)} test digits; ± is the binomial standard error sqrt(p(1-p)/n)\n")
    rows, commands = [], []
    for kind, label in (("clean", "clean training"), ("rga", "PGD-AT, RGA inner gradient"),
                        ("stbp", "PGD-AT, STBP inner gradient")):
        epochs = args.clean_epochs if kind == "clean" else args.at_epochs
        commands.append(cli_command(kind, epochs, args.at_steps, f"digits_{kind}.pt"))
        before = load()
        started = time.perf_counter()
        checkpoint = None if args.save is None else Path(args.save) / f"digits_{kind}.pt"
        model, _ = train_model("digits_snn", "digits", T=8, config=_config(kind, epochs, args.at_steps),
                               checkpoint=checkpoint)
        seconds = time.perf_counter() - started
        scores = robustness(model, x, y, args.eval_steps, args.suite)
        if not rows:
            print(_header(scores))
        rows.append(_row(f"{label} ({epochs} epochs)", scores, len(y), seconds) + f" load {before} / {load()}")
        print(rows[-1], flush=True)
    print("\nThe same models from the command line (identical weights):")
    for command in commands:
        print(f"    {command}")


def cost(args: argparse.Namespace) -> None:
    """Seconds of one training epoch (1437 digits, batch 32) of each kind, in interleaved rounds."""
    from sj_rga.data import digits
    from sj_rga.models import build
    from sj_rga.training import InputSpec, train

    train_set = digits()[0]
    kinds = {"clean training": "clean", "PGD-AT, RGA inner gradient": "rga", "PGD-AT, STBP inner gradient": "stbp"}
    times: dict[str, list[float]] = {label: [] for label in kinds}
    for _ in range(args.rounds):
        for label, kind in kinds.items():
            torch.manual_seed(0)
            model = build("digits_snn", 10)
            started = time.perf_counter()
            train(model, train_set, InputSpec(8), _config(kind, 1, args.at_steps, args.max_batches))
            times[label].append(time.perf_counter() - started)
    print(f"# one epoch of {len(train_set)} training digits, batch 32, K = {args.at_steps}; "
          f"{args.rounds} interleaved rounds, load after {load()}\n")
    print("| model | epoch min (s) | epoch median (s) | x PGD-AT with STBP |\n|---|---|---|---|")
    stbp = min(times["PGD-AT, STBP inner gradient"])
    for label, seconds in times.items():
        median = sorted(seconds)[len(seconds) // 2]
        print(f"| {label} | {min(seconds):.2f} | {median:.2f} | {min(seconds) / stbp:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--select", action="store_true", help="choose the schedules on a held-out split")
    parser.add_argument("--cost", action="store_true", help="time one epoch of each kind, interleaved")
    parser.add_argument("--rounds", type=int, default=3, help="--cost: interleaved rounds")
    parser.add_argument("--max-batches", type=int, help="--cost: cap the batches of the epoch (a smoke test)")
    parser.add_argument("--clean-grid", type=int, nargs="+", default=[4, 10, 20])
    parser.add_argument("--at-grid", type=int, nargs="+", default=[10, 20, 30])
    parser.add_argument("--clean-epochs", type=int, default=4)
    parser.add_argument("--at-epochs", type=int, default=20)
    parser.add_argument("--at-steps", type=int, default=7, help="inner PGD steps K of adversarial training")
    parser.add_argument("--eval-steps", type=int, default=20, help="PGD steps of the robustness evaluation")
    parser.add_argument("--suite", default="none", choices=("none", "fast", "standard"),
                        help="add sj_rga.attacks.AutoAttack's suite to the final models' worst case")
    parser.add_argument("--save", help="folder for the final models' checkpoints")
    args = parser.parse_args()
    print(f"# digits_snn (IF, T = 8), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{datetime.datetime.now():%Y-%m-%d %H:%M}, load {load()}, command: python {' '.join(sys.argv)}")
    if args.select:
        select(args)
    elif args.cost:
        cost(args)
    else:
        final(args)


if __name__ == "__main__":
    main()
