"""The `sj-rga` command line: end to end in subprocesses as a user runs it, and its error paths in-process."""
import json
import os
import pickle
import shlex
import signal
import subprocess
import sys
import time
from fractions import Fraction

import pytest
import torch

import sj_rga
from sj_rga.cli import build_parser, main, parse_eps
from sj_rga.cli.errors import DEBUG_VARIABLE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE
from sj_rga.experiment import GRADIENTS


def run(*args, cwd=None, env_extra=None):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env_extra or {})}
    env.pop(DEBUG_VARIABLE, None)
    return subprocess.run([sys.executable, "-m", "sj_rga.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "digits.pt"
    done = run("train", "--data", "digits", "--epochs", "1", "--max-batches", "8", "--out", str(path), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert path.is_file() and "checkpoint written" in done.stdout
    assert [p.name for p in path.parent.iterdir()] == ["digits.pt"], "a temporary file was left beside it"
    return path


@pytest.fixture
def no_debug(monkeypatch):
    monkeypatch.delenv(DEBUG_VARIABLE, raising=False)


def test_demo_quick_writes_table_json_csv_and_plots(quick_demo):
    done, out, cache = quick_demo
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
            assert set(row[box]) == set(GRADIENTS) and all(0 <= v <= 1 for v in row[box].values())
        assert "seed 1" in row["source"] and row["clean_correct"] > 0
    assert result["seeds"]["targets"] == 0 and result["seeds"]["black_box_sources"] == 1
    assert result["batch_size"] == 256 and list(result["estimators"]) == list(GRADIENTS)  # the common header
    assert result["command"].startswith("sj-rga demo") and result["environment"]["threads"]["threads"] >= 1
    assert result["environment"]["versions"]["sj_rga"] == sj_rga.__version__
    assert result["command"].startswith("sj-rga demo --quick")
    assert "crafted on a separately trained digits_snn" in " ".join(done.stdout.split())
    assert len(result["sweeps"]["asr_vs_eps"]["x"]) >= 2
    assert (out / "asr_vs_eps.png").read_bytes()[:4] == b"\x89PNG"
    assert len((out / "results.csv").read_text().splitlines()) == len(result["rows"]) + 1
    assert len(list(cache.glob("digits_snn-*.pt"))) == 6  # 3 targets + 3 black-box sources, cached
    assert not list(cache.glob(".*")), "a temporary file was left in the cache"


def test_attack_and_shuffle_on_a_checkpoint(tmp_path, checkpoint, capsys, no_debug):
    out = tmp_path / "attack"
    code = main(["attack", "--checkpoint", str(checkpoint), "--attack", "pgd", "--eps", "8/255,0.1", "--steps", "2",
                 "--limit", "16", "--source", str(checkpoint), "--time-extension", "2", "--out", str(out),
                 "--no-progress"])
    done = capsys.readouterr()
    assert code == 0, done.err
    result = json.loads((out / "results.json").read_text())
    assert [r["eps"] for r in result["rows"]] == pytest.approx([8 / 255, 0.1])
    assert result["rows"][0]["time_extension"] == 2 and (out / "asr_vs_eps.png").is_file()
    assert result["rows"][0]["source"] == f"digits_snn from {checkpoint}" and result["rows"][0]["steps"] == 2
    assert f"crafted on digits_snn from {checkpoint}" in " ".join(done.out.split())
    assert "PGD-2" in done.out
    code = main(["shuffle", "--checkpoint", str(checkpoint), "--limit", "32", "--no-progress"])
    shuffled = capsys.readouterr()
    assert code == 0, shuffled.err
    report = json.loads(shuffled.out)
    assert {"model", "dataset", "T", "input", "clean_accuracy", "shuffled_accuracy", "samples"} <= set(report)
    assert (report["model"], report["T"], report["samples"]) == ("digits_snn", 8, 32)
    line = shuffled.err.strip().splitlines()[-1]
    assert "digits_snn" in line and "T=8" in line
    assert f"clean accuracy {100 * report['clean_accuracy']:.2f} %" in line
    assert f"shuffled {100 * report['shuffled_accuracy']:.2f} %" in line


def _help(*args, capsys) -> str:
    """What ``sj-rga ARGS --help`` prints (in this process: a new interpreter per help text costs seconds)."""
    with pytest.raises(SystemExit) as done:
        main([*args, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_help_shows_worked_examples_and_debug_variable(capsys):
    for args in ((), ("demo",), ("attack",), ("shuffle",), ("train",), ("evaluate",)):
        text = _help(*args, capsys=capsys)
        assert "example" in text and "sj-rga" in text, args
    top = _help(capsys=capsys)
    assert DEBUG_VARIABLE in top and "exit status" in top and "130" in top


def test_help_digits_workflow_trains_a_black_box_source_and_every_example_parses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parser = build_parser()
    top = parser.format_help()
    commands = [shlex.split(line.split("#")[0])[1:] for line in top.splitlines() if line.strip().startswith("sj-rga ")]
    names = [c[0] for c in commands]
    assert names.count("train") >= 2 and "attack" in names and "shuffle" in names
    trains = [c for c in commands if c[0] == "train"]
    assert any(c[c.index("--seed") + 1] == "1" for c in trains if "--seed" in c), "no --seed 1 source model"
    attack = next(c for c in commands if c[0] == "attack")
    assert "--source" in attack and "--checkpoint" in attack
    for command in commands:
        parser.parse_args(command)  # raises UsageError when an example has gone stale


def _one_error_line(code, capsys, prog="sj-rga"):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == EXIT_USAGE, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}") and ": error: " in lines[0] and "Traceback" not in err
    prefix, message = lines[0].split(": error: ", 1)
    assert "error:" not in message and not message.startswith("sj-rga"), f"wrapped twice: {lines[0]}"
    return lines[0]


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if training, data loading or an attack starts."""
    import sj_rga.data.registry
    import sj_rga.experiment
    import sj_rga.training

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    for module, name in ((sj_rga.training, "train_model"), (sj_rga.training, "train_digits"),
                         (sj_rga.training, "train"), (sj_rga.data.registry, "load_dataset"),
                         (sj_rga.experiment, "attack_row")):
        monkeypatch.setattr(module, name, forbidden)


BAD_ARGUMENTS = {
    "steps 0": (["attack", "--steps", "0"], "--steps"),
    "T 0": (["attack", "-T", "0"], "-T"),
    "T negative": (["attack", "--T", "-3"], "-T"),
    "time extension 0": (["attack", "--time-extension", "0"], "--time-extension"),
    "eot 0": (["attack", "--eot", "0"], "--eot"),
    "limit 0": (["attack", "--limit", "0"], "--limit"),
    "batch size 0": (["attack", "--batch-size", "0"], "--batch-size"),
    "alpha 0": (["attack", "--alpha", "0"], "--alpha"),
    "eps malformed": (["attack", "--eps", "8/"], "--eps"),
    "eps negative": (["attack", "--eps", "-0.1"], "--eps"),
    "eps above the image range": (["attack", "--eps", "30"], "--eps 30"),
    "alpha above the image range": (["attack", "--alpha", "2"], "--alpha 2"),
    "eps list with one too large": (["attack", "--eps", "0.1,8"], "--eps 8"),
    "frames encoding on images": (["attack", "--encoding", "frames"], "--encoding"),
    "time extension on event frames": (["attack", "--data", "cifar10dvs", "--time-extension", "2"],
                                       "--time-extension"),
    "negative seed": (["shuffle", "--seed", "-1"], "--seed"),
    "shuffle limit 0": (["shuffle", "--limit", "0"], "--limit"),
    "train T 0": (["train", "-T", "0", "--out", "m.pt"], "-T"),
    "train epochs 0": (["train", "--epochs", "0", "--out", "m.pt"], "--epochs"),
    "train lr 0": (["train", "--lr", "0", "--out", "m.pt"], "--lr"),
    "train max batches 0": (["train", "--max-batches", "0", "--out", "m.pt"], "--max-batches"),
    "train batch size 0": (["train", "--batch-size", "0", "--out", "m.pt"], "--batch-size"),
    "train leak above 1": (["train", "--lam", "1.5", "--out", "m.pt"], "--lam"),
    "train leak 0": (["train", "--lam", "0", "--out", "m.pt"], "--lam"),
    "train unknown model": (["train", "--model", "vgg99", "--out", "m.pt"], "--model vgg99"),
    "train zoo model on 1-channel digits": (["train", "--model", "sew_resnet18", "--out", "m.pt"], "--model"),
    "train without data root": (["train", "--data", "cifar10", "--out", "m.pt"], "--data-root"),
    "train empty data root": (["train", "--data", "cifar10", "--data-root", "empty", "--out", "m.pt"], "--data"),
    "train no out": (["train"], "--out"),
    "attack without data root": (["attack", "--data", "cifar100", "--checkpoint", "x.pt"], "--data-root"),
    "shuffle empty data root": (["shuffle", "--data", "cifar10", "--data-root", "empty", "--checkpoint", "x.pt"],
                                "--data cifar10"),
    "unknown device": (["attack", "--device", "tpu:0"], "--device"),
    "missing device": (["attack", "--device", "cuda:7"], "--device"),
    "unknown sub-command": (["attak"], "attak"),
}


@pytest.mark.parametrize("argv,named", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_bad_argument_is_one_line_naming_it_before_any_work(argv, named, tmp_path, monkeypatch, capsys, no_work,
                                                            no_debug):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    line = _one_error_line(main(argv), capsys)
    assert named in line
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "sj_rga_out").exists()


def test_eps_above_one_is_allowed_for_event_frames():
    from sj_rga.cli.common import check_eps_in_range

    check_eps_in_range("--eps", [2.0], "cifar10dvs")  # event counts have no upper bound


def test_a_checkpoint_T_of_zero_does_not_fall_back_to_the_checkpoints_T(checkpoint):
    from sj_rga.checkpoints import classifier_from_meta, load_checkpoint

    model, meta = load_checkpoint(checkpoint)
    assert classifier_from_meta(model, meta).T == 8 and classifier_from_meta(model, meta, T=3).T == 3
    with pytest.raises(ValueError, match="T"):
        classifier_from_meta(model, meta, T=0)


def _unwritable_folder():
    for candidate in ("/proc", "/sys"):
        if os.path.isdir(candidate):
            try:
                open(os.path.join(candidate, "sj-rga-probe"), "w").close()
            except OSError:
                return candidate
    return None


OUTPUTS = {
    "attack out is a file": (["attack", "--out", "a_file"], "not a folder"),
    "attack out under a file": (["attack", "--out", "a_file/results"], "a_file, which is a file"),
    "demo out is a file": (["demo", "--out", "a_file"], "not a folder"),
    "demo cache under a file": (["demo", "--cache-dir", "a_file/cache"], "a_file, which is a file"),
    "train out is a folder": (["train", "--out", "a_folder"], "is a folder"),
    "train out under a file": (["train", "--out", "a_file/model.pt"], "a_file, which is a file"),
}


@pytest.mark.parametrize("argv,reason", OUTPUTS.values(), ids=OUTPUTS.keys())
def test_output_paths_are_checked_before_any_work(argv, reason, tmp_path, monkeypatch, capsys, no_work, no_debug):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("keep me")
    (tmp_path / "a_folder").mkdir()
    line = _one_error_line(main(argv), capsys)
    assert reason in line and ("--out" in line or "--cache-dir" in line)
    assert (tmp_path / "a_file").read_text() == "keep me"


@pytest.mark.skipif(_unwritable_folder() is None, reason="no folder here that even root cannot write")
@pytest.mark.parametrize("command", ["attack", "demo"])
def test_an_unwritable_out_is_a_usage_error(command, capsys, no_work, no_debug):
    line = _one_error_line(main([command, "--out", f"{_unwritable_folder()}/results"]), capsys)
    assert "cannot write" in line and "--out" in line


def test_the_default_out_is_checked_too(tmp_path, monkeypatch, capsys, no_work, no_debug):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sj_rga_out").write_text("a file where the default folder goes")
    line = _one_error_line(main(["attack"]), capsys)
    assert "sj_rga_out" in line


def _bad_checkpoints(folder, checkpoint):
    garbage = folder / "garbage.pt"
    garbage.write_bytes(os.urandom(256))
    unsafe = folder / "unsafe.pt"
    torch.save({"format": Fraction(1, 3)}, unsafe)  # torch.load(weights_only=True) refuses it with a long paragraph
    pickled = folder / "pickled.pt"
    pickled.write_bytes(pickle.dumps([1, 2, 3]))
    foreign = folder / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    misfit = folder / "misfit.pt"
    saved = torch.load(checkpoint, weights_only=True)
    saved["state_dict"] = {k: v[..., :1] if v.dim() else v for k, v in saved["state_dict"].items()}
    torch.save(saved, misfit)
    return {"garbage": garbage, "unsafe": unsafe, "pickled": pickled, "foreign": foreign, "misfit": misfit,
            "missing": folder / "none.pt"}


@pytest.mark.parametrize("kind", ["garbage", "unsafe", "pickled", "foreign", "misfit", "missing"])
@pytest.mark.parametrize("option", ["--checkpoint", "--source"])
def test_a_checkpoint_that_cannot_be_loaded_is_one_short_line(kind, option, checkpoint, tmp_path, capsys, no_work,
                                                              no_debug):
    path = _bad_checkpoints(tmp_path, checkpoint)[kind]
    argv = ["attack", "--out", str(tmp_path / "out")]
    argv += [option, str(path)] + (["--checkpoint", str(checkpoint)] if option == "--source" else [])
    line = _one_error_line(main(argv), capsys)
    assert str(path) in line and len(line) < 400, line
    assert "weights_only" not in line and "WeightsUnpickler" not in line
    assert "no such file" in line if kind == "missing" else "expected a file written by `sj-rga train`" in line
    assert not (tmp_path / "out").exists()


def test_checkpoint_of_another_data_set_is_a_usage_error(checkpoint, tmp_path, capsys, no_debug):
    from sj_rga.data import synthetic

    synthetic.write_cifar(tmp_path, "cifar10", per_batch=2)
    argv = ["attack", "--checkpoint", str(checkpoint), "--data", "cifar10", "--data-root", str(tmp_path),
            "--out", str(tmp_path / "out")]
    assert "trained on digits, not --data cifar10" in _one_error_line(main(argv), capsys)


def test_an_internal_error_is_a_short_traceback_and_not_a_usage_error(monkeypatch, checkpoint, tmp_path, capsys,
                                                                     no_debug):
    import sj_rga.experiment

    def bug(*args, **kwargs):
        raise ValueError("an internal\ninconsistency")  # a ValueError from deep inside is a bug, not a usage error

    monkeypatch.setattr(sj_rga.experiment, "attack_row", bug)
    argv = ["attack", "--checkpoint", str(checkpoint), "--limit", "4", "--out", str(tmp_path / "out"), "--no-progress"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == EXIT_INTERNAL != EXIT_USAGE
    assert "sj-rga attack: internal error: ValueError: an internal inconsistency" in err
    assert "Traceback" in err and "in bug" in err and "report" in err and f"{DEBUG_VARIABLE}=1" in err
    assert len(err.splitlines()) < 20
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv(DEBUG_VARIABLE, "1")
    with pytest.raises(ValueError, match="internal"):
        main(argv)


def test_debug_variable_shows_the_usage_errors_traceback(monkeypatch, tmp_path):
    from sj_rga.cli import UsageError

    monkeypatch.setenv(DEBUG_VARIABLE, "1")
    with pytest.raises(UsageError, match="no such file"):
        main(["attack", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "out")])


def test_ctrl_c_during_training_exits_130_and_writes_no_checkpoint(monkeypatch, tmp_path, capsys, no_debug):
    import sj_rga.training

    def interrupted(*args, checkpoint=None, **kwargs):
        checkpoint.write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(sj_rga.training, "train_model", interrupted)
    code = main(["train", "--out", str(tmp_path / "m.pt"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_INTERRUPTED == 130
    assert err == ["sj-rga train: interrupted; no results were written"]
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_writing_results_leaves_no_half_written_files(monkeypatch, tmp_path, capsys, checkpoint,
                                                                   no_debug):
    import sj_rga.report

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sj_rga.report, "_plot_sweep", interrupted)  # after results.json and .csv were staged
    out = tmp_path / "out"
    code = main(["attack", "--checkpoint", str(checkpoint), "--eps", "0.05,0.1", "--limit", "8", "--out", str(out),
                 "--no-progress"])
    assert code == EXIT_INTERRUPTED
    assert not out.exists()


def test_sigint_to_a_running_command_exits_130(tmp_path):
    """Ctrl-C as a user at a terminal sends it: the real signal, to a command whose stderr is a terminal (a
    pseudo-terminal here, so the progress bar is tqdm's), once the training's bar shows. SIGINT is set back to
    its default in the child: a process started in the background by a non-interactive shell (as CI runs the
    suite) inherits it ignored, and Python then never raises KeyboardInterrupt."""
    import fcntl
    import pty
    import struct
    import termios

    out = tmp_path / "m.pt"
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1"}
    env.pop(DEBUG_VARIABLE, None)
    terminal, child_end = pty.openpty()
    fcntl.ioctl(child_end, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 x 100, as a terminal has
    process = subprocess.Popen([sys.executable, "-m", "sj_rga.cli", "train", "--epochs", "200", "--out", str(out)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=child_end, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(child_end)

    def read_available() -> bytes:
        try:
            return os.read(terminal, 65536)
        except (BlockingIOError, OSError):  # nothing yet; OSError (EIO) once the child has closed the terminal
            return b""

    try:
        os.set_blocking(terminal, False)
        seen, deadline = b"", time.monotonic() + 120
        while b"%" not in seen and process.poll() is None and time.monotonic() < deadline:
            seen += read_available() or (time.sleep(0.1) or b"")
        assert b"%" in seen, f"no progress bar: {seen[-2000:]}"
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            seen += read_available() or (time.sleep(0.1) or b"")
        seen = (seen + read_available()).decode()
    finally:
        if process.poll() is None:
            process.kill()
        os.close(terminal)
    assert process.returncode == EXIT_INTERRUPTED, seen[-2000:]
    assert seen.rstrip().endswith("sj-rga train: interrupted; no results were written")
    assert "Traceback" not in seen
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text,value", [("8/255", 8 / 255), ("0.03", 0.03), (" 2/255 ", 2 / 255), ("0", 0.0)])
def test_parse_eps(text, value):
    assert parse_eps(text) == pytest.approx(value)


def test_package_exposes_cli_entry_point(capsys):
    from importlib.metadata import entry_points
    (entry,) = entry_points(group="console_scripts", name="sj-rga")
    assert entry.load() is sj_rga.cli.main
    with pytest.raises(SystemExit) as done:
        entry.load()(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"sj-rga {sj_rga.__version__}"
