"""How long ``sj-rga demo`` takes, step by step: CPU and wall seconds of each model training and attack row.

    OMP_NUM_THREADS=1 python benchmarks/time_demo.py --cache-dir /tmp/cold   # first run: trains the models
    OMP_NUM_THREADS=1 python benchmarks/time_demo.py --cache-dir /tmp/cold   # again: the models are cached

With one thread, the CPU seconds are what the step takes on an idle core, whatever else the machine runs;
the wall seconds depend on the load (print ``uptime`` beside them). ``--quick`` times the CI setting.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from sj_rga.demo import DemoSettings, run_demo
from sj_rga.experiment import GRADIENTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache-dir", help="model cache (default: a new temporary folder, so a cold run)")
    parser.add_argument("--quick", action="store_true", help="the small setting CI runs")
    args = parser.parse_args()
    cache = Path(args.cache_dir) if args.cache_dir else Path(tempfile.mkdtemp(prefix="sj-rga-demo-cache-"))
    marks = [("setup: digits", time.process_time(), time.perf_counter())]

    def log(message: str) -> None:
        marks.append((message, time.process_time(), time.perf_counter()))

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    run_demo(settings, cache, progress=False, log=log)
    log("end")
    # The demo logs "attack: ..." (or the shuffle test) before a step, and "model: ..." / "model ready" around
    # a model's training or loading inside it: each interval goes to the training or to the current step.
    steps: dict[str, list[float]] = {}
    activity = marks[0][0]
    for (label, cpu, wall), (_, next_cpu, next_wall) in zip(marks, marks[1:]):
        if label.startswith("model:"):
            key = f"train {label.removeprefix('model: ')}"
        else:
            if not label.startswith("model ready"):
                activity = label
            key = activity
        totals = steps.setdefault(key, [0.0, 0.0])
        totals[0] += next_cpu - cpu
        totals[1] += next_wall - wall
    print(f"# sj-rga demo{' --quick' if args.quick else ''}: {len(GRADIENTS)} gradients ({', '.join(GRADIENTS)}), "
          f"cache {cache}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
          f"{torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}\n")
    print("| step | CPU s | wall s |\n|---|---|---|")
    for label, (cpu, wall) in steps.items():
        print(f"| {label} | {cpu:.1f} | {wall:.1f} |")
    training = sum(cpu for label, (cpu, _) in steps.items() if label.startswith("train "))
    total_cpu, total_wall = marks[-1][1] - marks[0][1], marks[-1][2] - marks[0][2]
    print(f"| **total** (of which training {training:.1f} CPU s) | {total_cpu:.1f} | {total_wall:.1f} |")


if __name__ == "__main__":
    main()
