"""What every benchmark prints beside its figures: the machine and its load (benchmarks/RESULTS.md compares
figures only within one run, and only at a stated load)."""
from __future__ import annotations

import os
import platform

import torch


def describe(device: str = "cpu") -> str:
    """The GPU's name on ``'cuda'``; else the CPU model (from /proc/cpuinfo where there is one), its logical
    cores and torch's thread count."""
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    model = platform.processor() or platform.machine() or "unknown CPU"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    return f"{model}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}"


def load() -> str:
    """The 1, 5 and 15 minute load averages, e.g. ``'0.66 1.52 3.50'`` (``'?'`` where the OS has none)."""
    if not hasattr(os, "getloadavg"):
        return "?"
    return " ".join(f"{value:.2f}" for value in os.getloadavg())
