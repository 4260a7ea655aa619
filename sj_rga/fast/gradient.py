"""The fast path of the time-uniform estimators (method §1.5 and §2): a no-grad T-step forward that records,
for every spiking layer, its firing rate and the estimator's slope per neuron, then one forward/backward at
T = 1 in which each spiking layer outputs its rate and has that slope as its derivative.

RGA records ``g(Ī)·dI/dX``, BPTR ``1[fired]``, HART ``mean_t max(0, γ − |u[t]|)/γ² · dI/dX``. Why the values
agree with each estimator's per-layer backward when the model passes
:func:`~sj_rga.fast.fast_path_obstacle`: the logits are ``mean_t A(S_L[t])`` for an affine ``A``, so
``dL/dS_L[t] = (1/T)·dL/dr_L`` with ``r_L`` the last layer's rate, the same at every t; a time-uniform
backward maps a gradient that is the same at every t to one that is the same at every t, multiplied by the
recorded slope, and the affine maps between layers have the same Jacobian at every t; so
``dL/dX_l[t] = (1/T)·dL/dX̄_l`` in every layer, where ``X̄_l`` is the layer's input in the T = 1 pass. At the
network input the T = 1 pass is fed ``x̄ = mean_t x_seq[t]``, and autograd through that mean gives
``dL/dx_seq[t] = (1/T)·dL/dx̄`` for each t, which is what the per-layer backward gives there. Hence the same
gradient for the pixel (direct: summed over t; Poisson: straight-through, summed over t), for each event
frame, and for the parameters.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn as nn

from ..errors import UserModelError
from ..intercept import attach
from ..mapping import spiking_neurons, time_major
from ..neuron import Original, StockRun
from ..ops import ScaledGradientFunction
from ..ops.torch_backend import accumulation_dtype
from .exactness import mode_obstacle

if TYPE_CHECKING:  # at run time gradients imports fast, not the other way
    from ..gradients.base import LogitsFunction


class FastPathMismatch(RuntimeError):
    """The fast path's run-time check failed: the model does not run alike at T = 1 (a time-mixing or
    non-affine operation the graph did not show), so its gradient would be wrong. ``SNNClassifier`` with
    ``rga_path='auto'`` then takes the per-layer backward; ``'fast'`` raises it."""


class Recorded(Protocol):
    """A layer's exact run (``run.spikes``, ``run.mean_current``, ``run.input_gain``) and its slope ``[B, ...]``."""

    run: StockRun
    slope: torch.Tensor


class TimeUniform(Protocol):
    """What the fast path needs of a time-uniform estimator (:class:`sj_rga.gradients.TimeUniformEstimator`)."""

    def record(self, node: nn.Module, x_seq: torch.Tensor) -> Recorded:
        """The exact no-grad run of an IF/LIF/PLIF neuron with unchanged dynamics, and its slope."""

    def record_own(self, node: nn.Module, x_seq: torch.Tensor, spikes: torch.Tensor) -> Recorded:
        """The same from the spikes another neuron's own forward returned."""


@dataclass(frozen=True)
class LayerRecord:
    """What one call of a spiking layer leaves for the T = 1 pass: N values each, no time axis.

    ``mean_current``: mean_t X[t] times ``input_gain`` ``[B, ...]`` (to check the T = 1 input); ``rate``: the
    mean spike count over T ``[B, ...]`` (spikes per step); ``slope``: the estimator's derivative ``[B, ...]``.
    """

    mean_current: torch.Tensor
    input_gain: float
    rate: torch.Tensor
    slope: torch.Tensor


def _spike_rate(spikes: torch.Tensor) -> torch.Tensor:
    """The mean spike count over T ``[B, ...]`` of spikes ``[T, B, ...]`` (exact: counts of 0/1)."""
    return spikes.to(accumulation_dtype(spikes.dtype)).mean(0).to(spikes.dtype)


def _multi_step_error(node: nn.Module) -> ValueError:
    return ValueError(f"{type(node).__name__} must map a time-major input [T, B, ...] to spikes of the same shape "
                      "(multi-step mode) for the fast gradient")


class _Recorder:
    """A neuron's handle in the T-step forward: exact spikes, and a :class:`LayerRecord` per call."""

    def __init__(self, estimator: TimeUniform, T: int):
        self.estimator, self.T = estimator, T
        self.records: list[LayerRecord] = []

    def _keep(self, found: Recorded) -> torch.Tensor:
        run = found.run
        self.records.append(LayerRecord(run.mean_current, run.input_gain, _spike_rate(run.spikes), found.slope))
        return run.spikes

    def stock(self, node: nn.Module, x_seq: torch.Tensor, original: Original) -> torch.Tensor:
        if not (isinstance(x_seq, torch.Tensor) and x_seq.dim() >= 2):
            raise _multi_step_error(node)
        return self._keep(self.estimator.record(node, x_seq))

    def own(self, node: nn.Module, x_seq: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
        if getattr(node, "step_mode", "m") != "m" or x_seq.dim() < 2 or spikes.shape != x_seq.shape:
            raise _multi_step_error(node)
        time_major(node, x_seq, self.T)  # a registered neuron must see the T steps on its leading dimension
        return self._keep(self.estimator.record_own(node, x_seq, spikes))


def _tolerance(value: torch.Tensor, scale: torch.Tensor) -> float:
    """Rounding allowance for comparing ``value`` with a reference of magnitude ``scale``: √eps·(1 + max|scale|)."""
    magnitude = float(scale.abs().max()) if scale.numel() else 0.0
    return torch.finfo(value.dtype).eps ** 0.5 * (1.0 + magnitude)


def _check_replay_input(node: nn.Module, x_replay: torch.Tensor, record: LayerRecord) -> None:
    """The replay input must be the mean of the T-step inputs (up to rounding) if the model is per-step affine.

    It has one step (the T = 1 pass), or S equal steps when the model makes its own time steps from a static
    input (``x.unsqueeze(0).repeat(T, ...)`` inside its forward): then every step carries the mean."""
    expected = record.mean_current / record.input_gain
    if x_replay.dim() < 1 or tuple(x_replay.shape[1:]) != tuple(expected.shape):
        raise FastPathMismatch(f"{type(node).__name__} got shape {tuple(x_replay.shape)} in the T = 1 pass, expected "
                               f"{(1, *expected.shape)}: the model does not run alike at T = 1")
    steps = x_replay.detach().to(expected.dtype)
    tolerance = _tolerance(x_replay, expected)
    spread = float((steps - steps[:1]).abs().max()) if steps.shape[0] > 1 else 0.0
    gap = float((steps[0] - expected).abs().max()) if steps.numel() else 0.0
    if not (gap <= tolerance and spread <= tolerance):
        raise FastPathMismatch(f"{type(node).__name__}: its input in the T = 1 pass differs from its mean input over T "
                               f"by {max(gap, spread):.3g} (tolerance {tolerance:.3g}); the modules between spiking "
                               "layers are not affine per time step, so the fast gradient would be wrong. "
                               "Use rga_path='layer'")


class _Replay:
    """A neuron's handle in the T = 1 pass: its recorded rate forward, its recorded slope backward."""

    def __init__(self, records: list[LayerRecord]):
        self.records = records

    def _replay(self, node: nn.Module, x_mean: torch.Tensor) -> torch.Tensor:
        if not self.records:
            raise FastPathMismatch(f"{type(node).__name__} ran more often in the T = 1 pass than in the T-step "
                                   "forward: the model's control flow depends on T")
        record = self.records.pop(0)
        _check_replay_input(node, x_mean, record)
        # forward: the recorded rate at each step; backward: dL/dX̄ = dL/dr · slope, as the per-layer backward
        rate = record.rate.unsqueeze(0).expand(x_mean.shape[0], *record.rate.shape)
        return ScaledGradientFunction.apply(x_mean, rate, record.slope.unsqueeze(0))

    def stock(self, node: nn.Module, x_mean: torch.Tensor, original: Original) -> torch.Tensor:
        return self._replay(node, x_mean)

    def own(self, node: nn.Module, x_mean: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
        return self._replay(node, x_mean)


def fast_logits(model: nn.Module, x_seq: torch.Tensor, logits: LogitsFunction, estimator: TimeUniform) -> torch.Tensor:
    """Logits ``[B, classes]`` of ``model`` on ``x_seq`` whose backward is ``estimator``'s per-layer backward,
    computed fast.

    ``x_seq``: the encoded network input ``[T, B, ...]`` (after normalisation), still attached to the
    autograd graph of the pixel-space batch it came from. ``logits(seq)`` runs ``model`` on a time-major
    input and averages its output over time; the neurons must be in multi-step mode with fresh state, and
    BatchNorm/Dropout in eval mode. The caller decides exactness (:func:`~sj_rga.fast.use_fast_path`); a model
    that does not run alike at T = 1 raises :class:`FastPathMismatch` rather than give a wrong gradient.

    The value is the exact T-step logits (the forward runs without an autograd graph and keeps N values per
    neuron); the gradient flows through one T = 1 pass fed the time mean of ``x_seq``. Without gradient mode
    it is the plain T-step forward. Neuron state is left as the T-step forward leaves it.
    """
    obstacle = mode_obstacle(model)
    if obstacle is not None:
        raise ValueError(obstacle)
    if not torch.is_grad_enabled():
        return logits(x_seq)
    recorders = {node: _Recorder(estimator, x_seq.shape[0]) for node in spiking_neurons(model)}
    with torch.no_grad(), attach(recorders):
        exact = logits(x_seq.detach())
    try:
        with attach({node: _Replay(recorder.records) for node, recorder in recorders.items()}):
            fast = logits(x_seq.mean(0, keepdim=True))
    except UserModelError as error:  # it ran at T steps: the model's forward fixes T
        raise FastPathMismatch(f"the model does not run at T = 1 ({error})") from error
    unused = sorted({type(node).__name__ for node, recorder in recorders.items() if recorder.records})
    if unused:
        raise FastPathMismatch(f"{', '.join(unused)} ran fewer times in the T = 1 pass than in the T-step forward: "
                               "the model's control flow depends on T")
    gap = float((fast.detach() - exact).abs().max()) if exact.numel() else 0.0
    if not gap <= _tolerance(fast, exact):
        raise FastPathMismatch(f"the logits of the T = 1 pass differ from the T-step logits by {gap:.3g}: the "
                               "operations after the last spiking layer are not affine per time step (a sum over "
                               "time, a nonlinearity), so the fast gradient would be wrong. Use rga_path='layer'")
    return exact + (fast - fast.detach())
