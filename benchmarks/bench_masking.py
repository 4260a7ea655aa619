"""Gradient masking and the gradient-free attack (issue 19): what Square adds to the suite on deliberately masked
SNNs, and the robustness curve against fixed-ε runs.

- ``masked``: the selection models of ``bench_suite.py`` (``digits_snn``, IF and LIF λ = 0.9, trained on 1037
  training digits) attacked on the first ``--samples`` of the 400 held-out training digits (never the test
  split) at ε = 0.1 L∞, as they are and masked three ways with the same weights (the forward is unchanged,
  only the backward is): the model's surrogate replaced by a triangle of width 2·10⁻⁴ (derivative zero almost
  everywhere), by a very steep sigmoid (α = 100), or a rounding input layer (x → round(16x)/16, whose
  derivative is zero: every estimator's input gradient vanishes). Per case: robust accuracy after the gradient
  attacks of the standard suite, then after Square with the standard suite's budget and with the full suite's
  (5000 queries, AutoAttack's), each run on the samples the gradient attacks left robust; the seconds of each;
  and the gradient-masking checks (:func:`sj_rga.masking.masking_checks`) that warn.
- ``curve``: the package's IF digits model on the test split: the per-sample smallest breaking ε
  (:func:`sj_rga.curve.robustness_curve`) against fixed-ε runs of the same suite at three ε.

    python benchmarks/bench_masking.py masked [--samples 64] [--suite standard]
    python benchmarks/bench_masking.py curve  [--samples 120] [--suite fast]
    python benchmarks/bench_masking.py masked --smoke     # seconds: a tiny run of the code paths (tests)
"""
from __future__ import annotations

import argparse
import datetime
import sys
import time
from typing import Optional

import torch
import torch.nn as nn
from machine import describe, load
from spikingjelly.activation_based import surrogate

from sj_rga import SNNClassifier
from sj_rga.attacks import SUITES, AutoAttack
from sj_rga.attacks.autoattack import GRADIENT_FREE
from sj_rga.mapping import SPIKING_BASES


def _machine() -> str:
    return f"{describe()}, torch {torch.__version__}, load average {load()}, {datetime.datetime.now():%Y-%m-%d %H:%M}"


class Rounding(nn.Module):
    """x → round(16x)/16 before the network: the forward barely changes, autograd's derivative is zero."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return torch.round(x_seq * 16) / 16


def with_surrogate(model: nn.Module, function: nn.Module) -> nn.Module:
    """A copy of ``model`` whose spiking neurons use ``function`` as their surrogate (same forward)."""
    import copy

    twin = copy.deepcopy(model)
    for module in twin.modules():
        if isinstance(module, SPIKING_BASES):
            module.surrogate_function = function
    return twin


def masked_cases(classifier: SNNClassifier) -> dict[str, SNNClassifier]:
    model = classifier.model
    return {
        "as trained": classifier,
        "zero surrogate (triangle, width 2e-4)": SNNClassifier(
            with_surrogate(model, surrogate.PiecewiseQuadratic(alpha=1e4)), classifier.T),
        "steep surrogate (sigmoid, alpha 100)": SNNClassifier(
            with_surrogate(model, surrogate.Sigmoid(alpha=100.0)), classifier.T),
        "rounding input layer": SNNClassifier(nn.Sequential(Rounding(), model), classifier.T),
    }


def run_masked(args: argparse.Namespace) -> None:
    from bench_suite import selection_models

    from sj_rga.masking import masking_checks

    models, (x, y) = selection_models(args.smoke)
    x, y = x[:args.samples], y[:args.samples]
    suite = SUITES[args.suite]
    gradient_part = tuple(a for a in suite if a.optimiser not in GRADIENT_FREE)
    squares = {"standard": SUITES["standard"][-1], "full": SUITES["full"][-1]}
    if args.smoke:
        gradient_part = tuple(a.__class__(a.optimiser, a.gradient, 2) for a in gradient_part[:1])
        squares = {k: v.__class__(v.optimiser, v.gradient, 5) for k, v in squares.items()}
    print(f"# masked: ε = {args.eps} L∞, {len(y)} held-out training digits per model; {_machine()}")
    print("| model | case | clean | robust after the gradient attacks | + Square (standard, "
          f"{squares['standard'].steps} q.) | + Square (full, {squares['full'].steps} q.) | seconds: gradient "
          "attacks / Square std / Square full | checks that warn |")
    print("|---|---|---|---|---|---|---|---|")
    for model_name, base in models.items():
        for case, target in masked_cases(base).items():
            gradients = AutoAttack(target, args.eps, version="custom", attacks=gradient_part)
            start = time.perf_counter()
            gradients(x, y)
            seconds = [time.perf_counter() - start]
            done = gradients.last_result
            robust = done.robust_ok
            row = [f"{100 * float(done.clean_ok.float().mean()):.1f}", f"{100 * float(robust.float().mean()):.1f}"]
            for entry in squares.values():
                square = AutoAttack(target, args.eps, version="custom", attacks=(entry,))
                todo = robust.nonzero()[:, 0]
                start = time.perf_counter()
                still = robust.clone()
                if todo.numel():
                    square(x[todo], y[todo])
                    still[todo] = square.last_result.robust_ok
                seconds.append(time.perf_counter() - start)
                row.append(f"{100 * float(still.float().mean()):.1f}")
            checks = masking_checks(target, x[:args.check_samples], y[:args.check_samples], args.eps, "Linf",
                                    robust[:args.check_samples], [g for a in gradient_part for g in a.gradients],
                                    steps=2 if args.smoke else None)
            warned = ", ".join(c["name"] for c in checks if c["verdict"] == "warn") or "none"
            print(f"| {model_name} | {case} | " + " | ".join(row) + " | " + " / ".join(f"{s:.0f}" for s in seconds)
                  + f" | {warned} |", flush=True)


def run_curve(args: argparse.Namespace) -> None:
    from sj_rga.checkpoints import classifier_from_meta
    from sj_rga.curve import robustness_curve
    from sj_rga.data.digits import digits
    from sj_rga.training import train_digits

    model, meta = train_digits()
    target = classifier_from_meta(model, meta)
    x, y = digits()[1].tensors
    x, y = x[:args.samples], y[:args.samples]
    values = (0.05, 0.1, 0.15)
    print(f"# curve: {len(y)} test digits, suite {args.suite}, L∞, ε_max {args.eps_max}, {args.bisections} "
          f"bisections; {_machine()}")
    start = time.perf_counter()
    curve = robustness_curve(target, x, y, eps_max=args.eps_max, norm="Linf", version=args.suite,
                             bisections=args.bisections)
    curve_seconds = time.perf_counter() - start
    print("| ε | robust accuracy from the curve | fixed-ε suite | difference | its standard error | seconds |")
    print("|---|---|---|---|---|---|")
    for eps in values[:1] if args.smoke else values:
        suite = AutoAttack(target, eps, version=args.suite)
        start = time.perf_counter()
        suite(x, y)
        fixed = float(suite.last_result.robust_ok.float().mean())
        from_curve = curve.robust_accuracy(eps)
        se = (fixed * (1 - fixed) / len(y)) ** 0.5
        print(f"| {eps} | {100 * from_curve:.2f} | {100 * fixed:.2f} | {100 * (from_curve - fixed):+.2f} | "
              f"{100 * se:.2f} | {time.perf_counter() - start:.0f} |", flush=True)
    print(f"the curve took {curve_seconds:.0f} s")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("masked", "curve"))
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--check-samples", type=int, default=16, help="masked: samples the checks look at")
    parser.add_argument("--suite", default=None, help="masked: standard (default); curve: fast (default)")
    parser.add_argument("--eps-max", type=float, default=0.3, help="curve: the largest ε searched")
    parser.add_argument("--bisections", type=int, default=6, help="curve: bisection steps per sample")
    parser.add_argument("--smoke", action="store_true", help="a tiny run of every code path (seconds)")
    args = parser.parse_args(argv)
    if args.suite is None:
        args.suite = "standard" if args.part == "masked" else "fast"
    if args.smoke:
        args.samples, args.check_samples, args.bisections = min(args.samples, 6), 4, 2
    {"masked": run_masked, "curve": run_curve}[args.part](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
