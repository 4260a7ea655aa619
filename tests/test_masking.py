"""Gradient-masking checks (sj_rga.masking): each check warns on a model built to fail it and passes on the
package's digits model; the checks reach `sj_rga.evaluate`'s report and `sj-rga evaluate`'s results.json and
printed report (a warning in its first lines)."""
import json
import textwrap

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import neuron

from sj_rga import SNNClassifier, evaluate
from sj_rga.attacks import AutoAttack
from sj_rga.cli import main
from sj_rga.masking import format_checks, masking_checks

NAMES = ["zero_gradient", "unbounded", "gradient_free", "iterative_vs_one_step", "white_box_vs_transfer",
         "monotone_eps"]


class Quantise(nn.Module):
    """Rounds the input to 8 levels: every estimator's input gradient is exactly zero."""

    def forward(self, x):
        return torch.round(x * 8) / 8


class Band(nn.Module):
    """Class 1 only while the largest deviation from 0.5 lies in (0.04, 0.3), class 0 otherwise: far
    perturbations are classified correctly again (robust accuracy rises with ε)."""

    def __init__(self):
        super().__init__()
        self.node = neuron.IFNode()

    def forward(self, x_seq):
        deviation = (x_seq - 0.5).abs().flatten(2).amax(2)
        band = ((deviation > 0.04) & (deviation < 0.3)).float()
        return torch.stack([1 - band, band, torch.zeros_like(band)], -1)


def _verdicts(checks):
    assert [c["name"] for c in checks] == NAMES
    assert all(set(c) == {"name", "value", "verdict", "message"} and c["verdict"] in ("pass", "warn") for c in checks)
    json.dumps(checks)  # plain values
    return {c["name"]: c["verdict"] for c in checks}


def test_the_digits_model_passes_and_a_rounding_layer_warns(digits_models):
    model, source, x, y = digits_models
    x, y = x[:12], y[:12]
    healthy = SNNClassifier(model, 8)
    robust = torch.zeros(12, dtype=torch.bool)  # an evaluation that broke everything
    verdicts = _verdicts(masking_checks(healthy, x, y, 0.1, "Linf", robust, ["assg", "stbp"], steps=5, queries=40))
    assert set(verdicts.values()) == {"pass"}

    masked = SNNClassifier(nn.Sequential(Quantise(), model), 8)
    claimed = torch.ones(12, dtype=torch.bool)  # a blind evaluation: everything robust
    checks = masking_checks(masked, x, y, 0.1, "Linf", claimed, ["assg", "stbp"], steps=5, queries=60,
                            source=SNNClassifier(model, 8))
    verdicts = _verdicts(checks)
    assert checks[0]["value"] == {"assg": 12, "stbp": 12}
    assert verdicts["zero_gradient"] == verdicts["gradient_free"] == verdicts["white_box_vs_transfer"] == "warn"
    assert verdicts["unbounded"] == "pass"
    assert format_checks(checks).startswith("WARNING: 3 gradient-masking check(s) warn")


def test_one_step_stronger_than_the_evaluation_warns(digits_models):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8)
    claimed = torch.ones(12, dtype=torch.bool)
    checks = masking_checks(clf, x[:12], y[:12], 0.1, "Linf", claimed, gradient_free=0, gradient_survivors=12,
                            steps=3)
    assert _verdicts(checks)["iterative_vs_one_step"] == "warn" and checks[3]["value"] > 0


def test_unbreakable_and_rising_robust_accuracy_warn():
    clf = SNNClassifier(Band(), 1)
    x, y = torch.full((4, 1, 4, 4), 0.5), torch.zeros(4, dtype=torch.long)
    checks = masking_checks(clf, x, y, 0.1, "Linf", torch.zeros(4, dtype=torch.bool), steps=3, queries=20)
    verdicts = _verdicts(checks)
    assert verdicts["unbounded"] == "warn" and checks[1]["value"] == 4
    assert verdicts["monotone_eps"] == "warn"
    values = [point["robust_accuracy"] for point in checks[5]["value"]]
    assert values[0] == 0.0 and values[-1] == 1.0


def test_evaluate_report_carries_the_checks(digits_models):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8)
    report = evaluate(clf, AutoAttack(clf, 0.1, version="fast"), (x[:12], y[:12]), progress=False)
    verdicts = _verdicts(report.checks)
    assert verdicts["zero_gradient"] == verdicts["unbounded"] == verdicts["monotone_eps"] == "pass"
    assert report.as_dict()["checks"] == report.checks
    assert evaluate(clf, None, (x[:16], y[:16]), progress=False).checks is None


MASKED_MODULE = textwrap.dedent('''
    import torch
    import torch.nn as nn
    from spikingjelly.activation_based import layer, neuron


    class Round(nn.Module):
        def forward(self, x):
            return torch.round(x * 4) / 4


    def build(num_classes=10):
        torch.manual_seed(0)
        return nn.Sequential(Round(), layer.Flatten(), layer.Linear(64, 32), neuron.IFNode(),
                             layer.Linear(32, num_classes))
''')


def test_cli_warns_in_the_first_lines_and_writes_the_checks(tmp_path, monkeypatch, capsys):
    name = f"masked_snn_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(MASKED_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["evaluate", "--model", f"{name}:build", "-T", "2", "--data", "digits", "--limit", "8", "--eps",
                 "0.1", "--suite", "fast", "--out", str(tmp_path / "ev"), "--no-progress"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].startswith("WARNING:") and "zero_gradient" in printed[1] and "--suite full" in printed[1]
    result = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert _verdicts(result["checks"])["zero_gradient"] == "warn"


@pytest.mark.parametrize("suite", ["full"])
def test_cli_accepts_the_full_suite(suite):
    from sj_rga.cli import build_parser

    assert build_parser().parse_args(["evaluate", "--checkpoint", "c.pt", "--data", "digits", "--eps", "0.1",
                                      "--out", "o", "--suite", suite]).suite == suite


def test_evaluate_a_transfer_attack_with_checks_compares_white_box_and_transfer(digits_models):
    from sj_rga.attacks import PGD

    model, other, x, y = digits_models
    target, source = SNNClassifier(model, 8), SNNClassifier(other, 8)
    report = evaluate(target, PGD(source, 0.1, 0.03, 3, seed=0), (x[:8], y[:8]), progress=False, checks=True)
    transfer = {c["name"]: c for c in report.checks}["white_box_vs_transfer"]
    assert transfer["value"] is not None and "transfer attack from the source model" in transfer["message"]
    assert evaluate(target, PGD(source, 0.1, 0.03, 3, seed=0), (x[:8], y[:8]), progress=False).checks is None
