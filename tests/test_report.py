"""The results table, CSV, JSON and plots: honest about units, noise and sources, for any list of gradients."""
import csv
import json
import math

import pytest

from sj_rga.experiment import ResultRow
from sj_rga.files import atomic_path, to_json
from sj_rga.report import (
    csv_header,
    format_table,
    gradients_of,
    standard_error,
    stronger,
    sweep,
    sweep_figure,
    write_results,
)

SOURCE = "a separately trained net (seed 1)"


def _row(white, black=None, n=400, eps=0.1, lam=1.0, attack="fgsm", steps=None, alpha=None, te=1, source=SOURCE,
         clean=0.9):
    return ResultRow("net", "digits", "direct", 8, lam, te, attack, eps, clean, white_box=dict(white),
                     black_box=dict(black if black is not None else {g: None for g in white}),
                     steps=steps, alpha=alpha, source=source if black is not None else None,
                     samples=round(n / clean), clean_correct=n)


def test_standard_error_is_the_binomial_one():
    assert standard_error(0.5, 100) == pytest.approx(0.05)
    assert standard_error(0.1, 900) == pytest.approx(0.01)
    assert math.isnan(standard_error(0.5, 0)) and math.isnan(standard_error(None, 10))


@pytest.mark.parametrize("values,n,expected", [
    ({"stbp": 0.50, "rga": 0.55}, 100, None),     # 5 points apart, SE of the difference 7.0 points
    ({"stbp": 0.50, "rga": 0.55}, 10_000, "rga"),  # SE of the difference 0.7 points
    ({"stbp": 0.60, "rga": 0.40}, 10_000, "stbp"),
    ({"stbp": 0.50, "rga": 0.50}, 10_000, None),
    ({"stbp": 0.50, "rga": None}, 10_000, None),
    ({"stbp": float("nan"), "rga": 0.5}, 10_000, None),
    ({"a": 0.2, "b": 0.9, "c": 0.897}, 10_000, None),  # the leader must beat the runner-up, not the last
    ({"a": 0.2, "b": 0.9, "c": 0.80}, 10_000, "b"),
])
def test_the_stronger_gradient_is_marked_only_beyond_the_noise(values, n, expected):
    assert stronger(values, n) == expected


def test_table_marks_only_beyond_the_noise_and_never_prints_nan():
    noisy = _row({"stbp": 0.50, "rga": 0.55}, {"stbp": float("nan"), "rga": 0.2}, n=100)
    clear = _row({"stbp": 0.50, "rga": 0.60}, {"stbp": 0.3, "rga": 0.2}, n=10_000)
    lines = format_table([noisy, clear]).splitlines()
    assert "*" not in lines[2] and "nan" not in lines[2].lower()
    assert "60.00*" in lines[3] and "50.00 " in lines[3] and "30.00*" in lines[3]
    assert " 100 " in lines[2] and " 5.00 " in lines[2]  # n and the largest SE (of 0.5 on 100 samples) in points


def test_footnote_names_units_time_extension_steps_alpha_and_the_source():
    rows = [_row({"stbp": 0.5, "rga": 0.6}, {"stbp": 0.3, "rga": 0.4}),
            _row({"stbp": 0.7, "rga": 0.8}, {"stbp": 0.3, "rga": 0.4}, attack="pgd", steps=7, alpha=0.025),
            _row({"stbp": 0.5, "rga": 0.6}, {"stbp": 0.3, "rga": 0.4}, te=2)]
    text = format_table(rows)
    body, notes = text.split("\nASR and accuracy in %.")
    assert "PGD-7" in body and "0.025" in body and "2x" in body
    flat = " ".join(notes.split())
    assert "ASR in %: ASR" not in text and "ASR (Bu et al. 2023)" in flat
    assert "input units (pixel space, images in [0, 1])" in flat
    assert "crafted with k·T time steps" in flat and "PGD-k: k steps of size α" in flat
    assert f"crafted on {SOURCE}" in flat
    assert "standard error" in flat
    assert "not run" in format_table([_row({"stbp": 0.5, "rga": 0.6})])
    assert "Poisson" not in flat
    poisson = _row({"stbp": 0.5, "rga": 0.6})
    poisson.input = "poisson"
    assert "Poisson input the clean predictions are random" in " ".join(format_table([poisson]).split())


def test_every_gradient_in_the_rows_is_reported():
    names = ["stbp", "rga", "bptr", "hart", "pdsg", "assg"]
    rows = [_row({g: 0.1 * (i + 1) for i, g in enumerate(names)}, {g: 0.05 * (i + 1) for i, g in enumerate(names)},
                 eps=eps) for eps in (0.05, 0.1)]
    assert gradients_of(rows) == names
    text = format_table(rows)
    for g in names:
        assert f"WB ASR {g.upper()}" in text and f"BB ASR {g.upper()}" in text
    assert "white-box ASR (%)" in text and "black-box ASR (%)" in text  # too many for one table
    assert {f"wb_asr_{g}_pct" for g in names} | {f"bb_asr_{g}_pct" for g in names} <= set(csv_header(names))
    assert len(sweep(rows, "eps", "ε")["series"]) == 2 * len(names)


def test_results_files_are_numeric_strict_json_with_versions(tmp_path):
    rows = [_row({"stbp": 0.5, "rga": 0.6}, {"stbp": float("nan"), "rga": 0.4}, n=10_000, eps=eps, attack="pgd",
                 steps=5, alpha=eps / 2) for eps in (0.05, 0.1)]
    rows[0].clean_accuracy = float("nan")
    written = write_results(tmp_path / "out", rows, {"asr_vs_eps": sweep(rows, "eps", "ε")},
                            {"seeds": {"targets": 0}})
    assert sorted(p.name for p in written) == ["asr_vs_eps.png", "results.csv", "results.json"]

    def no_nan(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    document = json.loads((tmp_path / "out" / "results.json").read_text(), parse_constant=no_nan)
    assert document["rows"][0]["clean_accuracy"] is None and document["rows"][0]["black_box"]["stbp"] is None
    assert set(document["environment"]["versions"]) == {"python", "torch", "spikingjelly", "sj_rga"}
    assert document["environment"]["device"] == "cpu" and "cuda" in document["environment"]
    assert {"platform", "cpu", "cpu_cores"} <= set(document["environment"]["machine"])
    assert document["seeds"] == {"targets": 0}
    with open(tmp_path / "out" / "results.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    text_columns = {"architecture", "dataset", "input", "attack", "wb_stronger", "bb_stronger", "source"}
    for line in table:
        for column, cell in line.items():
            if column not in text_columns and cell != "":
                float(cell)  # every figure column is a plain number
    assert table[0]["clean_accuracy_pct"] == "" and table[1]["wb_asr_rga_pct"] == "60.0"
    assert table[1]["wb_stronger"] == "rga" and table[1]["bb_stronger"] == "" and table[1]["steps"] == "5"


def test_to_json_writes_nan_and_infinity_as_null():
    assert json.loads(to_json({"a": [float("nan"), 1.0, float("inf")], "b": (float("-inf"),)})) == \
        {"a": [None, 1.0, None], "b": [None]}


def test_lambda_plot_starts_at_zero_keeps_models_apart_and_titles_carry_T_and_steps():
    rows = [_row({"stbp": 0.5, "rga": 0.6}, lam=lam, attack="pgd", steps=10, alpha=0.025) for lam in (1.0, 0.9, 0.5)]
    spec = sweep(rows, "lam", "λ", boxes=("white_box",), join=False)
    assert "T=8" in spec["title"] and "10 steps" in spec["title"] and "white-box" in spec["title"]
    axes = sweep_figure(spec).axes[0]
    assert axes.get_ylim()[0] == 0
    assert all(line.get_linestyle() == "None" for line in axes.get_lines() if len(line.get_xdata()) == 3)
    joined = sweep([_row({"stbp": 0.5, "rga": 0.6}, eps=e) for e in (0.05, 0.1)], "eps", "ε")
    assert "T=8" in joined["title"] and "1 step" in joined["title"]
    axes = sweep_figure(joined).axes[0]
    assert axes.get_ylim()[0] == 0 and any(line.get_linestyle() == "-" for line in axes.get_lines())


def test_library_code_leaves_the_matplotlib_backend_alone(tmp_path, monkeypatch):
    import matplotlib

    def forbidden(*args, **kwargs):
        raise AssertionError("sj_rga called matplotlib.use")

    monkeypatch.setattr(matplotlib, "use", forbidden)
    rows = [_row({"stbp": 0.5, "rga": 0.6}, eps=e) for e in (0.05, 0.1)]
    write_results(tmp_path, rows, {"asr_vs_eps": sweep(rows, "eps", "ε")})
    assert (tmp_path / "asr_vs_eps.png").read_bytes()[:4] == b"\x89PNG"


def test_atomic_path_replaces_on_success_and_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "sub" / "model.pt"
    with atomic_path(target) as partial:
        partial.write_text("new")
        assert not target.exists()
    assert target.read_text() == "new"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as partial:
            partial.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "new" and [p.name for p in target.parent.iterdir()] == ["model.pt"]
