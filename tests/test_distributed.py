"""torch.distributed (method §4): 2 CPU processes under torchrun (gloo) give one process's results: the same
weights after DistributedDataParallel training (BatchNorm on global-batch statistics), the same results files;
a failing rank ends the job with its error and leaves no results behind. The 2-rank runs compared with one process
are parts of one shared job (tests/shared_job.py); torchrun's own launches (``-m sj_rga``, a failing rank, an error
on every rank) are started here."""
import contextlib
import json
import shutil

import pytest
import torch
import torch.distributed as dist
from distributed_worker import cli_attack_args, cli_evaluate_args, cli_shuffle_args, cli_train_args, small_training
from shared_job import WORKER, torchrun
from spikingjelly.activation_based import layer

from sj_rga import checkpoints, distributed
from sj_rga.cli import main
from sj_rga.data import digits


def assert_same_weights(one: dict, two: dict) -> None:
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=1e-6, rtol=1e-5, msg=key)


@pytest.mark.parametrize("count", range(0, 12))
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_shard_splits_any_count(count, size):
    parts = [distributed.shard(count, rank, size) for rank in range(size)]
    assert [i for part in parts for i in range(count)[part]] == list(range(count))
    assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1


def test_one_process_world_and_backends():
    assert distributed.world() == distributed.World() and distributed.world().main
    assert not distributed.world().distributed
    assert distributed.backend_for("cpu") == "gloo" and distributed.backend_for("cuda:1") == "nccl"
    assert distributed.all_sum([1, 2.5]) == [1.0, 2.5]
    assert list(distributed.gather_batches({3: "c", 1: "a"})) == [1, 3]


@pytest.fixture
def single_rank_group(tmp_path):
    """A gloo process group of one rank in this process (torch.distributed's collectives, no torchrun)."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("norm", ["torch", "spikingjelly multi-step"])
def test_synchronised_batch_norm_equals_batch_norm(single_rank_group, norm):
    """The synchronised forward (all-reduced sums) on one rank is torch's BatchNorm: values, gradients, running
    statistics, in training mode; eval mode is the stock forward."""
    torch.manual_seed(0)
    make = (lambda: torch.nn.BatchNorm2d(3)) if norm == "torch" else (lambda: layer.BatchNorm2d(3, step_mode="m"))
    stock, synced = make(), make()
    with torch.no_grad():
        for bn in (stock, synced):
            bn.weight.copy_(torch.tensor([0.5, 1.5, -1.0]))
            bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    shape = (5, 3, 4, 4) if norm == "torch" else (2, 5, 3, 4, 4)
    x = (torch.randn(shape) * 2 + 1).requires_grad_(True)
    weights = torch.randn(shape)
    expected = stock(x)
    (grad_expected,) = torch.autograd.grad((expected * weights).sum(), x)
    forward = distributed._synced_norm(synced)
    got = forward(x)
    (grad_got,) = torch.autograd.grad((got * weights).sum(), x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_got, grad_expected, atol=1e-5, rtol=1e-5)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(synced, name), getattr(stock, name), msg=name)
    stock.eval(), synced.eval()
    torch.testing.assert_close(forward(x), stock(x))


def test_cli_training_on_two_ranks_gives_one_process_weights(tmp_path, two_rank_job):
    """PGD-AT with the RGA inner gradient, global batch 33 (split 17 + 16 over the ranks), 3 steps: the 2-rank run
    is the shared job's (sj-rga train by the CLI's entry point), the one-process run this process's."""
    assert main(cli_train_args(tmp_path / "one.pt")) == 0
    assert two_rank_job.printed("train").count("checkpoint written") == 1  # rank 0 alone prints and writes
    one = torch.load(tmp_path / "one.pt", weights_only=True)
    two = torch.load(two_rank_job.folder / "train" / "two.pt", weights_only=True)
    assert_same_weights(one["state_dict"], two["state_dict"])
    assert two["train"]["adversarial"]["method"] == "pgd" and two["accuracy"] == one["accuracy"]
    assert [p.name for p in tmp_path.iterdir()] == ["one.pt"]
    assert [p.name for p in (two_rank_job.folder / "train").iterdir()] == ["two.pt"]


def test_library_training_with_an_empty_part_gives_one_process_weights(two_rank_job):
    got = torch.load(two_rank_job.folder / "library-train" / "train.pt", weights_only=True)
    model, result = small_training()
    assert_same_weights(model.state_dict(), got["state_dict"])
    assert got["accuracy"] == result.accuracy
    for mine, theirs in zip(result.history, got["history"]):
        assert mine.keys() == theirs.keys() and all(mine[k] == pytest.approx(theirs[k], rel=1e-5) for k in mine)


def test_a_failing_rank_ends_the_job_with_its_error_and_no_results(tmp_path):
    done = torchrun(WORKER, "fail", tmp_path, timeout=180)
    assert done.returncode != 0
    assert "rank 1 cannot read its data" in done.stderr
    assert not (tmp_path / "results.txt").exists()


def test_cli_error_on_every_rank_is_one_line_and_demo_refuses_torchrun(tmp_path, monkeypatch, capsys):
    """A usage error under torchrun: one line from each rank. The demo refuses a torchrun job (WORLD_SIZE, which
    torchrun sets, above 1) before it starts; checked in this process."""
    done = torchrun("-m", "sj_rga", "train", "--out", tmp_path / "m.pt", "--adversarial", "pgd")
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("sj-rga train: error:")]
    assert len(lines) == 2 and "needs --adv-eps" in lines[0]
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo")]) != 0
    assert "does not run under torchrun" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_evaluate_and_shuffle_test_inside_a_job_equal_one_process(poisson_checkpoint, two_rank_job):
    from sj_rga import SNNClassifier, evaluate, shuffle_test
    from sj_rga.attacks import PGD, AutoAttack

    model, _ = checkpoints.load_checkpoint(poisson_checkpoint)
    x, y = digits()[1].tensors
    target = SNNClassifier(model, 4, encoding="poisson", seed=3, eot=2)
    report = evaluate(target, PGD(target.with_gradient("stbp"), 0.1, 0.04, 2, seed=5), (x[:50], y[:50]),
                      batch_size=16, progress=False)
    shuffled = shuffle_test(target, (x[:50], y[:50]), batch_size=16, seed=7)
    with pytest.warns(UserWarning, match="rand"):  # the fast suite on Poisson input: cheap, fine for this check
        suite = evaluate(target, AutoAttack(target, 0.1, "Linf", "fast", seed=2), (x[:50], y[:50]), batch_size=16,
                         progress=False)
    for rank in (0, 1):  # every rank gets the whole data's report
        got = torch.load(two_rank_job.folder / "poisson" / f"rank{rank}.pt", weights_only=False)
        assert got["evaluate"] == report.as_dict() and got["shuffle"] == shuffled.as_dict()
        assert _without_times(got["autoattack"]) == _without_times(suite.as_dict())  # breakdown summed over ranks
    assert [row["attacked"] for row in suite.breakdown][0] == suite.clean_correct
    assert report.samples == 50 and 0 < report.robust_accuracy < report.clean_accuracy


def test_cli_attack_and_shuffle_on_two_ranks_write_one_process_results(tmp_path, poisson_checkpoint, two_rank_job,
                                                                       capsys):
    """50 test digits in batches of 16 over 2 ranks (batches 0, 2 and 1, 3 of 16, 16, 16, 2 samples)."""
    assert main([*cli_attack_args(poisson_checkpoint), "--out", str(tmp_path / "one")]) == 0
    assert two_rank_job.printed("attack").count("Results written") == 1
    two = two_rank_job.folder / "attack"
    assert (tmp_path / "one" / "results.csv").read_bytes() == (two / "results.csv").read_bytes()
    one, two = (json.loads((folder / "results.json").read_text()) for folder in (tmp_path / "one", two))
    assert one["rows"] == two["rows"] and one["sweeps"] == two["sweeps"]
    assert (one["environment"]["processes"], two["environment"]["processes"]) == (1, 2)
    capsys.readouterr()
    assert main(cli_shuffle_args(poisson_checkpoint)) == 0
    single = capsys.readouterr().out
    assert _without_times(json.loads(two_rank_job.printed("shuffle"))) == _without_times(json.loads(single))


def _without_times(result: dict) -> dict:
    """A results.json without what depends on the clock, and without the header's record of the run itself
    (command line, date, load, number of processes)."""
    drop = ("seconds", "attack_seconds", "command", "environment")
    if isinstance(result, dict):
        return {key: _without_times(value) for key, value in result.items() if key not in drop}
    if isinstance(result, list):
        return [_without_times(value) for value in result]
    if isinstance(result, tuple):
        return tuple(_without_times(value) for value in result)
    return result


@pytest.mark.filterwarnings("ignore:the classifier's Poisson input is random")  # as in the job's ranks
def test_cli_evaluate_on_two_ranks_equals_one_process_and_resumes(tmp_path, poisson_checkpoint, two_rank_job):
    """AutoAttack's fast suite on 40 test digits in batches of 16 (16, 16, 8): 2 ranks (the shared job's run)
    write one process's results; a run stopped before its last round resumes under ``torchrun -m sj_rga`` on
    2 ranks and ends with the same results."""
    args = cli_evaluate_args(poisson_checkpoint)
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert two_rank_job.printed("evaluate").count("Results written") == 1
    shutil.copytree(two_rank_job.folder / "evaluate", tmp_path / "two")  # the job's run, resumed below in a copy
    one, two = (json.loads((tmp_path / name / "results.json").read_text()) for name in ("one", "two"))
    assert _without_times(one) == _without_times(two) and len(two["per_sample"]["index"]) == 40
    assert (one["environment"]["processes"], two["environment"]["processes"]) == (1, 2)
    batches = tmp_path / "two" / "batches"
    assert sorted(p.name for p in batches.iterdir()) == ["000000.json", "000001.json", "000002.json"]
    first = (batches / "000000.json").read_text()
    (batches / "000002.json").unlink()  # as if the job had been stopped before its last round was saved
    (tmp_path / "two" / "results.json").unlink()
    again = torchrun("-m", "sj_rga", *args, "--out", tmp_path / "two")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("Results written") == 1
    assert (batches / "000000.json").read_text() == first  # finished batches are read, not rerun
    resumed = json.loads((tmp_path / "two" / "results.json").read_text())
    assert _without_times(resumed) == _without_times(one)


def test_a_classifier_around_ddp_gives_every_gradient_on_one_rank_alone(two_rank_job):
    """SNNClassifier runs the module inside DistributedDataParallel itself (issue 11): on rank 0 alone, in a
    2-rank job, every estimator's gradient through the wrapper equals the unwrapped model's, with no
    collective to wait for (the job's last part: rank 1 waits in the job's final barrier meanwhile)."""
    gradients = torch.load(two_rank_job.folder / "wrapped" / "wrapped.pt", weights_only=True)
    assert len(gradients) == 6
    for name, (plain, wrapped) in gradients.items():
        torch.testing.assert_close(wrapped, plain, rtol=0, atol=0, msg=name)
        assert plain.abs().sum() > 0, name


@pytest.mark.parametrize("fails", [False, True])
def test_session_waits_for_every_rank_before_teardown_unless_the_block_failed(monkeypatch, fails):
    """A normal end: a barrier, then the group is destroyed (no rank tears gloo down while another still
    exchanges data). An error: destroyed at once (waiting would hang on the rank that failed)."""
    calls = []
    monkeypatch.setattr(distributed, "launched_size", lambda: 2)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls.append(f"init {backend}"))
    monkeypatch.setattr(dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(dist, "destroy_process_group", lambda: calls.append("destroy"))
    monkeypatch.setattr(distributed, "world", lambda: distributed.World())
    with pytest.raises(RuntimeError) if fails else contextlib.nullcontext():
        with distributed.session("cpu"):
            calls.append("work")
            if fails:
                raise RuntimeError("rank failed")
    assert calls == (["init gloo", "work", "destroy"] if fails else ["init gloo", "work", "barrier", "destroy"])
