"""Smoke runs of benchmarks/bench_masking.py (seconds): every code path of its two parts."""
from benchmark_scripts import run_script


def test_masked_models_benchmark_runs():
    out = run_script("bench_masking.py", "masked", "--smoke")
    rows = [line for line in out.splitlines() if line.startswith("| IF") or line.startswith("| LIF")]
    assert len(rows) == 8 and any("rounding input layer" in r and "zero_gradient" in r for r in rows)


def test_curve_benchmark_runs():
    out = run_script("bench_masking.py", "curve", "--smoke")
    assert "robust accuracy from the curve" in out and "the curve took" in out


def test_suite_cost_counts_square_queries_on_vgg11():
    out = run_script("bench_suite.py", "vgg", "--samples", "1", "--rounds", "1", "--suite", "standard", "--time-only")
    assert "square[" in out and "queries" in out and "with Square" in out
