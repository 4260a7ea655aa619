"""Resumable evaluation runs: kill a real run (SIGKILL, SIGINT) mid-way, start it again, and compare with an
uninterrupted run; the run folder's own guarantees (atomic files, arguments bound to the folder)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sj_rga.cli import main
from sj_rga.files import write_atomically, write_json
from sj_rga.runs import RunFolder
from sj_rga.seeding import derive_seed

BATCHES, BATCH_SIZE = 6, 4


def _command(checkpoint, out, eps="0.1", limit=BATCHES * BATCH_SIZE):
    return [sys.executable, "-m", "sj_rga", "evaluate", "--checkpoint", str(checkpoint), "--data", "digits",
            "--eps", eps, "--suite", "fast", "--limit", str(limit), "--batch-size", str(BATCH_SIZE), "--seed", "3",
            "--out", str(out), "--no-progress"]


def _env():
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    env.pop("SJ_RGA_DEBUG", None)
    return env


def _finished(out):
    folder = out / "batches"
    return sorted(p.name for p in folder.glob("[0-9]*.json")) if folder.is_dir() else []


def _interrupt(checkpoint, out, sig):
    """Start a run, send ``sig`` once two batches are written; the finished batch files at that moment. SIGINT is
    set to its default in the child, as in a terminal's foreground job (a suite started in the background by a
    non-interactive shell passes it on ignored)."""
    process = subprocess.Popen(_command(checkpoint, out), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while len(_finished(out)) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(sig)
    _, err = process.communicate(timeout=120)
    return process.returncode, err


def _comparable(result):
    """Everything but wall-clock times and the header's record of the run itself (command line, date, load)."""
    drop = {"seconds"}
    rows = [{k: v for k, v in r.items() if k not in drop} for r in result["rows"] + [result["worst_case"]]]
    rest = {k: v for k, v in result.items() if k not in ("rows", "worst_case", "command", "environment")}
    return rest, rows


@pytest.fixture(scope="module")
def uninterrupted(digits_checkpoint, tmp_path_factory):
    """The same command run whole, by the CLI's entry point in this process."""
    out = tmp_path_factory.mktemp("whole")
    assert main(_command(digits_checkpoint, out)[3:]) == 0
    return json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_killed_run_resumes_and_equals_an_uninterrupted_one(tmp_path, digits_checkpoint, uninterrupted, sig,
                                                              capsys):
    out = tmp_path / "resumed"
    code, err = _interrupt(digits_checkpoint, out, sig)
    done_before = _finished(out)
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 130), err
    assert 2 <= len(done_before) < BATCHES, "the signal must land mid-run"
    assert not (out / "results.json").exists()
    if sig == signal.SIGINT:
        assert "run the same command again to resume" in err
    for path in (out / "batches").glob("[0-9]*.json"):
        json.loads(path.read_text())  # every batch file is complete
    capsys.readouterr()
    assert main(_command(digits_checkpoint, out)[3:]) == 0  # started again (in this process)
    assert f"resuming: {len(done_before)} of {BATCHES} batches done" in capsys.readouterr().err  # with --no-progress
    assert len(_finished(out)) == BATCHES
    resumed = json.loads((out / "results.json").read_text())
    assert _comparable(resumed) == _comparable(uninterrupted)
    assert resumed["per_sample"]["index"] == list(range(BATCHES * BATCH_SIZE))


def test_other_arguments_in_the_same_folder_are_refused(tmp_path, digits_checkpoint, capsys):
    out = tmp_path / "run"
    assert main(_command(digits_checkpoint, out, limit=4)[3:]) == 0
    capsys.readouterr()
    code = main(_command(digits_checkpoint, out, eps="0.05", limit=4)[3:])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert "holds the results of a run with other arguments (eps: 0.1 there, 0.05 now)" in lines[0]


def test_run_folder_binds_arguments_and_keeps_records(tmp_path):
    folder = RunFolder(tmp_path / "r", {"eps": 0.1, "shape": (1, 2)})
    assert folder.finished() == {}
    folder.save_batch(3, {"clean_ok": [True], "value": float("nan")})
    folder.save_batch(0, {"clean_ok": [False]})
    again = RunFolder(tmp_path / "r", {"eps": 0.1, "shape": [1, 2]})
    assert again.finished() == {0: {"batch": 0, "clean_ok": [False]},
                                3: {"batch": 3, "clean_ok": [True], "value": None}}
    with pytest.raises(ValueError, match=r"other arguments \(eps: 0.1 there, 0.2 now\)"):
        RunFolder(tmp_path / "r", {"eps": 0.2, "shape": [1, 2]})
    (tmp_path / "alien" / "batches").mkdir(parents=True)
    RunFolder(tmp_path / "alien", {"eps": 0.1})  # an empty batch folder holds nothing to protect
    (tmp_path / "alien" / "batches" / "000000.json").write_text('{"batch": 0}')
    with pytest.raises(ValueError, match="without run.json"):
        RunFolder(tmp_path / "alien", {"eps": 0.1})
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "run.json").write_text('{"something": "else"}')
    with pytest.raises(ValueError, match="did not write"):
        RunFolder(tmp_path / "foreign", {"eps": 0.1})
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        RunFolder(tmp_path / "file", {"eps": 0.1})


def test_atomic_writes_leave_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = write_json(tmp_path / "a.json", {"v": 1})
    (tmp_path / "plain").write_text("x")
    assert path.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777, "permissions as open() gives"
    (tmp_path / "plain").unlink()
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, "half")
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"], "no temporary file left behind"


def test_batch_seeds_are_deterministic_and_spread():
    seeds = [derive_seed(0, b) for b in range(100)]
    assert seeds == [derive_seed(0, b) for b in range(100)] and len(set(seeds)) == 100
    assert derive_seed(1, 0) != derive_seed(0, 1) and all(0 <= s < 2 ** 62 for s in seeds)
