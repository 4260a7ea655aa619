"""`sj-rga evaluate --model pkg.module:factory` with the model styles of published code: a static-input model
(``--input-layout B``) and a batch-first model returning ``(logits, hook)`` (``--input-layout BT --model-output
0``); a model fed the wrong layout is one line naming the option, exit 2."""
import json
import sys

import pytest
from distributed_worker import STYLES_MODULE, cli_layout_args
from shared_job import USER_MODULE
from test_distributed import _without_times

from sj_rga.cli import main


@pytest.fixture()
def styles_module(tmp_path, monkeypatch):
    name = f"styles_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize("factory,options", [
    ("static", ["--input-layout", "B"]),
    ("batch_first", ["--input-layout", "BT", "--model-output", "0"]),
])
def test_evaluate_models_in_their_own_layouts(tmp_path, styles_module, capsys, factory, options):
    out = tmp_path / "ev"
    assert main(["evaluate", "--model", f"{styles_module}:{factory}", "-T", "3", *options, "--data", "digits",
                 "--limit", "8", "--batch-size", "4", "--eps", "0.1", "--suite", "fast", "--no-progress",
                 "--out", str(out)]) == 0
    result = json.loads((out / "results.json").read_text())
    assert result["input"]["input_layout"] == options[1]
    assert result["input"]["output"] == (0 if factory == "batch_first" else None)
    capsys.readouterr()


def test_a_model_fed_the_wrong_layout_is_one_line_naming_the_option(tmp_path, styles_module, capsys):
    code = main(["evaluate", "--model", f"{styles_module}:static", "-T", "3", "--data", "digits", "--limit", "4",
                 "--eps", "0.1", "--suite", "fast", "--no-progress", "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--input-layout" in err[0] and "model_styles.py:" in err[0], err


@pytest.fixture()
def job_styles_module(two_rank_job, monkeypatch):
    """The shared job's user-model module (the factories of ``styles_module``, under the name the job imported),
    importable here."""
    monkeypatch.syspath_prepend(str(two_rank_job.styles))
    yield STYLES_MODULE
    sys.modules.pop(STYLES_MODULE, None)


def test_a_batch_first_tuple_model_on_two_ranks_equals_one_process_and_resumes(tmp_path, two_rank_job,
                                                                                job_styles_module, capsys):
    """2 ranks (the shared job's run of sj-rga evaluate), one process, and a resumed run give the same results for a
    model in its own layout."""
    args = cli_layout_args()
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    one, two = (json.loads((folder / "results.json").read_text()) for folder in (tmp_path / "one",
                                                                                 two_rank_job.folder / "layouts"))
    assert _without_times(one) == _without_times(two) and one["input"]["input_layout"] == "BT"
    assert (one["environment"]["processes"], two["environment"]["processes"]) == (1, 2)
    (tmp_path / "one" / "batches" / "000002.json").unlink()  # as if stopped before the last batch was saved
    (tmp_path / "one" / "results.json").unlink()
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert _without_times(json.loads((tmp_path / "one" / "results.json").read_text())) == _without_times(one)
    capsys.readouterr()
