"""The estimators' benchmark scripts still run (tiny settings; their figures live in benchmarks/RESULTS.md)."""
import json

from benchmark_scripts import run_script

from sj_rga.experiment import GRADIENTS


def test_time_per_gradient_table():
    out = run_script("bench_gradients.py", "--T", "1", "--batch", "1", "--rounds", "1", "--image-size", "8")
    rows = {line.split("|")[1].strip(): [float(c) for c in line.split("|")[2:9]] for line in out.splitlines()
            if line.startswith("| ") and line.split("|")[2].strip()[:1].isdigit()}
    assert list(rows) == ["stbp", "rga fast", "bptr fast", "hart fast", "rga layer", "bptr layer", "hart layer",
                          "pdsg", "assg"]
    assert rows["stbp"][2] == rows["stbp"][5] == 1.0 and rows["rga fast"][3] == rows["rga fast"][6] == 1.0
    assert all(r[0] > 0 and r[4] > 0 for r in rows.values())
    assert sum("target" in line for line in out.splitlines()) == 8


def test_asr_smoke_run_records_every_estimator_and_the_tuned_values(tmp_path):
    path = tmp_path / "asr.json"
    out = run_script("bench_gradient_asr.py", "--quick", "--lam", "1.0", "--json", str(path))
    assert "| black-box FGSM ε=0.15 |" in out
    (result,) = json.loads(path.read_text())["results"]
    assert len(result["rows"]) == 5
    for row in result["rows"]:
        assert list(row["asr"]) == list(GRADIENTS) and all(0 <= v["asr"] <= 1 for v in row["asr"].values())
        assert row["tuned"]["hart"]["split"] == "train-holdout" and row["tuned"]["hart"]["value"] in (0.3, 1.0, 2.0)
        assert row["tuned"]["assg"]["value"] in (0.38, 0.45)
