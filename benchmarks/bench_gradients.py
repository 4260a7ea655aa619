"""Time per input gradient of every estimator (method §2) on the paper's VGG-11, as a multiple of STBP.

The model is ``sj_rga.models.build("vgg11", 10)``: the paper's VGG-11 at CIFAR size (input [B, 3, 32, 32]),
IF neurons with hard reset to 0 and SpikingJelly's ``PiecewiseQuadratic(alpha=1)`` surrogate, random
weights, float32, direct encoding. Every method is an ``SNNClassifier`` on that one model and computes
``d cross_entropy / d x`` for the batch with ``torch.autograd.grad``, as the attacks do:

- ``stbp``: the model's own surrogate, BPTT (stock SpikingJelly neurons);
- ``rga``, ``bptr``, ``hart``: the time-uniform estimators on the fast path (``rga_path='fast'``: a no-grad
  T-step forward plus one T = 1 backward) and per layer (``rga_path='layer'``);
- ``pdsg``, ``assg``: BPTT through the stock dynamics with their own surrogate derivative.

After one warm-up call each, all methods run in ``--rounds`` interleaved rounds, in a new random
order every round (seeded; so that no method always runs after the same one, e.g. after STBP's large
allocations); the table gives, per call,
the minimum and the median wall time, and the minimum CPU time of the process (all its threads; far less
disturbed than wall time by other processes on a shared machine), with the load average before and after.
The ratios are given for both minima. Targets of issue 11: BPTR and HART cost no more than RGA's fast path, ±10 %
(at most 1.1×); PDSG and ASSG at most 1.5× STBP.

    python benchmarks/bench_gradients.py [--T 8] [--batch 16] [--rounds 5] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import random
import statistics
import sys
import time
from typing import Callable

import torch
from machine import describe, load

#: (label, gradient, rga_path) of every method, in the order of the table.
METHODS: tuple[tuple[str, str, str], ...] = (
    ("stbp", "stbp", "auto"), ("rga fast", "rga", "fast"), ("bptr fast", "bptr", "fast"),
    ("hart fast", "hart", "fast"), ("rga layer", "rga", "layer"), ("bptr layer", "bptr", "layer"),
    ("hart layer", "hart", "layer"), ("pdsg", "pdsg", "auto"), ("assg", "assg", "auto"),
)


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gradient_steps(T: int, batch: int, device: torch.device, image_size: int = 32) -> dict[str, Callable[[], None]]:
    """One input gradient per method, all on one VGG-11 and one fixed batch of pixel-space images."""
    from sj_rga import SNNClassifier
    from sj_rga.models import build

    torch.manual_seed(0)
    model = build("vgg11", 10, image_size=image_size).to(device)
    x = torch.rand(batch, 3, image_size, image_size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)

    def step(clf: SNNClassifier) -> Callable[[], None]:
        def run() -> None:
            xg = x.detach().requires_grad_(True)
            torch.autograd.grad(torch.nn.functional.cross_entropy(clf(xg), y), xg)
        return run

    return {label: step(SNNClassifier(model, T, gradient=gradient, rga_path=path)) for label, gradient, path in METHODS}


def time_methods(steps: dict[str, Callable[[], None]], rounds: int, device: torch.device
                 ) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds per call of every method in ``rounds`` interleaved rounds, after a warm-up call each."""
    for run in steps.values():
        run()
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in steps}
    order = random.Random(0)
    for _ in range(rounds):  # a new order every round: no method always runs after the same one
        for label in order.sample(list(steps), len(steps)):
            run = steps[label]
            _synchronise(device)
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            _synchronise(device)
            times[label].append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def report(times: dict[str, list[tuple[float, float]]]) -> list[str]:
    """The markdown table and the targets' verdicts (on both minima)."""
    wall = {label: min(w for w, _ in values) for label, values in times.items()}
    cpu = {label: min(c for _, c in values) for label, values in times.items()}
    lines = ["| method | wall min (s) | wall median (s) | wall min x STBP | wall min x RGA fast | CPU min (s) "
             "| CPU min x STBP | CPU min x RGA fast |", "|---|---|---|---|---|---|---|---|"]
    for label, values in times.items():
        lines.append(f"| {label} | {wall[label]:.3f} | {statistics.median(w for w, _ in values):.3f} | "
                     f"{wall[label] / wall['stbp']:.2f} | {wall[label] / wall['rga fast']:.2f} | {cpu[label]:.3f} | "
                     f"{cpu[label] / cpu['stbp']:.2f} | {cpu[label] / cpu['rga fast']:.2f} |")
    lines.append("")
    for kind, best in (("wall", wall), ("CPU", cpu)):
        for label in ("bptr fast", "hart fast"):
            ratio = best[label] / best["rga fast"]
            verdict = "met" if ratio <= 1.1 else "MISSED"
            lines.append(f"target ({kind}) {label} <= 1.1x rga fast: {ratio:.2f}x, {verdict}")
        for label in ("pdsg", "assg"):
            ratio = best[label] / best["stbp"]
            lines.append(f"target ({kind}) {label} <= 1.5x stbp: {ratio:.2f}x, {'met' if ratio <= 1.5 else 'MISSED'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--T", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--image-size", type=int, default=32, help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device)
    load_before = load()
    steps = gradient_steps(args.T, args.batch, device, args.image_size)
    times = time_methods(steps, args.rounds, device)
    print(f"# VGG-11 (3x{args.image_size}x{args.image_size}, batch {args.batch}, T = {args.T}, float32) on "
          f"{args.device}: {describe(device.type)}")
    print(f"# torch {torch.__version__}, spikingjelly {importlib.metadata.version('spikingjelly')}, "
          f"{datetime.datetime.now():%Y-%m-%d %H:%M}, load average {load_before} before, {load()} after, "
          f"command: python {' '.join(sys.argv)}\n")
    print("\n".join(report(times)))


if __name__ == "__main__":
    main()
