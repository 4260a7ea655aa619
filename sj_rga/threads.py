"""CPU threads for torch, chosen for the machine as it is now: its physical cores and the work already on it.

torch's default (one thread per core) is fast on an idle machine and slow on a busy one: its OpenMP workers
wait for each other at every operation, and on a shared 2-core machine running other work the demo took
32 minutes with two threads against 2 with one. :func:`default_threads` therefore takes the cores left
idle by the machine's load (``os.getloadavg``), at least one and at most the physical cores, divided among
the processes of a ``torchrun`` job on this machine; ``OMP_NUM_THREADS``, when set, is respected.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import torch


def physical_cores() -> int:
    """Physical cores (distinct (package, core) pairs of ``/proc/cpuinfo``; ``os.cpu_count()`` elsewhere)."""
    cores, package = set(), "0"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    package = value.strip()
                elif key == "core id":
                    cores.add((package, value.strip()))
    except OSError:
        pass
    return len(cores) or os.cpu_count() or 1


def load_average() -> Optional[float]:
    """The machine's load average over the last minute, or None where the system does not report it."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def default_threads(processes: int = 1) -> int:
    """Threads for one of ``processes`` processes on this machine: ``OMP_NUM_THREADS`` when set, else the cores
    the load leaves idle (``cpu_count - load``, rounded), between 1 and the physical cores, shared by the
    processes."""
    if os.environ.get("OMP_NUM_THREADS", "").strip().isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return int(os.environ["OMP_NUM_THREADS"])
    cores = os.cpu_count() or 1
    load = load_average() or 0.0
    idle = max(1, min(physical_cores(), round(cores - load)))
    return max(1, idle // max(1, processes))


def busy_note(threads: int) -> Optional[str]:
    """A one-line note when the machine's load exceeds its cores (timings then grow), else None."""
    load, cores = load_average(), os.cpu_count() or 1
    if load is None or load <= cores:
        return None
    return (f"note: this machine is busy (load average {load:.1f} on {cores} cores); running with {threads} "
            f"thread{'s' if threads != 1 else ''}, so it takes longer than on an idle machine")


def set_threads(threads: int) -> None:
    """``torch.set_num_threads(threads)`` and, where torch still allows it (before any parallel work in the
    process), the inter-op threads too."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != threads:
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # torch allows it once, before inter-op work started: keep what runs
            pass


def threads_record() -> dict[str, Any]:
    """What a results file records about the threads: torch's intra- and inter-op threads, the cores and the
    load average now (the CLI takes it when a command starts)."""
    load = load_average()
    return {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
            "cpu_cores": os.cpu_count(), "physical_cores": physical_cores(),
            "load_average": None if load is None else round(load, 2)}
