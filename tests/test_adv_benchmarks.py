"""The adversarial training benchmark scripts still run (tiny settings; their figures live in benchmarks/RESULTS.md)."""
from benchmark_scripts import run_script


def _table(out: str) -> dict[str, list[str]]:
    return {cells[1]: cells[2:] for cells in (line.split(" | ") for line in out.splitlines() if line.startswith("| "))
            if len(cells) > 2 and cells[2][:1].isdigit()}


def test_adversarial_step_cost_benchmark_runs():
    rows = _table(run_script("bench_adv_training.py", "--steps", "1", "--batch", "2", "--K", "1", "--rounds", "1"))
    assert set(rows) == {"clean step", "AT step, STBP inner", "AT step, RGA inner", "inner only, STBP",
                         "inner only, RGA"}
    assert all(float(cells[0]) > 0 for cells in rows.values()) and rows["AT step, STBP inner"][3:5] == ["1.00", "1.00"]


def test_adversarial_robustness_cost_mode_runs():
    out = run_script("bench_adv_robustness.py", "--cost", "--rounds", "1", "--at-steps", "1", "--max-batches", "2")
    rows = {line.split("|")[1].strip(): line.split("|")[2:] for line in out.splitlines() if line.startswith("| ")}
    assert {"clean training", "PGD-AT, RGA inner gradient", "PGD-AT, STBP inner gradient"} <= set(rows)
