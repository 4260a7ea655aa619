"""Clean accuracy, robust accuracy and the paper's attack success rate (ASR), over tensors or a DataLoader.

Per sample, an evaluation records whether the target classifies it correctly clean (``clean_ok``) and
after the attack (``robust_ok``) and, for :class:`~sj_rga.attacks.AutoAttack`, which attack of the suite
broke it (``broken_by``); the report sums these (:func:`score_batch`, :func:`summarise`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Callable, Iterable, Optional, Sequence, Union

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from . import distributed, masking
from .attacks.autoattack import AttackBreakdown, AutoAttack
from .classifier import SNNClassifier

Data = Union[tuple[torch.Tensor, torch.Tensor], DataLoader, Iterable]

ASR_DEFINITION = ("ASR (Bu et al. 2023): among the samples the target classifies correctly without attack, "
                  "the share it misclassifies after the attack")


@dataclass(frozen=True)
class AttackReport:
    """Accuracies and ASR as fractions in [0, 1]; counts of samples. ``breakdown`` (AutoAttack only):
    per attack of the suite, in order, the samples it ran on, broke, and its seconds. ``checks``: the
    gradient-masking checks (:mod:`sj_rga.masking`), a list of ``{"name", "value", "verdict", "message"}``;
    None where none ran."""

    clean_accuracy: float
    robust_accuracy: float
    attack_success_rate: float
    samples: int
    clean_correct: int
    asr_definition: str = ASR_DEFINITION
    breakdown: Optional[tuple[dict, ...]] = None
    checks: Optional[list[dict]] = None

    def as_dict(self) -> dict:
        return asdict(self)


def batches(data: Data, batch_size: int = 256) -> tuple[Iterable[tuple[torch.Tensor, torch.Tensor]], Optional[int]]:
    """(iterator of (x, y) batches, number of batches or None) for a (x, y) pair of tensors or a loader."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"inputs and labels differ in length: {x.shape[0]} vs {y.shape[0]}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        starts = range(0, x.shape[0], batch_size)
        return ((x[i:i + batch_size], y[i:i + batch_size]) for i in starts), len(starts)
    if isinstance(data, torch.Tensor):
        raise TypeError("data must be an (inputs, labels) pair or a DataLoader, not a single tensor")
    if not isinstance(data, Iterable):
        raise TypeError(f"data must be an (inputs, labels) pair or a DataLoader, got {type(data).__name__}")
    return iter(data), (len(data) if hasattr(data, "__len__") else None)


def _predict(classifier: SNNClassifier, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return classifier(x).argmax(-1)


@dataclass
class BatchOutcome:
    """Per sample of one batch (tensors ``[B]`` on the CPU): ``clean_ok`` and ``robust_ok`` (the target's
    answer is right without / with the attack) and ``broken_by`` (AutoAttack only: the index in its suite
    of the attack whose example was returned, -1 for none; judged on the attack's own classifier)."""

    clean_ok: torch.Tensor
    robust_ok: torch.Tensor
    broken_by: Optional[torch.Tensor] = None


def score_batch(target: SNNClassifier, attack: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]],
                x: torch.Tensor, y: torch.Tensor) -> BatchOutcome:
    """Attack one batch and score it on ``target``, per sample."""
    clean_ok = _predict(target, x) == y
    if attack is None:
        return BatchOutcome(clean_ok.cpu(), clean_ok.cpu())
    robust_ok = _predict(target, attack(x, y)) == y
    broken_by = attack.last_result.broken_by.cpu() if isinstance(attack, AutoAttack) else None
    return BatchOutcome(clean_ok.cpu(), robust_ok.cpu(), broken_by)


def summarise(clean_ok: torch.Tensor, robust_ok: torch.Tensor,
              breakdown: Optional[Sequence[dict]] = None) -> AttackReport:
    """The report over per-sample outcomes (boolean tensors ``[N]``)."""
    samples, clean_correct = int(clean_ok.numel()), int(clean_ok.sum())
    if samples == 0:
        raise ValueError("data holds no samples")
    broken = int((clean_ok & ~robust_ok).sum())
    asr = broken / clean_correct if clean_correct else float("nan")
    return AttackReport(clean_correct / samples, int(robust_ok.sum()) / samples, asr, samples, clean_correct,
                        breakdown=None if breakdown is None else tuple(breakdown))


def evaluate(
    target: SNNClassifier,
    attack: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]],
    data: Data,
    batch_size: int = 256,
    device: Union[None, str, torch.device] = None,
    progress: Optional[bool] = None,
    description: str = "attack",
    checks: Optional[bool] = None,
) -> AttackReport:
    """Attack ``data`` and score the adversarial examples on ``target``.

    ``attack(x, y)`` may be built on another (source) classifier: a black-box transfer. ``attack=None``
    measures clean accuracy only. With :class:`~sj_rga.attacks.AutoAttack` the report is the worst case
    over its suite, with the per-attack ``breakdown`` of this evaluation. ``progress=None`` shows a tqdm
    bar when there are more than 4 batches. Each batch starts with ``target.restart()``, as every attack run
    does, so its Poisson spikes depend on the batch alone. Inside a torch.distributed job
    (:mod:`sj_rga.distributed`) batch ``i`` is scored by rank ``i mod N`` and every rank returns the report
    of the whole data, equal to one process's. ``checks`` (default: with AutoAttack only) adds the
    gradient-masking checks (:func:`sj_rga.masking.evaluation_checks`) on the first samples of batch 0 (rank
    0 runs them and every rank gets them), as ``report.checks``.
    """
    if not isinstance(target, SNNClassifier):
        raise TypeError(f"target must be an sj_rga.SNNClassifier, got {type(target).__name__}")
    world = distributed.world()
    owned, total = distributed.owned_batches(data, batch_size, world)
    show = (progress if progress is not None else (total is None or total > 4)) and world.main
    suite = attack if isinstance(attack, AutoAttack) else None
    if suite is not None:
        suite.reset_breakdown()
    outcomes: dict[int, tuple[BatchOutcome, Optional[list[tuple[int, int, float]]]]] = {}
    mine = None if total is None else len(range(world.rank, total, world.size))
    first = None  # batch 0 (rank 0's), for the gradient-masking checks
    for index, (x, y) in tqdm(owned, total=mine, desc=description, disable=not show, leave=False):
        if device is not None:
            x, y = x.to(device), y.to(device)
        target.restart()
        outcome = score_batch(target, attack, x, y)
        tally = None
        if suite is not None:  # what each attack of the suite did on this batch
            done = suite.last_result
            tally = [(done.attacked[i], int((done.broken_by == i).sum()), done.seconds[i])
                     for i in range(len(suite.attacks))]
        outcomes[index] = (outcome, tally)
        if index == 0 and (checks or (checks is None and suite is not None)):
            first = (x, y, outcome.robust_ok)
    outcomes = distributed.gather_batches(outcomes, world)
    if not outcomes:
        raise ValueError("data holds no samples")
    breakdown = None
    if suite is not None:
        breakdown = [AttackBreakdown(entry.name, *(sum(t[i][k] for _, t in outcomes.values()) for k in range(3)))
                     .as_dict() for i, entry in enumerate(suite.attacks)]
    report = summarise(torch.cat([o.clean_ok for o, _ in outcomes.values()]),
                       torch.cat([o.robust_ok for o, _ in outcomes.values()]), breakdown)
    tallies = None if breakdown is None else [(b["attacked"], b["broken"]) for b in breakdown]
    found = None if first is None else masking.evaluation_checks(target, attack, *first, tallies)
    return replace(report, checks=distributed.broadcast(found, world))
