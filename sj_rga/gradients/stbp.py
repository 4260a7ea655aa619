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
    """Spatio-temporal backpropagation: the model's own surrogate, full BPTT. No hyper-parameters."""

    name: ClassVar[str] = "stbp"

    def logits(self, model: nn.Module, x_seq: torch.Tensor, logits: LogitsFunction, *, path: str = "auto",
               statistics: Optional[Statistics] = None, update: bool = True) -> torch.Tensor:
        return logits(x_seq)
