"""Library calls inside a torch.distributed job, run by tests/test_distributed.py under torchrun (gloo, CPU).

    python -m torch.distributed.run --standalone --nproc_per_node=N tests/distributed_worker.py TASK OUT_DIR

Rank 0 writes what it got to OUT_DIR; the test compares it with one process's result.
"""
import sys
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


def evaluate_poisson(out: Path) -> None:
    """sj_rga.evaluate and shuffle_test inside the job: a Poisson-input classifier (seeded, EOT 2), PGD with a
    random start and AutoAttack's fast suite, 50 digits in batches of 16 (the last batch has 2)."""
    from sj_rga import SNNClassifier, evaluate, shuffle_test
    from sj_rga.attacks import PGD, AutoAttack

    torch.manual_seed(0)
    model = models.build("digits_snn", 10)
    model.load_state_dict(torch.load(out / "model.pt", weights_only=True))
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


def suites_and_invariance(out: Path) -> None:
    """tests/test_engine.py's evaluations inside the job: the library's (rank 0 writes them to library.pt) and
    ``sj-rga evaluate``'s for each suite, run by the CLI's own entry point as ``torchrun -m sj_rga`` runs it
    (in this process, to spare a second job's start-up; its results in cli-VERSION/)."""
    from sj_rga.cli import main

    checkpoint = out / "digits.pt"
    found = {version: library_suites(checkpoint, version) for version in ("fast", "standard")}
    invariance = invariance_records(checkpoint, 8)
    for version in found:
        if main(cli_suite_args(checkpoint, version, out / f"cli-{version}")) != 0:
            raise RuntimeError(f"sj-rga evaluate --suite {version} failed")
    if distributed.world().main:
        torch.save({**{version: (report.as_dict(), records) for version, (report, records) in found.items()},
                    "invariance": invariance}, out / "library.pt")


TASKS = {"train": train_small, "fail": fail_on_rank_one, "evaluate": evaluate_poisson,
         "wrapped": wrapped_gradients, "suites": suites_and_invariance}

if __name__ == "__main__":
    task, folder = sys.argv[1], Path(sys.argv[2])
    with distributed.session("cpu"):
        TASKS[task](folder)
