"""examples/reproduce_paper.py: the poster's rows in its config, clear errors, and an end-to-end --check run."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from benchmark_scripts import run_in_process

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "reproduce_paper.py"
POSTER_TABLE = Path(__file__).resolve().parent / "data" / "poster_table.tsv"  # the poster's table, verbatim


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("reproduce_paper", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["reproduce_paper"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["reproduce_paper"]


def test_config_holds_the_posters_19_rows(script):
    rows = script.load_config(script.CONFIG)["rows"]
    assert len(rows) == 19
    assert rows[0]["poster"] == {"clean_accuracy": 93.06, "white_box": {"stbp": 86.2777, "rga": 93.7352},
                                 "black_box": {"stbp": 68.0314, "rga": 73.2646}}
    assert (rows[1]["time_extension"], rows[5]["input"], rows[12]["architecture"], rows[14]["dataset"]) == \
        (2, "poisson", "resnet17", "cifar100")
    assert rows[-1] | {"poster": None} == {"architecture": "vgg11", "dataset": "cifar10dvs", "input": "frames", "T": 10,
                                           "lam": 0.9, "time_extension": 1, "attack": "fgsm", "poster": None}


def test_config_numbers_match_the_poster_text(script):
    table = [line.split("\t") for line in POSTER_TABLE.read_text().splitlines() if not line.startswith("#")]
    assert all(len(cells) == 12 for cells in table)
    rows = script.load_config(script.CONFIG)["rows"]
    assert len(table) == len(rows)
    for cells, row in zip(table, rows):
        poster = row["poster"]
        numbers = [poster["clean_accuracy"], poster["white_box"]["stbp"], poster["white_box"]["rga"],
                   poster["black_box"]["stbp"], poster["black_box"]["rga"]]
        assert numbers == [float(c) for c in cells[7:]]
        assert (int(cells[3]), float(cells[4]), cells[6].lower()) == (row["T"], row["lam"], row["attack"])


def test_missing_roots_and_checkpoints_are_named(script, tmp_path, capsys):
    assert script.main(["--rows", "1,19"]) == 2
    message = capsys.readouterr().err
    assert "--data-root cifar10=PATH" in message and "--data-root cifar10dvs=PATH" in message
    assert "--checkpoint-dir DIR" in message and "vgg11-cifar10-direct-T8-lam1-source.pt" in message
    assert script.main(["--rows", "13", "--data-root", f"cifar10={tmp_path}", "--checkpoint-dir", str(tmp_path)]) == 2
    message = capsys.readouterr().err
    assert "--data-root cifar10=PATH" not in message
    assert str(tmp_path / "resnet17-cifar10-direct-T8-lam0.9.pt") in message
    assert "sj-rga train --data cifar10" in message and "--model resnet17 --lam 0.9 -T 8" in message
    assert script.main(["--rows", "20"]) == 2 and "outside 1..19" in capsys.readouterr().err
    assert script.main(["--data-root", "imagenet=/x"]) == 2 and "NAME=PATH" in capsys.readouterr().err


def test_an_empty_data_root_is_a_clear_error(script, tmp_path):
    workdir = tmp_path / "w"
    workdir.mkdir()
    rows, roots, checkpoints = script.write_check_setup(workdir, [script.load_config(script.CONFIG)["rows"][0]])
    (tmp_path / "empty").mkdir()
    with pytest.raises(script.SetupError, match="cifar-10-batches-py"):
        script.run_rows(script.load_config(script.CONFIG), [(1, rows[0])], {"cifar10": tmp_path / "empty"},
                        checkpoints, 4, 4, "cpu", progress=False)
    wrong = checkpoints / script.model_key({**rows[0], "lam": 0.5}).file_name()
    (checkpoints / script.model_key(rows[0]).file_name()).rename(wrong)
    (checkpoints / script.model_key(rows[0]).file_name(source=True)).rename(wrong.with_name(wrong.stem + "-source.pt"))
    with pytest.raises(script.SetupError, match="holds .*lam=1.0.* needs .*lam=0.5"):
        script.run_rows(script.load_config(script.CONFIG), [(1, {**rows[0], "lam": 0.5})], roots, checkpoints, 4, 4,
                        "cpu", progress=False)


def test_check_mode_runs_every_row_end_to_end(tmp_path):
    out = tmp_path / "results.json"
    printed = run_in_process(SCRIPT, "--check", "--no-progress", "--out", str(out))
    lines = printed.splitlines()
    header = next(i for i, line in enumerate(lines) if "WB STBP" in line)  # SpikingJelly may print before it
    lines = lines[header:]
    assert "measured / poster" in printed
    assert " / 86.28 " in lines[2] and " / 47.93" in lines[20]
    result = json.loads(out.read_text())
    assert [r["number"] for r in result["rows"]] == list(range(1, 20))
    for row in result["rows"]:
        measured = row["measured"]
        assert 0.0 <= measured["clean_accuracy"] <= 1.0
        for box in ("white_box", "black_box"):
            assert set(measured[box]) == {"stbp", "rga"}
            assert all(v != v or 0.0 <= v <= 1.0 for v in measured[box].values())  # NaN when nothing is correct
    assert result["rows"][1]["measured"]["time_extension"] == 2 and result["rows"][5]["measured"]["input"] == "poisson"
    assert result["rows"][18]["measured"]["input"] == "frames"
