"""Attack success rate of every estimator (method §2) on the package's digits SNNs, with HART's γ and ASSG's A
chosen on held-out training data.

Models: ``digits_snn`` (T = 8, direct input, the paper's neuron: IF for λ = 1 and LIF for λ = 0.9, triangle
surrogate) trained with the recipe of ``sj_rga.training.train_digits`` (``DIGITS_PRESET``) on
scikit-learn's training split minus a stratified held-out split of ``--holdout`` samples, which no model
sees in training: per λ a target (seed 0) and a source for black-box attacks (seed 1).

Tuning: for every attack setting, ``sj_rga.tune_gradient`` picks HART's γ (0.10 … 2.45, step 0.05) and
ASSG's A (0.35 … 0.49, step 0.01) by ASR on the held-out split (the black-box setting on the source model,
white-box, as an attacker without the target would). Scoring: the test split (360 digits), never used for
tuning. Attacks, ε in pixel space [0, 1]: FGSM at ε ∈ {0.1, 0.15, 0.2}; PGD at ε = 0.1, 10 steps of
2.5·ε/10 from a random start (seed 0); black-box FGSM at ε = 0.15, crafted on the source and scored on the
target. ASR: among the n test samples the target classifies correctly, the share misclassified after the
attack; ± is its binomial standard error sqrt(p(1 − p)/n).

    python benchmarks/bench_gradient_asr.py [--holdout 300] [--json results.json]
    python benchmarks/bench_gradient_asr.py --quick     # a smoke run: small splits, grids and training
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import sys
import time
from typing import Any

import torch
from torch.utils.data import TensorDataset

#: (label, attack, ε, crafted on): the settings of issue 11.
SETTINGS: tuple[tuple[str, str, float, str], ...] = (
    ("FGSM ε=0.1", "fgsm", 0.1, "target"), ("FGSM ε=0.15", "fgsm", 0.15, "target"),
    ("FGSM ε=0.2", "fgsm", 0.2, "target"), ("PGD ε=0.1, 10 steps", "pgd", 0.1, "target"),
    ("black-box FGSM ε=0.15", "fgsm", 0.15, "source"),
)


def split_training(holdout: int, seed: int = 0) -> tuple[TensorDataset, tuple[torch.Tensor, torch.Tensor]]:
    """(training subset, held-out (x, y)): a stratified split of scikit-learn's digits training split."""
    from sklearn.model_selection import train_test_split

    from sj_rga.data.digits import digits

    x, y = digits()[0].tensors
    keep, held = train_test_split(torch.arange(len(y)).numpy(), test_size=holdout, random_state=seed,
                                  stratify=y.numpy())
    return TensorDataset(x[keep], y[keep]), (x[held], y[held])


def train_pair(lam: float, train_set: TensorDataset, test_set: TensorDataset, quick: bool) -> dict[str, Any]:
    """A target (seed 0) and a source (seed 1) ``digits_snn`` with leak ``lam``, and their test accuracies."""
    from sj_rga.models import build
    from sj_rga.training import DIGITS_PRESET, InputSpec, train

    models = {}
    for role, seed in (("target", 0), ("source", 1)):
        config = dataclasses.replace(DIGITS_PRESET, seed=seed, **({"epochs": 2, "max_batches": 20} if quick else {}))
        result = train(build("digits_snn", 10, lam=lam, in_channels=1, image_size=8), train_set, InputSpec(8),
                       config, test_set)
        models[role], models[f"{role}_accuracy"] = result.model, result.accuracy
    return models


def run_lambda(lam: float, train_set, held_out, test, quick: bool) -> dict[str, Any]:
    """Tuned values and ASR of every estimator in every setting, for the models of leak ``lam``."""
    from sj_rga import SNNClassifier, evaluate, tune_gradient
    from sj_rga.experiment import GRADIENTS, AttackSpec

    models = train_pair(lam, train_set, TensorDataset(*test), quick)
    classifiers = {role: SNNClassifier(models[role], 8) for role in ("target", "source")}
    grids = {"hart": (0.3, 1.0, 2.0), "assg": (0.38, 0.45)} if quick else {"hart": None, "assg": None}
    rows = []
    for label, attack, eps, crafted_on in SETTINGS:
        spec = AttackSpec(attack, eps)
        crafter = classifiers[crafted_on]
        tuned = {name: tune_gradient(crafter, name, held_out, attack=spec, split="train-holdout", grid=grids[name],
                                     progress=False) for name in ("hart", "assg")}
        results = {}
        for name in GRADIENTS:
            gradient = tuned[name].estimator if name in tuned else name
            report = evaluate(classifiers["target"], spec.build(crafter.with_gradient(gradient)), test,
                              progress=False)
            p, n = report.attack_success_rate, report.clean_correct
            results[name] = {"asr": p, "n": n, "se": math.sqrt(p * (1 - p) / n)}
        rows.append({"setting": label, "asr": results, "tuned": {k: v.as_dict() for k, v in tuned.items()}})
    return {"lam": lam, "target_accuracy": models["target_accuracy"], "source_accuracy": models["source_accuracy"],
            "rows": rows}


def tables(result: dict[str, Any]) -> list[str]:
    from sj_rga.experiment import GRADIENTS

    lines = [f"\n## λ = {result['lam']:g}: target test accuracy {100 * result['target_accuracy']:.1f} %, "
             f"source {100 * result['source_accuracy']:.1f} %\n",
             "| setting | n | " + " | ".join(g.upper() for g in GRADIENTS) + " | tuned γ (HART) | tuned A (ASSG) |",
             "|---|---|" + "---|" * len(GRADIENTS) + "---|---|"]
    for row in result["rows"]:
        asr = row["asr"]
        cells = [f"{100 * asr[g]['asr']:.1f} ± {100 * asr[g]['se']:.1f}" for g in GRADIENTS]
        best = max(asr[g]["asr"] for g in GRADIENTS)
        cells = [f"**{c}**" if asr[g]["asr"] == best else c for c, g in zip(cells, GRADIENTS)]
        n = asr[GRADIENTS[0]]["n"]
        lines.append(f"| {row['setting']} | {n} | " + " | ".join(cells) +
                     f" | {row['tuned']['hart']['value']:g} | {row['tuned']['assg']['value']:g} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--holdout", type=int, default=300, help="training digits held out for tuning")
    parser.add_argument("--lam", type=float, nargs="+", default=[1.0, 0.9])
    parser.add_argument("--json", help="also write every figure, score and tuned value here")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small splits, grids and training")
    args = parser.parse_args()
    from sj_rga.data.digits import digits

    load_before, started = ", ".join(f"{v:.2f}" for v in os.getloadavg()), time.perf_counter()
    holdout = 24 if args.quick else args.holdout
    train_set, held_out = split_training(holdout)
    test = digits()[1].tensors
    if args.quick:
        test = (test[0][:24], test[1][:24])
    results = [run_lambda(lam, train_set, held_out, test, args.quick) for lam in args.lam]
    print(f"# digits_snn, T = 8, {len(train_set)} training digits, {holdout} held out for tuning, {len(test[1])} "
          f"test digits; {datetime.datetime.now():%Y-%m-%d %H:%M}, torch {torch.__version__}, "
          f"{os.cpu_count()} logical cores, load average {load_before} before, "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())} after, {time.perf_counter() - started:.0f} s; "
          f"command: python {' '.join(sys.argv)}")
    print("# ASR in % ± binomial standard error; bold: the highest in the row")
    for result in results:
        print("\n".join(tables(result)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": sys.argv, "holdout": holdout, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
