"""The time-uniform estimators (RGA, BPTR, HART; method §2): one slope per neuron, the same at every step.

Each runs the layer's exact forward without autograd, records a slope ``[B, ...]`` from it, and gives
``dL/dX[t] = dL/dS[t] · slope``. With per-step affine layers between neurons the whole input gradient is then
one T = 1 backward through the recorded slopes (:func:`sj_rga.fast.fast_logits`), which the estimators take
whenever :func:`sj_rga.fast.use_fast_path` allows.
"""
from __future__ import annotations

import abc
from typing import ClassVar, Optional

import torch
import torch.nn as nn

from ..fast import fast_logits, use_fast_path
from ..neuron import StockRun, exact_forward
from ..ops import ScaledGradientFunction
from ..ops.torch_backend import mean_current
from .base import LogitsFunction, Statistics
from .mode import LayerEstimator


class TimeUniformEstimator(LayerEstimator):
    """An estimator whose per-layer backward multiplies by one slope per neuron (the fast path serves it)."""

    #: Whether :meth:`slope` needs the charged potential H[t] of every step.
    needs_potentials: ClassVar[bool] = False

    def current_gain(self, node: nn.Module) -> float:
        """The factor of the recorded mean input (1, or RGA's dI/dX)."""
        return 1.0

    @abc.abstractmethod
    def slope(self, node: nn.Module, run: StockRun) -> torch.Tensor:
        """The derivative ``[B, ...]`` of the layer's spikes by its input, the same at every step."""

    def run(self, node: nn.Module, x_seq: torch.Tensor) -> StockRun:
        """The exact run of a stock neuron, without autograd, with what :meth:`slope` needs."""
        return exact_forward(node, x_seq, self.current_gain(node), charged=self.needs_potentials)

    def own_run(self, node: nn.Module, x_seq: torch.Tensor, spikes: torch.Tensor) -> StockRun:
        """The same for a neuron that ran its own forward and returned ``spikes``."""
        gain = self.current_gain(node)
        return StockRun(spikes, mean_current(x_seq.detach(), gain), gain)

    def stock_layer(self, node: nn.Module, x_seq: torch.Tensor, state: object) -> torch.Tensor:
        run = self.run(node, x_seq)
        return ScaledGradientFunction.apply(x_seq, run.spikes, self.slope(node, run))

    def own_layer(self, node: nn.Module, x_seq: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
        return ScaledGradientFunction.apply(x_seq, spikes, self.slope(node, self.own_run(node, x_seq, spikes)))

    def check_model(self, model: nn.Module, path: str) -> None:
        super().check_model(model, path)
        use_fast_path(model, path)

    def logits(self, model: nn.Module, x_seq: torch.Tensor, logits: LogitsFunction, *, path: str = "auto",
               statistics: Optional[Statistics] = None, update: bool = True) -> torch.Tensor:
        if torch.is_grad_enabled() and use_fast_path(model, path):
            return fast_logits(model, x_seq, logits, self)
        return super().logits(model, x_seq, logits, path=path, statistics=statistics, update=update)
