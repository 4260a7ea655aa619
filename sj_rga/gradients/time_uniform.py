"""The time-uniform estimators (RGA, BPTR, HART; method §2): one slope per neuron, the same at every step.

Each runs the layer's exact forward without autograd, records a slope ``[B, ...]`` on the way, and gives
``dL/dX[t] = dL/dS[t] · slope`` (HART's per-layer backward averages over time first, which is the same
when the incoming gradient is the same at every step). With per-step affine layers between neurons the
whole input gradient is then one T = 1 backward through the recorded slopes
(:func:`sj_rga.fast.fast_logits`), which the estimators take whenever :func:`sj_rga.fast.use_fast_path`
allows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

from .._compat import reset_net
from ..fast import FastPathMismatch, fast_logits, refuse_at_run_time, use_fast_path
from ..neuron import StockRun, exact_forward
from ..ops import ScaledGradientFunction
from ..ops.torch_backend import mean_current
from .base import LogitsFunction, Statistics
from .mode import LayerEstimator


@dataclass(frozen=True)
class LayerSlope:
    """A layer's exact run and its recorded slope ``[B, ...]`` (dL/dX[t] = dL/dS[t] · slope)."""

    run: StockRun
    slope: torch.Tensor


class TimeUniformEstimator(LayerEstimator):
    """An estimator whose per-layer backward multiplies by one slope per neuron (the fast path serves it)."""

    def current_gain(self, node: nn.Module) -> float:
        """The factor of the recorded mean input (1, or RGA's dI/dX)."""
        return 1.0

    def slope_of(self, node: nn.Module, run: StockRun) -> torch.Tensor:
        """The slope from the spikes and Ī alone, for the estimators that need nothing else (RGA, BPTR)."""
        raise ValueError(f"the {self.name.upper()} gradient needs each step's membrane potential, which "
                         f"{type(node).__name__}'s own forward does not give")

    def record(self, node: nn.Module, x_seq: torch.Tensor) -> LayerSlope:
        """The exact run of an IF/LIF/PLIF neuron with unchanged dynamics, and its slope."""
        run = exact_forward(node, x_seq, self.current_gain(node))
        return LayerSlope(run, self.slope_of(node, run))

    def record_own(self, node: nn.Module, x_seq: torch.Tensor, spikes: torch.Tensor) -> LayerSlope:
        """The same for a neuron that ran its own forward and returned ``spikes``."""
        gain = self.current_gain(node)
        run = StockRun(spikes, mean_current(x_seq.detach(), gain), gain)
        return LayerSlope(run, self.slope_of(node, run))

    def stock_layer(self, node: nn.Module, x_seq: torch.Tensor, state: object) -> torch.Tensor:
        found = self.record(node, x_seq)
        return ScaledGradientFunction.apply(x_seq, found.run.spikes, found.slope)

    def own_layer(self, node: nn.Module, x_seq: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
        return ScaledGradientFunction.apply(x_seq, spikes, self.record_own(node, x_seq, spikes).slope)

    def check_model(self, model: nn.Module, path: str) -> None:
        """As the base's, and ``path='fast'`` on a model the fast path cannot be proven for is refused now. The
        proof traces the model's forward (torch.fx runs its Python code on proxies), so ``'auto'`` defers it to
        the first gradient: a classifier that only ever runs without gradients never traces."""
        super().check_model(model, path)
        if path != "auto":
            use_fast_path(model, path)

    def logits(self, model: nn.Module, x_seq: torch.Tensor, logits: LogitsFunction, *, path: str = "auto",
               statistics: Optional[Statistics] = None, update: bool = True) -> torch.Tensor:
        if torch.is_grad_enabled() and use_fast_path(model, path):
            try:
                return fast_logits(model, x_seq, logits, self)
            except FastPathMismatch as mismatch:  # the run-time check: never a wrong gradient
                if path == "fast":
                    raise
                refuse_at_run_time(model, str(mismatch))
                reset_net(model)
        return super().logits(model, x_seq, logits, path=path, statistics=statistics, update=update)
