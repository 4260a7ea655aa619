"""Library calls and ``sj-rga`` commands inside a torch.distributed job, run under torchrun (gloo, CPU):

    python -m torch.distributed.run --standalone --nproc_per_node=N tests/distributed_worker.py TASK OUT_DIR [INPUT...]

Task "shared" (tests/shared_job.py starts it once per test session, on 2 ranks) runs every 2-rank check of
tests/test_distributed.py, tests/test_engine.py and tests/test_layouts_cli.py in one job, to pay torchrun's
start-up once; task "fail" is a job whose rank 1 fails. Rank 0 writes what it got to OUT_DIR (what each rank
printed is saved there too); the tests compare it with one process's result.
"""
import contextlib
import io
import sys
import traceback
from pathlib import Path

import torch

from sj_rga import checkpoints, distributed, models, training
from sj_rga.adversarial import AdversarialConfig
from sj_rga.data import digits


def small_training() -> tuple[torch.nn.Module, training.TrainResult]:
    """PGD-AT (STBP inner gradient) on 33 digits in global batches of 16: the last global batch has one sample,
    so one rank's part of it is empty. In one process or in each rank of a job."""
    torch.manual_seed(0)
    model = models.build("digits_snn", 10)
    x, y = digits()[0].tensors
    data = torch.utils.data.TensorDataset(x[:33], y[:33])
    config = training.TrainConfig(epochs=2, batch_size=16, lr=0.05, progress=False, device="cpu",
                                  adversarial=AdversarialConfig("pgd", eps=0.1, steps=2, gradient="stbp"))
    return model, training.train(model, data, training.InputSpec(4), config, test_set=data)


def train_small(out: Path) -> None:
    model, result = small_training()
    if distributed.world().main:
        torch.save({"state_dict": model.state_dict(), "history": result.history, "accuracy": result.accuracy},
                   out / "train.pt")


def fail_on_rank_one(out: Path) -> None:
    """Rank 1 fails while rank 0 waits for its results; rank 0 would write a file after the gather."""
    world = distributed.world()
    if world.rank == 1:
        raise ValueError("rank 1 cannot read its data")
    gathered = distributed.gather_batches({world.rank: world.rank})
    (out / "results.txt").write_text(str(gathered))


def evaluate_poisson(out: Path, checkpoint: Path) -> None:
    """sj_rga.evaluate and shuffle_test inside the job: a Poisson-input classifier (seeded, EOT 2) of the
    checkpoint's model, PGD with a random start and AutoAttack's fast suite, 50 digits in batches of 16 (the last
    batch has 2). Every rank writes its reports to rank{RANK}.pt."""
    from sj_rga import SNNClassifier, evaluate, shuffle_test
    from sj_rga.attacks import PGD, AutoAttack

    torch.manual_seed(0)
    model, _ = checkpoints.load_checkpoint(checkpoint)
    x, y = digits()[1].tensors
    target = SNNClassifier(model, 4, encoding="poisson", seed=3, eot=2)
    report = evaluate(target, PGD(target.with_gradient("stbp"), 0.1, 0.04, 2, seed=5), (x[:50], y[:50]),
                      batch_size=16)
    shuffled = shuffle_test(target, (x[:50], y[:50]), batch_size=16, seed=7)
    suite = evaluate(target, AutoAttack(target, 0.1, "Linf", "fast", seed=2), (x[:50], y[:50]), batch_size=16)
    rank = distributed.world().rank
    torch.save({"evaluate": report.as_dict(), "shuffle": shuffled.as_dict(), "autoattack": suite.as_dict()},
               out / f"rank{rank}.pt")


def wrapped_gradients(out: Path) -> None:
    """Rank 0 alone takes input gradients through SNNClassifier(DistributedDataParallel(model)) with every
    estimator, while rank 1 does nothing: a classifier that ran DDP's forward (which synchronises buffers
    across the ranks) would wait for rank 1 forever."""
    from torch.nn.parallel import DistributedDataParallel

    from sj_rga import SNNClassifier
    from sj_rga.experiment import GRADIENTS

    torch.manual_seed(0)
    model = models.build("digits_snn", 10)
    x, y = digits()[0].tensors  # a few steps of (distributed) training, so that every estimator has spikes to follow
    training.train(model, torch.utils.data.TensorDataset(x, y), training.InputSpec(4),
                   training.TrainConfig(epochs=1, batch_size=32, progress=False, device="cpu"))
    wrapped = DistributedDataParallel(model)
    if not distributed.world().main:
        return
    x, y = digits()[1].tensors
    x, y = x[:8], y[:8]
    gradients = {}
    for name in GRADIENTS:
        pair = []
        for net in (model, wrapped):
            xg = x.clone().requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(SNNClassifier(net, 4, gradient=name)(xg), y)
            pair.append(torch.autograd.grad(loss, xg)[0])
        gradients[name] = pair
    torch.save(gradients, out / "wrapped.pt")


#: The evaluation compared between the library and the CLI, with 1 and 2 ranks (tests/test_engine.py):
#: AutoAttack at ε = SUITE_EPS[version] (L∞) with seed SUITE_SEED on the first SUITE_SAMPLES test digits in
#: batches of SUITE_BATCH (two batches: one per rank in a 2-rank job). The standard suite's ε is large enough for
#: its first attack to break every sample (a few seconds); the fast suite leaves some samples to its second one.
SUITE_EPS = {"fast": 0.1, "standard": 0.2}
SUITE_SEED, SUITE_SAMPLES, SUITE_BATCH = 1, 8, 4
#: Per-sample invariance (tests/test_engine.py): a Poisson-input classifier and a suite exercising every
#: random draw (random starts and restarts, EOT, targeted runs), on INVARIANCE_SAMPLES test digits.
INVARIANCE_SAMPLES = 24


def suite_target(checkpoint: Path):
    """The classifier sj-rga evaluate builds for the checkpoint with --seed SUITE_SEED."""
    from sj_rga.checkpoints import classifier_from_meta

    model, meta = checkpoints.load_checkpoint(checkpoint)
    return classifier_from_meta(model, meta, seed=SUITE_SEED)


def library_suites(checkpoint: Path, version: str):
    """sj_rga.evaluate with AutoAttack's ``version`` suite: the report and the per-sample records."""
    from sj_rga.attacks import AutoAttack
    from sj_rga.metrics import attack_records, report_of

    target = suite_target(checkpoint)
    suite = AutoAttack(target, SUITE_EPS[version], "Linf", version, SUITE_SEED)
    x, y = digits()[1].tensors
    records = attack_records(target, suite, (x[:SUITE_SAMPLES], y[:SUITE_SAMPLES]), SUITE_BATCH, progress=False)
    return report_of(records, suite, SUITE_BATCH), records


def invariance_records(checkpoint: Path, batch_size: int):
    """Per-sample records of a custom suite on Poisson input (seeded, EOT 2), of PGD with a random start and
    of the shuffle test, with batches of ``batch_size``."""
    from sj_rga import SNNClassifier, shuffle_test
    from sj_rga.attacks import PGD, AutoAttack, SuiteAttack
    from sj_rga.metrics import attack_records

    model, _ = checkpoints.load_checkpoint(checkpoint)
    target = SNNClassifier(model, 4, encoding="poisson", seed=3, eot=2)
    suite = AutoAttack(target, 0.1, "Linf", "custom", seed=5, attacks=[
        SuiteAttack("apgd-ce", "assg", 4, restarts=2, eot=2), SuiteAttack("apgd-t", "rga", 3, target_classes=2),
        SuiteAttack("sapgd", "hart", 3, restarts=2)])
    x, y = digits()[1].tensors
    data = (x[:INVARIANCE_SAMPLES], y[:INVARIANCE_SAMPLES])
    found = {"suite": attack_records(target, suite, data, batch_size, progress=False),
             "pgd": attack_records(target, PGD(target.with_gradient("stbp"), 0.1, 0.03, 3, norm="Linf", seed=2),
                                   data, batch_size, progress=False)}
    keys = ("indices", "labels", "clean_ok", "robust_ok", "broken_by")
    per_sample = {name: {key: [v for r in records for v in r.get(key, [])] for key in keys}
                  for name, records in found.items()}
    per_sample["shuffle"] = shuffle_test(target, data, batch_size, seed=7).as_dict()
    return per_sample


def cli_suite_args(checkpoint: Path, version: str, out: Path) -> list[str]:
    """``sj-rga evaluate`` with the settings of :func:`library_suites`."""
    return ["evaluate", "--checkpoint", str(checkpoint), "--data", "digits", "--eps", str(SUITE_EPS[version]),
            "--suite", version, "--seed", str(SUITE_SEED), "--limit", str(SUITE_SAMPLES), "--batch-size",
            str(SUITE_BATCH), "--out", str(out), "--no-progress"]


def suites_and_invariance(out: Path, checkpoint: Path) -> None:
    """tests/test_engine.py's evaluations inside the job: the library's (rank 0 writes them to library.pt) and
    ``sj-rga evaluate``'s for each suite (:func:`run_cli`; its results in cli-VERSION/)."""
    found = {version: library_suites(checkpoint, version) for version in ("fast", "standard")}
    invariance = invariance_records(checkpoint, 8)
    for version in found:
        run_cli(f"suite-{version}", cli_suite_args(checkpoint, version, out / f"cli-{version}"), out)
    if distributed.world().main:
        torch.save({**{version: (report.as_dict(), records) for version, (report, records) in found.items()},
                    "invariance": invariance}, out / "library.pt")


def run_cli(name: str, argv: list[str], out: Path) -> None:
    """``sj-rga ARGV`` by the CLI's own entry point, as ``torchrun -m sj_rga`` runs it on this rank (in this
    process: the job's group is already joined, and each command spares a job's start-up). What this rank printed
    goes to out/printed/NAME.rank{RANK}.out and .err; an exit status other than 0 fails the job."""
    from sj_rga.cli import main

    printed, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors):
        status = main(argv)
    rank = distributed.world().rank
    folder = out / "printed"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.rank{rank}.out").write_text(printed.getvalue())
    (folder / f"{name}.rank{rank}.err").write_text(errors.getvalue())
    if status != 0:
        raise RuntimeError(f"sj-rga {name} exited with status {status} on rank {rank}:\n{errors.getvalue()[-3000:]}")


# The commands run on 2 ranks in the shared job and in one process by the tests that compare them.
def cli_train_args(out: Path) -> list[str]:
    """PGD-AT with the RGA inner gradient, global batch 33 (split 17 + 16 over 2 ranks), 3 steps."""
    return ["train", "--data", "digits", "-T", "4", "--epochs", "1", "--max-batches", "3", "--batch-size", "33",
            "--adversarial", "pgd", "--adv-eps", "0.1", "--adv-steps", "2", "--no-progress", "--out", str(out)]


def cli_attack_args(checkpoint: Path) -> list[str]:
    """PGD at two ε with two gradients, 50 test digits in batches of 16 (on 2 ranks: batches 0, 2 and 1, 3)."""
    return ["attack", "--checkpoint", str(checkpoint), "--attack", "pgd", "--eps", "0.05,0.1", "--steps", "2",
            "--eot", "2", "--limit", "50", "--batch-size", "16", "--gradient", "stbp", "rga", "--no-progress"]


def cli_shuffle_args(checkpoint: Path) -> list[str]:
    return ["shuffle", "--checkpoint", str(checkpoint), "--limit", "50", "--batch-size", "16", "--no-progress"]


def cli_evaluate_args(checkpoint: Path) -> list[str]:
    """AutoAttack's fast suite on 40 test digits in batches of 16 (16, 16, 8)."""
    return ["evaluate", "--checkpoint", str(checkpoint), "--eps", "0.1", "--suite", "fast", "--limit", "40",
            "--batch-size", "16", "--no-progress"]


#: The module (USER_MODULE of tests/shared_job.py, in the folder given to the job) holding the user-model
#: factories of tests/test_layouts_cli.py.
STYLES_MODULE = "styles_two_ranks"


def cli_layout_args() -> list[str]:
    """A batch-first model returning ``(logits, hook)`` in its own layout, 12 test digits in batches of 4."""
    return ["evaluate", "--model", f"{STYLES_MODULE}:batch_first", "-T", "3", "--input-layout", "BT",
            "--model-output", "0", "--data", "digits", "--limit", "12", "--batch-size", "4", "--eps", "0.1",
            "--suite", "fast", "--no-progress"]


def shared(out: Path, poisson: Path, digits_checkpoint: Path, styles: Path) -> None:
    """Every 2-rank check of the test files in one job, each part in its own folder under ``out``: ``poisson``
    is a Poisson-input digits checkpoint, ``digits_checkpoint`` a direct-input one, ``styles`` the folder of
    STYLES_MODULE. A rank that fails writes its traceback to out/failed.rank{RANK}.txt."""
    try:
        run_cli("train", cli_train_args(out / "train" / "two.pt"), out)
        for part in ("library-train", "poisson", "engine"):
            (out / part).mkdir(exist_ok=True)
        train_small(out / "library-train")
        evaluate_poisson(out / "poisson", poisson)
        run_cli("attack", [*cli_attack_args(poisson), "--out", str(out / "attack")], out)
        run_cli("shuffle", cli_shuffle_args(poisson), out)
        run_cli("evaluate", [*cli_evaluate_args(poisson), "--out", str(out / "evaluate")], out)
        suites_and_invariance(out / "engine", digits_checkpoint)
        sys.path.insert(0, str(styles))
        run_cli("layouts", [*cli_layout_args(), "--out", str(out / "layouts")], out)
        sys.path.remove(str(styles))
        (out / "wrapped").mkdir(exist_ok=True)
        wrapped_gradients(out / "wrapped")  # last: rank 1 ends at once and waits in the session's final barrier
    except BaseException:
        (out / f"failed.rank{distributed.world().rank}.txt").write_text(traceback.format_exc())
        raise


TASKS = {"fail": fail_on_rank_one, "shared": shared}

if __name__ == "__main__":
    task, folder = sys.argv[1], Path(sys.argv[2])
    with distributed.session("cpu"):
        TASKS[task](folder, *map(Path, sys.argv[3:]))
