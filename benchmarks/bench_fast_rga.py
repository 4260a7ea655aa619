"""Time and peak memory of one input gradient of the paper's VGG-11: no-grad forward, STBP/BPTT, per-layer
RGA and fast RGA (issue 7), plus the wall time of a 10-step PGD attack with each gradient.

The model is ``sj_rga.models.build("vgg11", 10)``: the paper's VGG-11 at CIFAR size (input [B, 3, 32, 32]),
IF neurons with hard reset to 0 and SpikingJelly's ``PiecewiseQuadratic(alpha=1)`` surrogate (the paper's
triangle), random weights, float32. Methods, each through ``SNNClassifier`` with direct encoding:

- ``forward``: logits under ``torch.no_grad()`` (the cost of a clean T-step evaluation; no gradient);
- ``bptt``: ``gradient='stbp'``: stock SpikingJelly neurons, their own surrogate, backward through time;
- ``rga layer``: ``gradient='rga', rga_path='layer'``: the per-layer RGA backward (rate op per layer);
- ``rga fast``: ``gradient='rga', rga_path='fast'``: no-grad T-step forward plus one T = 1 forward/backward.

Every gradient method computes ``d cross_entropy / d x`` for a batch (``torch.autograd.grad``, as the attacks
do). Time: after one warm-up call each, the four methods run in ``--rounds`` interleaved rounds on one model;
the table gives the minimum (the least disturbed by other load on a shared machine; ratios use it) and the
median. Peak memory: every (method, T) runs in a fresh subprocess, warms up with one call at T = 1, then
makes one call at T; on the CPU the figure is the process's peak resident set size during that call
(``VmHWM`` of ``/proc/self/status``, reset just before the call through ``/proc/self/clear_refs``) minus its
resident set size just before it: the extra physical memory the call needed at its peak. (``getrusage``'s
``ru_maxrss`` is no use here: a child inherits its parent's peak across fork and exec.) The subprocess runs
with glibc's mmap threshold fixed at
128 KiB (``MALLOC_MMAP_THRESHOLD_``), so every tensor buffer is its own mapping, returned to the OS when
freed: without it the figure depends on the heap's history (it varied 3x between identical runs). On a GPU it is
``torch.cuda.max_memory_allocated`` minus the memory allocated before the call. PGD: ``sj_rga.attacks.PGD``
(L∞, ε = 8/255, α = 2/255, 10 steps, random start) at the largest T of ``--steps`` that is at most 8: wall
time of one attack on the batch after a warm-up gradient, once per method (not interleaved). All figures
of one table come from one run of this script.

    python benchmarks/bench_fast_rga.py [--device cpu|cuda] [--batch 16] [--steps 4 8 16] [--rounds 3]
    python benchmarks/bench_fast_rga.py --quick      # T = 8 only, 2 rounds
    python benchmarks/bench_fast_rga.py --parts --steps 8   # where a fast RGA gradient's time goes
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Optional

import torch
from machine import describe

METHODS = ("forward", "bptt", "rga layer", "rga fast")
GRADIENT_OPTIONS = {"forward": dict(gradient="stbp"), "bptt": dict(gradient="stbp"),
                    "rga layer": dict(gradient="rga", rga_path="layer"),
                    "rga fast": dict(gradient="rga", rga_path="fast")}


def _step(method: str, clf, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One call of ``method``: a no-grad forward, or one input gradient."""
    if method == "forward":
        def run() -> None:
            with torch.no_grad():
                clf(x)
    else:
        def run() -> None:
            xg = x.detach().requires_grad_(True)
            torch.autograd.grad(torch.nn.functional.cross_entropy(clf(xg), y), xg)
    return run


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _status_bytes(field: str) -> int:
    """A memory figure of this process from ``/proc/self/status`` (``VmRSS``, ``VmHWM``), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _peak_bytes(run: Callable[[], None], device: torch.device) -> int:
    """Extra peak memory of one call of ``run`` (see the module docstring for what is measured)."""
    if device.type == "cuda":
        _synchronise(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        run()
        _synchronise(device)
        return torch.cuda.max_memory_allocated(device) - before
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set size (VmHWM) to the current one
    before = _status_bytes("VmRSS")
    run()
    return _status_bytes("VmHWM") - before


def _seconds(run: Callable[[], None], device: torch.device) -> float:
    """Wall time of one call of ``run``."""
    _synchronise(device)
    start = time.perf_counter()
    run()
    _synchronise(device)
    return time.perf_counter() - start


def _setup(method: str, T: int, batch: int, device: torch.device, model: Optional[torch.nn.Module] = None):
    """(classifier, one call of ``method``, x, y) on a fixed random batch of pixel-space images."""
    from sj_rga import SNNClassifier
    from sj_rga.models import build

    torch.manual_seed(0)
    model = build("vgg11", 10).to(device) if model is None else model
    clf = SNNClassifier(model, T, **GRADIENT_OPTIONS[method])
    x = torch.rand(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    return clf, _step(method, clf, x, y), x, y


def memory_worker(method: str, T: int, batch: int, device: torch.device) -> int:
    """Extra peak memory of one call at T, in this fresh process, after a warm-up call at T = 1 (which loads
    libraries and kernels without leaving T-sized buffers behind)."""
    clf, _, x, y = _setup(method, 1, batch, device)
    _step(method, clf, x, y)()
    return _peak_bytes(_step(method, clf.with_time_steps(T), x, y), device)


def time_methods(T: int, batch: int, device: torch.device, rounds: int) -> dict[str, list[float]]:
    """Seconds per call of every method, in ``rounds`` interleaved rounds after a warm-up (one shared model)."""
    model = None
    runs = {}
    for method in METHODS:
        clf, runs[method], _, _ = _setup(method, T, batch, device, model)
        model = clf.model
        runs[method]()
    times: dict[str, list[float]] = {method: [] for method in METHODS}
    for _ in range(rounds):
        for method, run in runs.items():
            times[method].append(_seconds(run, device))
    return times


def pgd_seconds(method: str, T: int, batch: int, device: torch.device) -> float:
    """Wall time of one 10-step L∞ PGD attack on the batch (after a warm-up gradient)."""
    from sj_rga.attacks import PGD

    clf, run, x, y = _setup(method, T, batch, device)
    run()
    attack = PGD(clf, eps=8 / 255, alpha=2 / 255, steps=10, seed=0)
    return _seconds(lambda: attack(x, y), device)


class _Stopwatch:
    """Adds up wall time per label: the calls of ``clf._logits`` by their T, and the neurons' own calls."""

    def __init__(self, device: torch.device):
        self.device, self.seconds, self._start = device, {}, {}

    def add(self, label: str, seconds: float) -> None:
        self.seconds[label] = self.seconds.get(label, 0.0) + seconds

    def time_logits(self, clf) -> None:
        logits = clf._logits

        def timed(x_seq: torch.Tensor) -> torch.Tensor:
            start = time.perf_counter()
            out = logits(x_seq)
            _synchronise(self.device)
            self.add("T = 1 forward" if x_seq.shape[0] == 1 else "T-step forward", time.perf_counter() - start)
            return out

        clf._logits = timed

    def time_neurons(self, model: torch.nn.Module, T: int) -> list:
        from sj_rga.rate_mode import spiking_neurons

        def before(node, args) -> None:
            _synchronise(self.device)
            self._start[node] = time.perf_counter()

        def after(node, args, out) -> None:
            _synchronise(self.device)
            if args[0].shape[0] == T:
                self.add("neurons", time.perf_counter() - self._start[node])

        return [hook for node in spiking_neurons(model)
                for hook in (node.register_forward_pre_hook(before), node.register_forward_hook(after))]


def parts(T: int, batch: int, device: torch.device, rounds: int) -> None:
    """Where the time of one fast RGA gradient goes, against the stock no-grad forward (best of ``rounds``
    after a warm-up round; both on one model)."""
    clf, _, x, y = _setup("rga fast", T, batch, device)
    fast_watch, stock_watch = _Stopwatch(device), _Stopwatch(device)
    fast_watch.time_logits(clf)
    stock = _step("forward", clf.with_gradient("stbp"), x, y)
    best: dict[str, float] = {}
    for round_index in range(rounds + 1):
        fast_watch.seconds, stock_watch.seconds = {}, {}
        handles = fast_watch.time_neurons(clf.model, T)
        xg = x.detach().requires_grad_(True)
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(clf(xg), y)
        middle = time.perf_counter()
        torch.autograd.grad(loss, xg)
        _synchronise(device)
        end = time.perf_counter()
        for handle in handles:
            handle.remove()
        handles = stock_watch.time_neurons(clf.model, T)
        stock_seconds = _seconds(stock, device)
        for handle in handles:
            handle.remove()
        seconds = {"stock no-grad forward": stock_seconds,
                   "  of which neurons (stock forward)": stock_watch.seconds["neurons"],
                   "fast RGA gradient, all": end - start,
                   "  T-step forward, recording": fast_watch.seconds["T-step forward"],
                   "    of which neurons (rate op forward)": fast_watch.seconds["neurons"],
                   "  T = 1 forward": fast_watch.seconds["T = 1 forward"],
                   "  T = 1 backward": end - middle}
        if round_index > 0:
            best = {k: min(v, best.get(k, v)) for k, v in seconds.items()}
    forward = best["stock no-grad forward"]
    print(f"| T = {T}: one fast RGA gradient | seconds (best of {rounds}) | x stock forward |\n|---|---|---|")
    for label, seconds in best.items():
        print(f"| {label} | {seconds:.3f} | {seconds / forward:.2f} |", flush=True)


def _peak_in_subprocess(method: str, T: int, args: argparse.Namespace) -> int:
    command = [sys.executable, __file__, "--memory-worker", method, "--T", str(T), "--batch", str(args.batch),
               "--device", args.device]
    # A fixed mmap threshold stops glibc from raising it after each large free, so freed tensors go back
    # to the OS at once and the resident set follows the live memory instead of the heap's history.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"memory worker {method} T={T} failed:\n{done.stderr[-3000:]}")
    return int(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds per T")
    parser.add_argument("--quick", action="store_true", help="T = 8 only, 2 rounds")
    parser.add_argument("--parts", action="store_true",
                        help="only where the time of a fast RGA gradient goes, at each T of --steps")
    parser.add_argument("--memory-worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--T", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.memory_worker:
        print(memory_worker(args.memory_worker, args.T, args.batch, device))
        return
    if args.quick:
        args.steps, args.rounds = [8], 2
    print(f"# VGG-11 (3x32x32, batch {args.batch}, float32) on {args.device}: {describe(args.device)}")
    print(f"# torch {torch.__version__}, spikingjelly {importlib.metadata.version('spikingjelly')}, "
          f"{datetime.datetime.now():%Y-%m-%d %H:%M}, "
          f"command: python {' '.join(sys.argv)}\n")
    if args.parts:
        for T in args.steps:
            parts(T, args.batch, device, args.rounds)
        return
    print("| T | method | time min (s) | time median (s) | min x forward | min x BPTT | extra peak memory (MiB) "
          "| x BPTT memory |")
    print("|---|---|---|---|---|---|---|---|")
    for T in args.steps:
        peaks = {method: _peak_in_subprocess(method, T, args) for method in METHODS}
        times = time_methods(T, args.batch, device, args.rounds)
        best = {method: min(t) for method, t in times.items()}
        for method in METHODS:
            print(f"| {T} | {method} | {best[method]:.3f} | {statistics.median(times[method]):.3f} | "
                  f"{best[method] / best['forward']:.2f} | {best[method] / best['bptt']:.2f} | "
                  f"{peaks[method] / 2**20:.0f} | {peaks[method] / peaks['bptt']:.2f} |", flush=True)
    T = max([t for t in args.steps if t <= 8] or args.steps[:1])
    print(f"\n| PGD, 10 steps, T = {T} | wall time (s) | x BPTT |\n|---|---|---|")
    pgd = {method: pgd_seconds(method, T, args.batch, device) for method in METHODS[1:]}
    for method, seconds in pgd.items():
        print(f"| {method} | {seconds:.2f} | {seconds / pgd['bptt']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
