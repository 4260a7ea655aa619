"""Per-sample losses that attacks ascend: cross-entropy, DLR and targeted DLR (Croce & Hein, ICML 2020).

Every function takes logits ``[B, classes]`` and class indices ``[B]`` and returns one loss per sample
``[B]`` (method §3). Higher means closer to (or further into) misclassification, so attacks ascend them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..validation import check_label_range

#: Added to DLR's denominator, as in Croce & Hein's code, so that tied logits give a finite loss.
DLR_EPS = 1e-12


def _check(logits: torch.Tensor, labels: torch.Tensor, min_classes: int, loss: str) -> None:
    if logits.dim() != 2:
        raise ValueError(f"{loss} takes logits [B, classes], got shape {tuple(logits.shape)}")
    if logits.shape[1] < min_classes:
        raise ValueError(f"the {loss} loss needs at least {min_classes} classes; this model has {logits.shape[1]}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"{loss} takes labels [B] = ({logits.shape[0]},), got shape {tuple(labels.shape)}")
    check_label_range(labels, logits.shape[1])


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``CE(z, y) = −z_y + log Σ_i exp z_i`` per sample."""
    _check(logits, labels, 2, "cross-entropy")
    return F.cross_entropy(logits, labels, reduction="none")


def dlr(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Difference of logits ratio: ``−(z_y − max_{i≠y} z_i) / (z_π1 − z_π3)`` per sample.

    π sorts the logits in decreasing order. The ratio is invariant to shifting and rescaling the logits,
    so it stays informative when the logits are spike rates on a coarse grid. It is positive exactly when
    the sample is misclassified.
    """
    _check(logits, labels, 3, "DLR")
    ordered = logits.sort(dim=1, descending=True).values
    true = logits.gather(1, labels[:, None])[:, 0]
    top_is_true = logits.argmax(1) == labels
    best_other = torch.where(top_is_true, ordered[:, 1], ordered[:, 0])
    return -(true - best_other) / (ordered[:, 0] - ordered[:, 2] + DLR_EPS)


def targeted_dlr(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Targeted DLR: ``−(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2)`` per sample, ``y`` true, ``t`` target."""
    _check(logits, labels, 4, "targeted DLR")
    _check(logits, targets, 4, "targeted DLR")
    ordered = logits.sort(dim=1, descending=True).values
    true = logits.gather(1, labels[:, None])[:, 0]
    target = logits.gather(1, targets[:, None])[:, 0]
    return -(true - target) / (ordered[:, 0] - 0.5 * (ordered[:, 2] + ordered[:, 3]) + DLR_EPS)


LOSSES = ("ce", "dlr")
