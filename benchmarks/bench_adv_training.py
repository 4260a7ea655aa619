"""Cost of one adversarial training step of the paper's VGG-11: the inner maximisation with the fast RGA gradient
against the same with STBP/BPTT (issue 14, method §4).

One step is what :func:`sj_rga.training.train` does per batch, run by the same function (``_step_loss``): draw
the random start, run PGD with K input gradients on an :class:`sj_rga.SNNClassifier` (BatchNorm in eval;
``gradient='rga'`` takes the fast path of method §1.5 on this model, ``'stbp'`` is BPTT through the model's own
surrogate), then one BPTT forward/backward of the cross-entropy at the adversarial point in training mode, and
one SGD step of the paper's recipe with the optimizer kept across steps (momentum buffers in place, as in
training). A clean training step (no inner maximisation) is timed beside it, and the inner maximisation alone
(``adversarial_examples``) for each gradient, to show where the time goes.

The model is ``sj_rga.models.build("vgg11", 10)``: IF neurons, hard reset, the paper's triangle surrogate
``PiecewiseQuadratic(alpha=1)``, random weights, 3x32x32 inputs in [0, 1], float32, direct encoding. PGD-AT
settings: L∞, ε = 8/255, K = 3 steps of 2.5·ε/K, uniform random start. Every (T, method) is warmed up once,
then all methods run in ``--rounds`` interleaved rounds; the table gives the minimum (least disturbed by other
load; the ratios use it) and the median, the minimum CPU time of the process (user + system, all its threads:
less disturbed by other processes on a shared machine than wall time), and the load average before and
after.

    python benchmarks/bench_adv_training.py [--steps 4 8 16] [--batch 16] [--K 3] [--rounds 3]
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import statistics
import sys
import time
from typing import Callable

import torch
from machine import describe, load

METHODS = ("clean step", "AT step, STBP inner", "AT step, RGA inner", "inner only, STBP", "inner only, RGA")


def _runs(T: int, batch: int, K: int) -> dict[str, Callable[[], None]]:
    """One call of each method on one VGG-11 and one fixed batch."""
    from sj_rga.adversarial import AdversarialConfig, adversarial_examples, random_start
    from sj_rga.models import build
    from sj_rga.training import InputSpec, TrainConfig, _step_loss, inner_classifier

    torch.manual_seed(0)
    model = build("vgg11", 10)
    images, labels = torch.rand(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    inputs, recipe = InputSpec(T), TrainConfig()

    def step(adversarial: AdversarialConfig) -> Callable[[], None]:
        classifier = inner_classifier(model, inputs, adversarial.gradient) if adversarial.active else None
        optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                    weight_decay=recipe.weight_decay)
        generator = torch.Generator().manual_seed(0)

        def run() -> None:
            delta = random_start(adversarial, tuple(images.shape), generator) if adversarial.active else None
            losses, _ = _step_loss(model, inputs, images, labels, adversarial, classifier, delta)
            optimizer.zero_grad(set_to_none=True)
            losses.mean().backward()
            optimizer.step()

        return run

    def inner(adversarial: AdversarialConfig) -> Callable[[], None]:
        classifier = inner_classifier(model, inputs, adversarial.gradient)
        generator = torch.Generator().manual_seed(0)
        return lambda: adversarial_examples(classifier, adversarial, images, labels,
                                            random_start(adversarial, tuple(images.shape), generator))

    stbp, rga = (AdversarialConfig("pgd", eps=8 / 255, steps=K, gradient=g) for g in ("stbp", "rga"))
    return {"clean step": step(AdversarialConfig()), "AT step, STBP inner": step(stbp),
            "AT step, RGA inner": step(rga), "inner only, STBP": inner(stbp), "inner only, RGA": inner(rga)}


def time_methods(T: int, batch: int, K: int, rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(wall seconds, CPU seconds of this process) per call of each method, in interleaved rounds."""
    runs = _runs(T, batch, K)
    for run in runs.values():
        run()  # warm-up
    wall: dict[str, list[float]] = {method: [] for method in METHODS}
    cpu: dict[str, list[float]] = {method: [] for method in METHODS}
    for _ in range(rounds):
        for method, run in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            wall[method].append(time.perf_counter() - start)
            cpu[method].append(time.process_time() - start_cpu)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 8, 16], help="time steps T")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--K", type=int, default=3, help="inner PGD steps")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds per T")
    args = parser.parse_args()
    print(f"# VGG-11 (3x32x32, batch {args.batch}, float32) on cpu: {describe()}")
    print(f"# torch {torch.__version__}, spikingjelly {importlib.metadata.version('spikingjelly')}, "
          f"{datetime.datetime.now():%Y-%m-%d %H:%M}, command: python {' '.join(sys.argv)}")
    print(f"# PGD-AT, ε = 8/255, K = {args.K} steps of 2.5·ε/K; minimum and median of {args.rounds} interleaved "
          "rounds after a warm-up\n")
    print("| T | what | wall min (s) | wall median (s) | CPU min (s) | wall x AT step with STBP inner | "
          "CPU x AT step with STBP inner | load before / after |")
    print("|---|---|---|---|---|---|---|---|")
    for T in args.steps:
        before = load()
        wall, cpu = time_methods(T, args.batch, args.K, args.rounds)
        after = load()
        best = {method: min(t) for method, t in wall.items()}
        best_cpu = {method: min(t) for method, t in cpu.items()}
        for method in METHODS:
            print(f"| {T} | {method} | {best[method]:.3f} | {statistics.median(wall[method]):.3f} | "
                  f"{best_cpu[method]:.3f} | {best[method] / best['AT step, STBP inner']:.2f} | "
                  f"{best_cpu[method] / best_cpu['AT step, STBP inner']:.2f} | {before} / {after} |", flush=True)


if __name__ == "__main__":
    main()
