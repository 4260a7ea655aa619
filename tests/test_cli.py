"""The `sj-rga` command line, run in subprocesses as a user runs it."""
import json
import os
import subprocess
import sys

import pytest
import torch

import sj_rga
from sj_rga.cli import parse_eps


def run(*args, cwd=None, env_extra=None):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env_extra or {})}
    env.pop("SJ_RGA_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "sj_rga.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "digits.pt"
    done = run("train", "--data", "digits", "--epochs", "1", "--max-batches", "8", "--out", str(path), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert path.is_file() and "checkpoint written" in done.stdout
    return path


def test_demo_quick_writes_table_json_csv_and_plots(tmp_path):
    out = tmp_path / "demo"
    done = run("demo", "--quick", "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WB ASR STBP" in done.stdout and "Spike shuffle test" in done.stdout and str(out) in done.stdout
    assert {p.name for p in out.iterdir()} == {"results.json", "results.csv", "asr_vs_eps.png", "asr_vs_lambda.png"}
    result = json.loads((out / "results.json").read_text())
    assert "asr_definition" in result and 0 <= result["shuffle_test"]["shuffled_accuracy"] <= 1
    kinds = {(r["input"], r["attack"], r["time_extension"], r["lam"]) for r in result["rows"]}
    assert {("direct", "fgsm", 1, 1.0), ("direct", "fgsm", 2, 1.0), ("direct", "pgd", 1, 1.0),
            ("direct", "fgsm", 1, 0.9), ("poisson", "fgsm", 1, 1.0), ("poisson", "pgd", 1, 1.0)} <= kinds
    for row in result["rows"]:
        assert 0.5 < row["clean_accuracy"] <= 1
        for box in ("white_box", "black_box"):
            assert set(row[box]) == {"stbp", "rga"} and all(0 <= v <= 1 for v in row[box].values())
    assert len(result["sweeps"]["asr_vs_eps"]["x"]) >= 2
    assert (out / "asr_vs_eps.png").read_bytes()[:4] == b"\x89PNG"
    assert len((out / "results.csv").read_text().splitlines()) == len(result["rows"]) + 1
    assert len(list((tmp_path / "cache").glob("digits_snn-*.pt"))) == 6  # 3 targets + 3 black-box sources, cached


def test_attack_and_shuffle_on_a_checkpoint(tmp_path, checkpoint):
    out = tmp_path / "attack"
    done = run("attack", "--checkpoint", str(checkpoint), "--attack", "pgd", "--eps", "8/255,0.1", "--steps", "2",
               "--limit", "32", "--source", str(checkpoint), "--time-extension", "2", "--out", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "results.json").read_text())
    assert [r["eps"] for r in result["rows"]] == pytest.approx([8 / 255, 0.1])
    assert result["rows"][0]["time_extension"] == 2 and (out / "asr_vs_eps.png").is_file()
    shuffled = run("shuffle", "--checkpoint", str(checkpoint), "--limit", "64", "--no-progress")
    assert shuffled.returncode == 0, shuffled.stderr
    assert set(json.loads(shuffled.stdout)) == {"clean_accuracy", "shuffled_accuracy", "samples"}


def test_help_shows_worked_examples():
    for args in ((), ("demo",), ("attack",), ("shuffle",), ("train",)):
        done = run(*args, "--help")
        assert done.returncode == 0 and "example:" in done.stdout and "sj-rga" in done.stdout


def _one_clean_error_line(done):
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("sj-rga: error:"), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_errors_are_one_line_exit_2_and_leave_no_output(tmp_path, checkpoint):
    out = tmp_path / "out"
    bad_fit = tmp_path / "bad.pt"
    saved = torch.load(checkpoint, weights_only=True)
    saved["state_dict"] = {k: v[..., :1] if v.dim() else v for k, v in saved["state_dict"].items()}
    torch.save(saved, bad_fit)
    cases = {
        "data root": ("train", "--data", "cifar10", "--out", str(tmp_path / "c.pt")),
        "missing root folder": ("train", "--data", "cifar10", "--data-root", str(tmp_path / "nowhere"),
                                "--out", str(tmp_path / "c.pt")),
        "unknown model": ("train", "--model", "vgg99", "--out", str(tmp_path / "m.pt")),
        "malformed eps": ("attack", "--checkpoint", str(checkpoint), "--eps", "8/", "--out", str(out)),
        "negative eps": ("attack", "--checkpoint", str(checkpoint), "--eps", "-0.1", "--out", str(out)),
        "checkpoint does not fit": ("attack", "--checkpoint", str(bad_fit), "--out", str(out)),
        "no checkpoint file": ("attack", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(out)),
        "device": ("attack", "--checkpoint", str(checkpoint), "--device", "cuda:7", "--out", str(out)),
    }
    for name, args in cases.items():
        line = _one_clean_error_line(run(*args))
        assert len(line) > 30, name
        assert not out.exists() or not any(out.iterdir()), f"{name}: output left behind"


@pytest.mark.parametrize("text,value", [("8/255", 8 / 255), ("0.03", 0.03), (" 2/255 ", 2 / 255), ("0", 0.0)])
def test_parse_eps(text, value):
    assert parse_eps(text) == pytest.approx(value)


def test_package_exposes_cli_entry_point():
    from importlib.metadata import entry_points
    assert any(ep.value == "sj_rga.cli:main" for ep in entry_points(group="console_scripts", name="sj-rga"))
    assert sj_rga.cli is not None


def test_table_marks_the_stronger_gradient_and_never_nan():
    from sj_rga.experiment import ResultRow
    from sj_rga.report import format_table
    row = ResultRow("net", "digits", "direct", 8, 1.0, 1, "fgsm", 0.1, 0.9,
                    white_box={"stbp": 0.5, "rga": 0.6}, black_box={"stbp": float("nan"), "rga": 0.2})
    line = format_table([row]).splitlines()[2]
    assert "60.00*" in line and "50.00 " in line and "*" not in line.split("60.00*")[1]
