"""`--threads`: every sub-command takes it, torch runs with it, the results record it; the default follows the
machine's idle cores; a busy machine gets a one-line note."""
import json
import os

import pytest
import torch

from sj_rga import threads
from sj_rga.cli import build_parser, main

COMMANDS = ("demo", "attack", "evaluate", "shuffle", "train")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_sub_command_has_threads(command):
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    assert "--threads" in sub.format_help()


def test_the_default_is_the_idle_cores_shared_by_the_local_processes(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "physical_cores", lambda: 4)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(threads, "load_average", lambda: 0.2)
    assert threads.default_threads() == 4  # idle: the physical cores, not the hyper-threads
    assert threads.default_threads(processes=2) == 2
    monkeypatch.setattr(threads, "load_average", lambda: 6.6)
    assert threads.default_threads() == 1  # 8 - 6.6 rounds to 1 idle core
    monkeypatch.setattr(threads, "load_average", lambda: 30.0)
    assert threads.default_threads() == 1 and threads.default_threads(processes=4) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.default_threads() == 3  # the user's own setting wins


def test_a_busy_machine_is_noted_in_one_line(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads, "load_average", lambda: 1.5)
    assert threads.busy_note(1) is None
    monkeypatch.setattr(threads, "load_average", lambda: 8.2)
    note = threads.busy_note(1)
    assert "load average 8.2 on 2 cores" in note and "1 thread" in note and "\n" not in note


def test_threads_are_set_recorded_and_the_busy_note_shown(monkeypatch, tmp_path, capsys, digits_checkpoint):
    monkeypatch.setattr(threads, "load_average", lambda: 99.0)
    seen = {}
    import sj_rga.shuffle

    original = sj_rga.shuffle.shuffle_test

    def spy(*args, **kwargs):
        seen["threads"] = torch.get_num_threads()
        return original(*args, **kwargs)

    monkeypatch.setattr(sj_rga.shuffle, "shuffle_test", spy)
    before = torch.get_num_threads()
    code = main(["shuffle", "--checkpoint", str(digits_checkpoint), "--limit", "16", "--threads", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert seen["threads"] == 2 and torch.get_num_threads() == before  # in-process: left as found
    assert "sj-rga shuffle: note: this machine is busy (load average 99.0" in err
    record = json.loads(out)["environment"]["threads"]
    assert record["threads"] == 2 and record["load_average"] == 99.0 and record["cpu_cores"] == os.cpu_count()


def test_threads_below_one_are_refused(capsys):
    assert main(["shuffle", "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err
