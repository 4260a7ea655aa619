"""The benchmark scripts still run (tiny settings; their figures live in benchmarks/RESULTS.md, not here)."""
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_fast_rga.py"


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_fast_rga_benchmark_parts_add_up():
    out = _run("--parts", "--steps", "2", "--batch", "2", "--rounds", "1")
    rows = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in out.splitlines()
            if line.startswith("| ") and line.split("|")[2].strip()[:1].isdigit()}
    assert rows["stock no-grad forward"] > 0 and rows["fast RGA gradient, all"] > 0
    pieces = rows["T-step forward, recording"] + rows["T = 1 forward"] + rows["T = 1 backward"]
    assert pieces <= rows["fast RGA gradient, all"] * 1.01
    assert 0 < rows["of which neurons (rate op forward)"] < rows["T-step forward, recording"]


def test_fast_rga_benchmark_memory_worker():
    peak = int(_run("--memory-worker", "rga fast", "--T", "2", "--batch", "2", "--device", "cpu").split()[-1])
    assert peak > 0
