"""Library calls inside a torch.distributed job, run by tests/test_distributed.py under torchrun (gloo, CPU).

    python -m torch.distributed.run --standalone --nproc_per_node=N tests/distributed_worker.py TASK OUT_DIR

Rank 0 writes what it got to OUT_DIR; the test compares it with one process's result.
"""
import sys
from pathlib import Path

import torch

from sj_rga import distributed, models, training
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


TASKS = {"train": train_small, "fail": fail_on_rank_one, "evaluate": evaluate_poisson,
         "wrapped": wrapped_gradients}

if __name__ == "__main__":
    task, folder = sys.argv[1], Path(sys.argv[2])
    with distributed.session("cpu"):
        TASKS[task](folder)
