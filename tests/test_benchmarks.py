"""The benchmark scripts still run (tiny settings; their figures live in benchmarks/RESULTS.md, not here)."""
import json

from benchmark_scripts import run_script


def _run(*args: str) -> str:
    return run_script("bench_fast_rga.py", *args, timeout=300, MALLOC_MMAP_THRESHOLD_="131072")


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


def test_demo_timing_script_runs_and_adds_up(quick_demo):
    """On the cache the quick demo filled (the models are loaded, each load still a step of its own)."""
    out = run_script("time_demo.py", "--quick", "--cache-dir", str(quick_demo[2]))
    rows = [line.split("|") for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    steps = [(cells[1].strip(), float(cells[2])) for cells in rows[1:-1]]
    assert sum(1 for label, _ in steps if label.startswith("train digits_snn")) >= 6  # targets and sources
    assert sum(1 for label, _ in steps if label.startswith("attack: ")) >= 7
    assert abs(sum(cpu for _, cpu in steps) - float(rows[-1][2])) < 0.05 * len(steps)  # they add up to the total


def test_suite_benchmark_selects_on_held_out_data(tmp_path):
    cache = tmp_path / "select.json"
    out = run_script("bench_suite.py", "select", "--smoke", "--steps", "2", "--published", "--cache", str(cache))
    results = json.loads(cache.read_text())
    assert set(results) == {"IF", "LIF 0.9"} and all(len(r["attacks"]) == 2 for r in results.values())
    assert "greedy choice" in out and "held-out" in out


def test_suite_benchmark_compares_with_the_published_union():
    out = run_script("bench_suite.py", "compare", "--smoke", "--suite", "fast")
    rows = [line for line in out.splitlines() if line.startswith("| IF") or line.startswith("| LIF 0.9")]
    assert len(rows) == 2 and all(len(r.split("|")) == 10 for r in rows)


def test_suite_benchmark_times_the_suite_on_vgg11():
    out = run_script("bench_suite.py", "vgg", "--samples", "1", "--rounds", "1", "--suite", "fast", "--T", "2")
    rows = [line.split("|") for line in out.splitlines() if line.startswith("| apgd")]
    assert [r[2].strip() for r in rows] == ["21", "21"]  # APGD-CE, 20 steps: 21 gradient evaluations each
    assert "s per sample" in out.splitlines()[-1]
