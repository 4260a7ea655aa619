"""BPTR: backward pass through rate (the HART authors' code; method §2).

    dL/dX[t] = dL/dS[t] · 1[Σ_t S[t] > 0]

straight-through on the neurons that fired at least once in the window, no path through the membrane.
Time-uniform: the fast path records 1[fired]. Any spiking neuron whose multi-step forward returns spikes
shaped like its input can take it (no rate mapping needed).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn

from ..neuron import StockRun
from .time_uniform import TimeUniformEstimator


@dataclass(frozen=True)
class BPTR(TimeUniformEstimator):
    r"""Backward pass through rate (the HART authors' code; method §2)::

        dL/dX[t] = dL/dS[t] · 1[Σ_t S[t] > 0]

    the spikes' gradient passes straight to the input of every neuron that fired at least once in the
    window, and is zero for silent neurons; no path through the membrane.

    Arguments: none.

    Examples::

        >>> classifier = sj_rga.SNNClassifier(model, T=8, gradient=sj_rga.gradients.BPTR())
        >>> x_adv = sj_rga.attacks.PGD(classifier, eps=8 / 255, alpha=2 / 255, steps=10)(images, labels)
        >>> with sj_rga.gradient_mode(model, sj_rga.gradients.BPTR()):  # any model, your own loop
        ...     model(x_seq).mean(0).sum().backward()
    """

    name: ClassVar[str] = "bptr"

    def check_neuron(self, node: nn.Module) -> None:
        """Every spiking neuron: BPTR needs only its spikes."""

    def slope_of(self, node: nn.Module, run: StockRun) -> torch.Tensor:
        return run.spikes.amax(0)
