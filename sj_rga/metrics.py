"""Clean accuracy, robust accuracy and the paper's attack success rate (ASR), over tensors or a DataLoader.

Per sample, an evaluation records whether the target classifies it correctly clean (``clean_ok``) and
after the attack (``robust_ok``) and, for :class:`~sj_rga.attacks.AutoAttack`, which attack of the suite
broke it (``broken_by``); the report sums these (:func:`score_batch`, :func:`summarise`). The batch loop is
the evaluation engine's (:mod:`sj_rga.engine`), the one ``sj-rga evaluate`` runs.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Optional, Sequence, Union

import torch

from . import distributed, engine, masking
from .attacks.autoattack import AttackBreakdown, AutoAttack
from .batching import Batch, Data, batch_size_of, batches
from .classifier import SNNClassifier
from .runs import RunFolder

Attacker = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

ASR_DEFINITION = ("ASR (Bu et al. 2023): among the samples the target classifies correctly without attack, "
                  "the share it misclassifies after the attack")


@dataclass(frozen=True)
class AttackReport:
    """Accuracies and ASR as fractions in [0, 1]; counts of samples. ``breakdown`` (AutoAttack only):
    per attack of the suite, in order, the samples it ran on, broke, and its seconds. ``batch_size``: the
    batches the evaluation was cut into (the results do not depend on it; recorded all the same). ``checks``:
    the gradient-masking checks (:mod:`sj_rga.masking`), a list of ``{"name", "value", "verdict",
    "message"}``; None where none ran."""

    clean_accuracy: float
    robust_accuracy: float
    attack_success_rate: float
    samples: int
    clean_correct: int
    asr_definition: str = ASR_DEFINITION
    breakdown: Optional[tuple[dict, ...]] = None
    batch_size: Optional[int] = None
    checks: Optional[list[dict]] = None

    def as_dict(self) -> dict:
        return asdict(self)


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


def score_batch(target: SNNClassifier, attack: Optional[Attacker], x: torch.Tensor, y: torch.Tensor) -> BatchOutcome:
    """Attack one batch and score it on ``target``, per sample."""
    clean_ok = _predict(target, x) == y
    if attack is None:
        return BatchOutcome(clean_ok.cpu(), clean_ok.cpu())
    robust_ok = _predict(target, attack(x, y)) == y
    broken_by = attack.last_result.broken_by.cpu() if isinstance(attack, AutoAttack) else None
    return BatchOutcome(clean_ok.cpu(), robust_ok.cpu(), broken_by)


def summarise(clean_ok: torch.Tensor, robust_ok: torch.Tensor, breakdown: Optional[Sequence[dict]] = None,
              batch_size: Optional[int] = None) -> AttackReport:
    """The report over per-sample outcomes (boolean tensors ``[N]``)."""
    samples, clean_correct = int(clean_ok.numel()), int(clean_ok.sum())
    if samples == 0:
        raise ValueError("data holds no samples")
    broken = int((clean_ok & ~robust_ok).sum())
    asr = broken / clean_correct if clean_correct else float("nan")
    return AttackReport(clean_correct / samples, int(robust_ok.sum()) / samples, asr, samples, clean_correct,
                        breakdown=None if breakdown is None else tuple(breakdown), batch_size=batch_size)


def attack_batch(target: SNNClassifier, attack: Optional[Attacker], batch: Batch,
                 device: Union[None, str, torch.device] = None) -> dict[str, Any]:
    """Attack one batch and score it on ``target`` (restarted first): the batch's record, in plain values:
    per sample ``labels``, ``clean_ok``, ``robust_ok`` and, for AutoAttack, ``broken_by``; AutoAttack's
    per-attack ``attacked`` counts and ``attack_seconds``; the batch's ``seconds``."""
    x, y = (batch.x, batch.y) if device is None else (batch.x.to(device), batch.y.to(device))
    start = time.perf_counter()
    target.restart()
    outcome = score_batch(target, attack, x, y)
    record: dict[str, Any] = {"labels": y.tolist(), "clean_ok": outcome.clean_ok.tolist(),
                              "robust_ok": outcome.robust_ok.tolist()}
    if isinstance(attack, AutoAttack):
        record.update(broken_by=outcome.broken_by.tolist(), attacked=list(attack.last_result.attacked),
                      attack_seconds=list(attack.last_result.seconds))
    record["seconds"] = time.perf_counter() - start
    return record


def attack_records(target: SNNClassifier, attack: Optional[Attacker], data: Data, batch_size: int = 256,
                   device: Union[None, str, torch.device] = None, progress: Optional[bool] = None,
                   description: str = "attack", folder: Optional[RunFolder] = None,
                   log: Optional[Callable[[str], None]] = None) -> list[dict[str, Any]]:
    """The records of :func:`attack_batch` for every batch of ``data``, by the evaluation engine
    (:func:`sj_rga.engine.run`: resumable with ``folder``, dealt in rounds over torch.distributed ranks,
    randomness per sample), in batch order, on every rank."""
    if not isinstance(target, SNNClassifier):
        raise TypeError(f"target must be an sj_rga.SNNClassifier, got {type(target).__name__}")
    if isinstance(attack, AutoAttack):
        attack.reset_breakdown()  # its own tally then covers this evaluation (this rank's batches)
    return engine.run(data, lambda batch: attack_batch(target, attack, batch, device), batch_size, folder,
                      progress, description, log)


def report_of(records: Sequence[dict[str, Any]], suite: Optional[AutoAttack] = None,
              batch_size: Optional[int] = None) -> AttackReport:
    """The :class:`AttackReport` of per-batch records; with ``suite``, its per-attack breakdown summed over
    the batches; ``batch_size`` as recorded (:func:`sj_rga.batching.batch_size_of`)."""
    if not records:
        raise ValueError("data holds no samples")
    breakdown = None
    if suite is not None:
        breakdown = [AttackBreakdown(entry.name, sum(r["attacked"][i] for r in records),
                                     sum(1 for r in records for b in r["broken_by"] if b == i),
                                     sum(r["attack_seconds"][i] for r in records)).as_dict()
                     for i, entry in enumerate(suite.attacks)]
    flat = {key: torch.tensor([v for r in records for v in r[key]], dtype=torch.bool)
            for key in ("clean_ok", "robust_ok")}
    return summarise(flat["clean_ok"], flat["robust_ok"], breakdown, batch_size)


def evaluate(
    target: SNNClassifier,
    attack: Optional[Attacker],
    data: Data,
    batch_size: int = 256,
    device: Union[None, str, torch.device] = None,
    progress: Optional[bool] = None,
    description: str = "attack",
    folder: Optional[RunFolder] = None,
    checks: Optional[bool] = None,
) -> AttackReport:
    """Attack ``data`` and score the adversarial examples on ``target``.

    ``attack(x, y)`` may be built on another (source) classifier: a black-box transfer. ``attack=None``
    measures clean accuracy only. With :class:`~sj_rga.attacks.AutoAttack` the report is the worst case
    over its suite, with the per-attack ``breakdown`` of this evaluation. ``progress=None`` shows progress
    (:func:`sj_rga.progress.progress_bar`) when there are more than 4 batches. ``folder``
    (:class:`~sj_rga.runs.RunFolder`) makes the evaluation resumable. ``checks`` (default: with AutoAttack
    only) adds the gradient-masking checks (:func:`sj_rga.masking.evaluation_checks`) on the first samples of
    the data (rank 0 runs them and every rank gets them), as ``report.checks``.

    This is the batch loop of ``sj-rga evaluate`` (:mod:`sj_rga.engine`): each batch starts with
    ``target.restart()`` and declares its samples' data-set indices, and every random draw (random starts,
    Poisson spikes, Square's search) comes from the stream of the sample it is for, so ``evaluate(target,
    AutoAttack(target, eps, seed=s), data, batch_size=b)`` gives the same per-sample results as ``sj-rga
    evaluate --seed s`` and the same whatever ``batch_size`` and the number of ranks (method §3 lists the
    exceptions: PDSG's σ pools over the batch). Inside a torch.distributed job (:mod:`sj_rga.distributed`) the
    batches are dealt in rounds over the ranks and every rank returns the report of the whole data.
    """
    records = attack_records(target, attack, data, batch_size, device, progress, description, folder)
    suite = attack if isinstance(attack, AutoAttack) else None
    report = report_of(records, suite, batch_size_of(data, batch_size))
    if not (checks or (checks is None and suite is not None)):
        return report
    return replace(report, checks=masking_checks_of(target, attack, data, batch_size, records, report, device))


def masking_checks_of(target: SNNClassifier, attack: Optional[Attacker], data: Data, batch_size: int,
                      records: Sequence[dict[str, Any]], report: AttackReport,
                      device: Union[None, str, torch.device] = None) -> Optional[list[dict]]:
    """The gradient-masking checks (:func:`sj_rga.masking.evaluation_checks`) of an evaluation, on the first
    samples of ``data`` with their verdicts from ``records``: run by rank 0, the same list on every rank."""
    world = distributed.world()
    found = None
    if world.main:
        x, y = masking.first_samples((batch.x, batch.y) for batch in batches(data, batch_size)[0])
        if device is not None:
            x, y = x.to(device), y.to(device)
        robust_ok = torch.tensor([v for r in records for v in r["robust_ok"]][:len(y)], dtype=torch.bool)
        tallies = None if report.breakdown is None else [(b["attacked"], b["broken"]) for b in report.breakdown]
        found = masking.evaluation_checks(target, attack, x, y, robust_ok, tallies)
    return distributed.broadcast(found, world)
