"""One report format for `attack`, `evaluate`, `shuffle` and `demo`: the same JSON header, the same CSV conventions
(setting columns, percentages in `_pct` columns), robust accuracy named by what it is the worst case of."""
import csv
import json

import pytest

from sj_rga.cli import main
from sj_rga.report import run_header

HEADER = {"command", "environment", "seeds", "batch_size", "estimators"}
ENVIRONMENT = {"versions", "device", "machine", "date", "threads", "processes"}


def check_header(document, command, gradients):
    assert HEADER <= set(document), set(document)
    assert document["command"].startswith(f"sj-rga {command} ")
    assert ENVIRONMENT <= set(document["environment"])
    assert document["environment"]["processes"] == 1 and document["environment"]["threads"]["threads"] >= 1
    assert set(document["environment"]["versions"]) == {"python", "torch", "spikingjelly", "sj_rga"}
    assert document["batch_size"] == 8
    assert list(document["estimators"]) == gradients


@pytest.fixture(scope="module")
def runs(tmp_path_factory, digits_checkpoint):
    """attack, evaluate and shuffle run once on the same 16 digits in batches of 8."""
    out = tmp_path_factory.mktemp("reports")
    common = ["--checkpoint", str(digits_checkpoint), "--limit", "16", "--batch-size", "8", "--no-progress"]
    assert main(["attack", *common, "--eps", "0.05,0.1", "--gradient", "stbp", "rga", "hart",
                 "--out", str(out / "attack")]) == 0
    assert main(["evaluate", *common, "--eps", "0.1", "--suite", "fast", "--out", str(out / "evaluate")]) == 0
    return out


def test_attack_and_evaluate_share_the_header(runs):
    attack = json.loads((runs / "attack" / "results.json").read_text())
    check_header(attack, "attack", ["stbp", "rga", "hart"])
    assert attack["estimators"]["rga"] == {"lam": None, "beta": 2.0, "gamma": 0.2}
    assert attack["estimators"]["hart"] == {"gamma": 1.0}
    assert attack["seeds"] == {"poisson_input_and_pgd_start": 0}
    evaluation = json.loads((runs / "evaluate" / "results.json").read_text())
    check_header(evaluation, "evaluate", ["assg", "hart"])
    assert set(evaluation["estimators"]["assg"]) >= {"A"} and evaluation["seeds"]["seed"] == 0


def test_shuffle_prints_the_same_header(digits_checkpoint, capsys):
    assert main(["shuffle", "--checkpoint", str(digits_checkpoint), "--limit", "16", "--batch-size", "8"]) == 0
    check_header(json.loads(capsys.readouterr().out), "shuffle", [])


def test_robust_accuracy_says_what_it_is_the_worst_case_of(runs):
    attack = json.loads((runs / "attack" / "results.json").read_text())
    for row in attack["rows"]:
        assert "robust_accuracy" not in row and set(row["white_box_robust_accuracy"]) == {"stbp", "rga", "hart"}
    evaluation = json.loads((runs / "evaluate" / "results.json").read_text())
    assert evaluation["robust_accuracy_is_worst_case_of"] == [c["name"] for c in evaluation["composition"]]


def test_both_csvs_have_the_setting_and_percent_columns(runs):
    def table(name):
        with open(runs / name / "results.csv", newline="") as handle:
            return list(csv.DictReader(handle))

    attack, evaluation = table("attack"), table("evaluate")
    for rows in (attack, evaluation):
        assert {"architecture", "dataset", "input", "T", "eps", "clean_accuracy_pct"} <= set(rows[0])
        assert not [c for c in rows[0] if c.endswith(("accuracy", "rate"))], "a fraction column without _pct"
    assert [r["eps"] for r in attack] == ["0.05", "0.1"]
    assert {r["eps"] for r in evaluation} == {"0.1"} and {r["suite"] for r in evaluation} == {"fast"}
    assert {r["architecture"] for r in evaluation} == {"digits_snn"} and evaluation[-1]["attack"] == "worst case"
    worst = json.loads((runs / "evaluate" / "results.json").read_text())["worst_case"]
    assert float(evaluation[-1]["robust_accuracy_pct"]) == pytest.approx(100 * worst["robust_accuracy"])


def test_the_header_of_the_library():
    header = run_header("sj-rga demo", "cpu", seeds={"targets": 0}, batch_size=256, gradients=["assg"])
    assert HEADER <= set(header) and header["estimators"]["assg"]["A"] == 0.425
    assert header["environment"]["threads"]["threads"] >= 1
