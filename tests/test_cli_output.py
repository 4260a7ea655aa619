"""Output a person reads: plots whose series can be told apart, tables and footnotes within 100 columns,
progress as whole lines when stderr is not a terminal, and a warning for a model at chance."""
import io
import json
import textwrap

import pytest

from sj_rga.cli import main
from sj_rga.experiment import GRADIENTS, ResultRow
from sj_rga.progress import LineProgress, progress_bar
from sj_rga.report import TEXT_WIDTH, chance_warning, format_evaluation, format_table, sweep, sweep_figure


def _rows(eps_values=(0.02, 0.05, 0.1), **changes):
    return [ResultRow(**{"architecture": "digits_snn", "dataset": "digits", "input": "direct", "T": 8, "lam": 1.0,
                         "time_extension": 1, "attack": "fgsm", "eps": eps, "clean_accuracy": 0.97,
                         "white_box": {g: 0.1 * i + eps for i, g in enumerate(GRADIENTS)},
                         "black_box": {g: 0.05 * i + eps for i, g in enumerate(GRADIENTS)},
                         "samples": 360, "clean_correct": 349, "source": "a separately trained model", **changes})
            for eps in eps_values]


def test_twelve_series_differ_in_colour_marker_or_line_style():
    spec = sweep(_rows(), "eps", "ε")
    assert len(spec["series"]) == 12
    lines = [container.lines[0] for container in sweep_figure(spec).axes[0].containers]  # each series' data line
    styles = {(line.get_color(), line.get_marker(), line.get_linestyle(), line.get_markerfacecolor())
              for line in lines}
    assert len(lines) == 12 and len(styles) == 12
    assert len({(color, marker, style) for color, marker, style, _ in styles}) == 12
    assert "n=349" in spec["title"] and "T=8" in spec["title"] and "λ=1" in spec["title"]


def test_the_demo_table_and_the_evaluation_footnote_fit_100_columns():
    rows = _rows() + _rows((0.1,), input="poisson", T=8, time_extension=2) + _rows((0.1,), lam=0.9)
    text = format_table(rows)
    assert max(len(line) for line in text.splitlines()) <= TEXT_WIDTH, text
    assert "white-box ASR (%), by row number" in text and "Every row: Architecture digits_snn" in text
    row = {"attack": "apgd-ce[assg]", "attacked": 90, "broken": 40, "clean_accuracy": 0.9, "robust_accuracy": 0.5,
           "attack_success_rate": 0.44, "seconds": 3.0}
    evaluation = format_evaluation({"rows": [row], "worst_case": {**row, "attack": "worst case", "attacked": None}})
    assert max(len(line) for line in evaluation.splitlines()) <= TEXT_WIDTH and "worst case" in evaluation


def test_progress_is_whole_lines_with_counts_and_time_when_stderr_is_a_file():
    stream = io.StringIO()
    bar = LineProgress(total=4, desc="train", unit="step", interval=0.0, file=stream)
    with bar:
        for _ in range(4):
            bar.update()
            bar.set_postfix(epoch=1, loss=0.5)
    text = stream.getvalue()
    assert "\r" not in text and text.count("\n") == 5
    assert text.splitlines()[0] == "train: 1/4 steps (25 %), 0 s"
    assert text.splitlines()[1] == "train: 2/4 steps (50 %), 0 s; epoch=1, loss=0.5"
    assert text.splitlines()[-1].startswith("train: 4/4 steps, done in 0 s")
    quiet = io.StringIO()
    list(LineProgress(range(3), desc="attack", file=quiet, leave=False))  # fast and not kept: no line at all
    assert quiet.getvalue() == ""


def test_progress_bar_is_lines_off_a_terminal(capsys):
    assert isinstance(progress_bar(range(2), desc="x"), LineProgress)  # pytest's captured stderr is no terminal


def test_training_progress_in_a_log_has_no_carriage_returns(tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--max-batches", "3", "--out", str(tmp_path / "m.pt")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "train: 3/3 steps, done in" in err


def test_chance_level():
    assert "at chance for 10 classes (10 %)" in chance_warning(0.1, 10, 360)
    assert chance_warning(0.14, 10, 360) is None  # 2 standard errors above 10 % on 360 samples: 13.2 %
    assert chance_warning(0.2, 10, 16) is not None and chance_warning(0.97, 10, 16) is None


ZERO_MODEL = '''
import torch.nn as nn
from spikingjelly.activation_based import functional, layer, neuron


def build():
    net = nn.Sequential(layer.Flatten(), layer.Linear(64, 10), neuron.IFNode())
    nn.init.zeros_(net[1].weight)
    nn.init.zeros_(net[1].bias)
    functional.set_step_mode(net, "m")
    return net
'''


def test_a_model_at_chance_is_warned_about(tmp_path, monkeypatch, capsys):
    name = f"zero_model_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(ZERO_MODEL))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["attack", "--model", f"{name}:build", "-T", "2", "--gradient", "stbp", "--limit", "64",
                 "--no-progress", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "sj-rga attack: warning: the model's clean accuracy" in err and "at chance for 10 classes" in err
    assert "at chance" in json.loads((tmp_path / "out" / "results.json").read_text())["warnings"][0]


@pytest.mark.parametrize("width", [TEXT_WIDTH])
def test_footnotes_are_wrapped(width):
    text = format_table(_rows((0.1,)))
    assert all(len(line) <= width for line in text.splitlines())
