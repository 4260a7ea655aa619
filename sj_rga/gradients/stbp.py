"""STBP / BPTT: the model's own gradient (Wu et al., 2018; method §1.4 and §2).

    dL/dX[t] by backpropagation through time, with each neuron's own surrogate and ``detach_reset``

The baseline every other estimator is compared with; nothing of the model is intercepted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
import torch.nn as nn

from .base import GradientEstimator, LogitsFunction, Statistics


@dataclass(frozen=True)
class STBP(GradientEstimator):
    r"""Spatio-temporal backpropagation (Wu et al., 2018; method §1.4 and §2): the model's own gradient::

        dL/dX[t] by backpropagation through time, with each neuron's own surrogate and ``detach_reset``

    The baseline every other estimator is compared with; nothing of the model is intercepted.

    Arguments: none (the neurons' own surrogate functions set the gradient).

    Examples::

        >>> classifier = sj_rga.SNNClassifier(model, T=8, gradient=sj_rga.gradients.STBP())   # or "stbp"
        >>> x_adv = sj_rga.attacks.PGD(classifier, eps=8 / 255, alpha=2 / 255, steps=10)(images, labels)
        >>> model(x_seq).mean(0).sum().backward()    # outside sj-rga: plain BPTT is STBP
    """

    name: ClassVar[str] = "stbp"

    def logits(self, model: nn.Module, x_seq: torch.Tensor, logits: LogitsFunction, *, path: str = "auto",
               statistics: Optional[Statistics] = None, update: bool = True) -> torch.Tensor:
        return logits(x_seq)
