"""`sj-rga evaluate` and the user's own model (`--model pkg.module:factory`) from the shell."""
import csv
import json
import math
import os
import sys
import textwrap

import pytest
import torch

from sj_rga.attacks import SUITES
from sj_rga.cli import main

USER_MODULE = textwrap.dedent('''
    import torch.nn as nn
    from spikingjelly.activation_based import layer, neuron


    def build(num_classes=10, width=8):
        return nn.Sequential(layer.Flatten(), layer.Linear(64, width), neuron.IFNode(),
                             layer.Linear(width, num_classes))


    def not_a_model(num_classes=10):
        return {"num_classes": num_classes}


    def broken(num_classes=10):
        raise RuntimeError("no GPU here")
''')


def _strict_json(path):
    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}")
    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture()
def user_module(tmp_path, monkeypatch):
    """A module of the user's in the current folder (removed from sys.modules afterwards)."""
    name = f"user_snn_{os.getpid()}_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.manual_seed(0)
    model = __import__(name).build()
    torch.save(model.state_dict(), tmp_path / "w.pth")
    torch.save(__import__(name).build(width=5).state_dict(), tmp_path / "narrow.pth")
    (tmp_path / "junk.pth").write_text("not a torch file")
    yield name
    sys.modules.pop(name, None)


def test_evaluate_a_checkpoint_prints_rows_and_writes_json_and_csv(tmp_path, digits_checkpoint, capsys):
    out = tmp_path / "out"
    code = main(["evaluate", "--checkpoint", str(digits_checkpoint), "--data", "digits", "--eps", "0.1", "--suite",
                 "fast", "--limit", "48", "--batch-size", "16", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr()
    assert code == 0, printed.err[-3000:]
    assert all(entry.name in printed.out for entry in SUITES["fast"])
    assert "worst case" in printed.out and str(out) in printed.out
    result = _strict_json(out / "results.json")
    assert result["samples"] == 48 and result["suite"] == "fast" and result["eps"] == 0.1 and result["norm"] == "Linf"
    assert set(result["environment"]["versions"]) == {"python", "torch", "spikingjelly", "sj_rga"}
    assert [c["name"] for c in result["composition"]] == [r["attack"] for r in result["rows"]]
    assert result["seed"] == 0 and "data-set index" in result["seeds"]["random_start"] and result["batch_size"] == 16
    per = result["per_sample"]
    assert per["index"] == list(range(48)) and len(per["broken_by"]) == 48
    broken = sum(r["broken"] for r in result["rows"])
    broken_per_sample = sum(c and not r for c, r in zip(per["clean_ok"], per["robust_ok"]))
    assert broken == result["worst_case"]["broken"] == broken_per_sample
    assert result["rows"][-1]["robust_accuracy"] == result["robust_accuracy"]
    assert 0 < result["clean_accuracy"] <= 1 and 0 <= result["attack_success_rate"] <= 1
    lines = (out / "results.csv").read_text().splitlines()
    assert lines[0].startswith("architecture,dataset,input,T,eps,norm,suite,attack,attacked,broken")
    assert len(lines) == len(result["rows"]) + 2 and lines[1].startswith("digits_snn,digits,direct,8,0.1,Linf,fast,")
    assert not list(out.rglob("*.tmp"))


def test_nan_is_written_as_null(tmp_path):
    from sj_rga.robustness import report, write_report

    record = {"indices": [0, 1], "labels": [0, 1], "clean_ok": [False, False], "robust_ok": [False, False],
              "broken_by": [-1, -1], "attacked": [0], "attack_seconds": [0.0], "seconds": 0.1}
    result = report([record], [{"name": "apgd-ce[rga]"}])
    assert math.isnan(result["attack_success_rate"])
    json_path, csv_path = write_report(tmp_path, result)
    assert _strict_json(json_path)["attack_success_rate"] is None
    assert next(csv.DictReader(csv_path.read_text().splitlines()))["attack_success_rate_pct"] == ""


def test_user_model_from_the_shell_with_evaluate_and_attack(tmp_path, user_module, capsys):
    common = ["--model", f"{user_module}:build", "--model-args", '{"num_classes": 10, "width": 8}',
              "--weights", "w.pth", "-T", "4", "--data", "digits", "--limit", "16", "--no-progress"]
    assert main(["evaluate", *common, "--eps", "0.1", "--suite", "fast", "--mean", "0.3", "--std", "0.4",
                 "--bounds", "0", "1", "--out", str(tmp_path / "ev")]) == 0
    result = _strict_json(tmp_path / "ev" / "results.json")
    assert result["model"]["factory"] == f"{user_module}:build"
    assert result["model"]["args"] == {"num_classes": 10, "width": 8}
    assert result["input"] == {"T": 4, "encoding": "direct", "mean": [0.3], "std": [0.4], "bounds": [0.0, 1.0],
                               "input_layout": "TB", "output": None}
    assert len(result["model"]["weights_sha256"]) == 64
    assert main(["attack", *common, "--eps", "0.1", "--attack", "pgd", "--steps", "2", "--gradient", "rga",
                 "--out", str(tmp_path / "at")]) == 0
    assert (tmp_path / "at" / "results.json").is_file()
    capsys.readouterr()


BAD_USER_MODEL = {
    "import fails": (["--model", "no_such_module_xyz:build"], "cannot import no_such_module_xyz"),
    "no such factory": (["--model", "{m}:nothing"], "has no attribute 'nothing'"),
    "factory raises": (["--model", "{m}:broken"], "the factory raised RuntimeError: no GPU here"),
    "not a module": (["--model", "{m}:not_a_model"], "returned a dict, not a torch.nn.Module"),
    "weights do not fit": (["--model", "{m}:build", "--weights", "narrow.pth"], "do not fit the model"),
    "weights not a state_dict": (["--model", "{m}:build", "--weights", "junk.pth"], "not a readable state_dict"),
    "weights missing": (["--model", "{m}:build", "--weights", "none.pth"], "no such file"),
    "model args not JSON": (["--model", "{m}:build", "--model-args", "{num_classes: 10}"], "not JSON"),
    "model args not an object": (["--model", "{m}:build", "--model-args", "[10]"], "JSON object"),
    "unknown factory keyword": (["--model", "{m}:build", "--model-args", '{"depth": 3}'], "unexpected keyword"),
    "no -T": (["--model", "{m}:build", "--no-T"], "needs -T"),
    "malformed spec": (["--model", "{m}:"], "pkg.module:factory"),
    "weights without a factory": (["--weights", "w.pth", "--no-T"], "go with --model pkg.module:factory"),
    "bad bound": (["--model", "{m}:build", "--bounds", "0", "one"], "malformed bound"),
}


@pytest.mark.parametrize("command", ["evaluate", "attack"])
@pytest.mark.parametrize("case", sorted(BAD_USER_MODEL))
def test_user_model_mistakes_are_one_line_exit_2(tmp_path, user_module, capsys, command, case):
    extra, message = BAD_USER_MODEL[case]
    extra = [a.replace("{m}", user_module) for a in extra]
    with_t = [] if "--no-T" in extra else ["-T", "4"]
    extra = [a for a in extra if a != "--no-T"]
    args = [command, *extra, *with_t, "--data", "digits", "--eps", "0.1", "--limit", "8", "--no-progress",
            "--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sj-rga {command}: error:") and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_and_a_factory_together_are_refused(tmp_path, user_module, digits_checkpoint, capsys):
    assert main(["evaluate", "--checkpoint", str(digits_checkpoint), "--model", f"{user_module}:build", "-T", "4",
                 "--eps", "0.1", "--out", str(tmp_path / "o")]) == 2
    assert "either --checkpoint or --model" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["--eps", "-0.1"], "ε must be a finite number >= 0"),
    (["--eps", "0.1", "--suite", "plus"], "invalid choice: 'plus'"),
    (["--eps", "0.1", "--norm", "L1"], "invalid choice: 'L1'"),
    (["--eps", "0.1", "--suite", "rand"], "deterministic"),
    (["--eps", "0.1", "--batch-size", "0"], "argument --batch-size: must be >= 1"),
    (["--eps", "2"], "larger than the input range"),
    (["--eps", "0.1", "--encoding", "frames"], "does not fit --data digits"),
], ids=["negative eps", "unknown suite", "unknown norm", "rand on direct input", "batch size 0", "eps above 1",
        "frames for images"])
def test_bad_evaluate_arguments_are_one_line_exit_2(tmp_path, digits_checkpoint, capsys, args, message):
    out = str(tmp_path / "o")
    assert main(["evaluate", "--checkpoint", str(digits_checkpoint), *args, "--out", out, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sj-rga evaluate: error:") and message in err[0], err
    assert not (tmp_path / "o").exists()


def test_help_shows_a_worked_example(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", "--help"])
    printed = capsys.readouterr().out
    assert stop.value.code == 0 and "sj-rga evaluate --checkpoint" in printed and "--model-args" in printed
