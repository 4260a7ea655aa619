"""Robust accuracy over ε from one run (sj_rga.curve): the bisection against samples whose smallest breaking ε is
known in closed form, against fixed-ε runs of the suite on digits, and `sj-rga evaluate --eps-curve`."""
import json
import math
import textwrap

import pytest
import torch
from spikingjelly.activation_based import neuron

from sj_rga import SNNClassifier
from sj_rga.attacks import AutoAttack, SuiteAttack
from sj_rga.cli import main
from sj_rga.curve import robustness_curve

CHEAP = [SuiteAttack("apgd-ce", "stbp", 10)]


class PixelVote(torch.nn.Module):
    """Logits = 10 × the first 3 pixels. Sample b has its true pixel at 0.6 and the others at 0.5 + d_b, so
    under L∞ it breaks exactly when 2ε > 0.1 − d_b (true pixel down by ε, another up by ε)."""

    def __init__(self):
        super().__init__()
        self.node = neuron.IFNode()

    def forward(self, x_seq):
        return 10 * x_seq[..., :3]


def test_bisection_finds_the_closed_form_breaking_eps():
    d = torch.tensor([0.0, 0.02, 0.05, 0.08, 0.095])
    x = torch.full((5, 4), 0.5) + d[:, None]
    x[:, 0] = 0.6
    x[:, 3] = 0.3
    y = torch.zeros(5, dtype=torch.long)
    truth = (0.1 - d) / 2
    curve = robustness_curve(SNNClassifier(PixelVote(), 1), x, y, eps_max=0.08, version="custom", attacks=CHEAP,
                             bisections=6)
    resolution = 0.08 / 2 ** 6
    assert torch.all(curve.eps >= truth - 1e-6) and torch.all(curve.eps <= truth + resolution + 1e-6), curve.eps
    for e in (0.01, 0.03, 0.045):
        assert curve.robust_accuracy(e) == pytest.approx(float((truth > e + resolution).float().mean()), abs=0.21)
    beyond = robustness_curve(SNNClassifier(PixelVote(), 1), x, y, eps_max=0.02, version="custom", attacks=CHEAP,
                              bisections=2)
    assert math.isinf(beyond.eps[0]) and beyond.robust_accuracy(0.02) == pytest.approx(0.6)
    plain = beyond.as_dict()
    assert plain["per_sample_eps"][0] is None and json.dumps(plain)


def test_curve_agrees_with_fixed_eps_runs_on_digits(digits_models, tmp_path):
    model, _, x, y = digits_models
    clf = SNNClassifier(model, 8)
    x, y = x[:16], y[:16]
    curve = robustness_curve(clf, x, y, eps_max=0.2, version="custom", attacks=CHEAP, bisections=3)
    for eps in (0.05, 0.1, 0.15):
        fixed = AutoAttack(clf, eps, version="custom", attacks=CHEAP)
        fixed(x, y)
        accuracy = float(fixed.last_result.robust_ok.float().mean())
        noise = 2 * math.sqrt(max(accuracy * (1 - accuracy), 1 / 16) / 16)
        assert abs(curve.robust_accuracy(eps) - accuracy) <= noise, (eps, curve.robust_accuracy(eps), accuracy)
    known = robustness_curve(clf, x, y, eps_max=0.2, version="custom", attacks=CHEAP, bisections=2,
                             known=(0.1, fixed.last_result.robust_ok))
    assert known.robust_accuracy(0.1) == pytest.approx(float(fixed.last_result.robust_ok.float().mean()))
    assert curve.plot(tmp_path / "c.png", (0.1, 0.2)).stat().st_size > 1000


@pytest.mark.parametrize("kwargs,message", [
    ({"eps_max": 0.0}, "eps_max"), ({"bisections": 0}, "bisections"),
    ({"known": (0.3, torch.ones(2, dtype=torch.bool))}, "known run"),
])
def test_bad_arguments(kwargs, message):
    x, y = torch.full((2, 4), 0.5), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match=message):
        robustness_curve(SNNClassifier(PixelVote(), 1), x, y, **{"eps_max": 0.2, "version": "custom",
                                                                 "attacks": CHEAP, **kwargs})


USER_MODULE = textwrap.dedent('''
    import torch
    import torch.nn as nn
    from spikingjelly.activation_based import layer, neuron


    def build(num_classes=10):
        torch.manual_seed(0)
        return nn.Sequential(layer.Flatten(), layer.Linear(64, 32), neuron.IFNode(), layer.Linear(32, num_classes))
''')


def test_cli_eps_curve_writes_per_sample_values_and_plot(tmp_path, monkeypatch, capsys):
    name = f"curve_snn_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "ev"
    assert main(["evaluate", "--model", f"{name}:build", "-T", "2", "--data", "digits", "--limit", "8", "--eps",
                 "0.05", "--suite", "fast", "--eps-curve", "--bisections", "2", "--out", str(out),
                 "--no-progress"]) == 0
    assert "Robust accuracy over ε" in capsys.readouterr().out
    result = json.loads((out / "results.json").read_text())
    curve = result["eps_curve"]
    assert curve["eps_max"] == 0.1 and curve["bisections"] == 2 and len(curve["per_sample_eps"]) == 8
    at_eps = [p for p in curve["points"] if p["eps"] == pytest.approx(0.05)][0]
    assert at_eps["robust_accuracy"] == pytest.approx(result["robust_accuracy"])
    lines = (out / "eps_curve.csv").read_text().splitlines()
    assert lines[0] == "index,label,smallest_eps" and len(lines) == 9
    assert (out / "eps_curve.png").stat().st_size > 1000
    assert main(["evaluate", "--model", f"{name}:build", "-T", "2", "--data", "digits", "--eps", "0.05",
                 "--eps-curve", "0.04", "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
