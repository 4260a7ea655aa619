"""The fast RGA gradient: a no-grad T-step forward that records Ī and the firing rate of every spiking
layer, then one forward/backward at T = 1 in which each spiking layer outputs its rate and has the slope
``g(Ī)·dI/dX`` (method §1.5). In the T-step forward, stock IF/LIF/PLIF neurons run the rate op's forward
(the stock spikes, written in place, Ī summed on the way); registered neurons run their own forward.

Why the values agree with the per-layer RGA backward (method §1.2) when the model passes
:func:`~sj_rga.fast.fast_path_obstacle`: the logits are ``mean_t A(S_L[t])`` for an affine ``A``, so
``dL/dS_L[t] = (1/T)·dL/dr_L`` with ``r_L`` the last layer's rate; the per-layer backward multiplies by the
same ``g(Ī)·dI/dX`` at every t and the affine maps between layers have the same Jacobian at every t, so
``dL/dX_l[t] = (1/T)·dL/dX̄_l`` in every layer, where ``X̄_l`` is the layer's input in the T = 1 pass. At the
network input the T = 1 pass is fed ``x̄ = mean_t x_seq[t]``, and autograd through that mean gives
``dL/dx_seq[t] = (1/T)·dL/dx̄`` for each t, which is what the per-layer backward gives there. Hence the same
gradient for the pixel (direct: summed over t; Poisson: straight-through, summed over t), for each event
frame, and for the parameters.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn as nn

from ..mapping import registered_mapping
from ..neuron import slope_spec, stock_forward_with_current
from ..ops import RateGradientFunction, SlopeSpec
from ..ops.torch_backend import accumulation_dtype, mean_current
from ..rate_mode import replaced_forwards, spiking_neurons
from ..surrogate import RGA
from .exactness import mode_obstacle

#: Maps a time-major network input ``[T, B, ...]`` to logits ``[B, classes]`` (the mean over T of the output).
LogitsFunction = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class LayerRecord:
    """What one call of a spiking layer leaves for the T = 1 pass: N values each, no time axis.

    ``mean_current``: Ī ``[B, ...]``, the mean effective input current over T (membrane-potential units
    per step, summed in float32 for half types); ``rate``: the mean spike count over T ``[B, ...]`` (spikes
    per step); ``slope``: g's parameters and dI/dX for this layer.
    """

    mean_current: torch.Tensor
    rate: torch.Tensor
    slope: SlopeSpec


def _spike_rate(spikes: torch.Tensor) -> torch.Tensor:
    """The mean spike count over T ``[B, ...]`` of spikes ``[T, B, ...]`` (exact: counts of 0/1)."""
    return spikes.to(accumulation_dtype(spikes.dtype)).mean(0).to(spikes.dtype)


def _multi_step_error(node: nn.Module) -> ValueError:
    return ValueError(f"{type(node).__name__} must map a time-major input [T, B, ...] to spikes of the same shape "
                      "(multi-step mode) for the fast RGA gradient")


def _stock_recorder(node: nn.Module, records: dict[nn.Module, list[LayerRecord]], rga: RGA) -> Callable:
    """An instance ``forward`` for a stock IF/LIF/PLIF neuron: its spikes by the rate op's forward, which sums
    Ī on the way, and a :class:`LayerRecord` appended per call."""

    def forward(x_seq: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if args or kwargs or getattr(node, "step_mode", "m") != "m" or not (
                isinstance(x_seq, torch.Tensor) and x_seq.dim() >= 2):
            raise _multi_step_error(node)
        slope = slope_spec(node, rga)
        spikes, current = stock_forward_with_current(node, x_seq, slope.input_gain)
        records.setdefault(node, []).append(LayerRecord(current, _spike_rate(spikes), slope))
        return spikes

    return forward


@contextlib.contextmanager
def _recording(neurons: list[nn.Module], records: dict[nn.Module, list[LayerRecord]], rga: RGA) -> Iterator[None]:
    """Every call of every neuron appends a :class:`LayerRecord`: stock neurons run the rate op's forward
    (:func:`_stock_recorder`); a registered neuron runs its own forward, recorded by a forward hook."""

    def record(node: nn.Module, args: tuple, spikes: object) -> None:
        x_seq = args[0] if args else None
        if not (isinstance(x_seq, torch.Tensor) and isinstance(spikes, torch.Tensor) and spikes.shape == x_seq.shape
                and x_seq.dim() >= 2):
            raise _multi_step_error(node)
        slope = slope_spec(node, rga)
        records.setdefault(node, []).append(
            LayerRecord(mean_current(x_seq, slope.input_gain), _spike_rate(spikes), slope))

    registered = [node for node in neurons if registered_mapping(node) is not None]
    stock = {node: _stock_recorder(node, records, rga) for node in neurons if registered_mapping(node) is None}
    handles = [node.register_forward_hook(record) for node in registered]
    try:
        with replaced_forwards(stock):
            yield
    finally:
        for handle in handles:
            handle.remove()


def _check_replay_input(node: nn.Module, x_mean: torch.Tensor, record: LayerRecord) -> None:
    """The T = 1 input must be the mean of the T-step inputs (up to rounding) if the model is per-step affine."""
    expected = record.mean_current / record.slope.input_gain
    if x_mean.shape != (1, *expected.shape):
        raise RuntimeError(f"{type(node).__name__} got shape {tuple(x_mean.shape)} in the T = 1 pass, expected "
                           f"{(1, *expected.shape)}: the model does not run alike at T = 1")
    tolerance = torch.finfo(x_mean.dtype).eps ** 0.5 * (1.0 + float(expected.abs().max()))
    gap = float((x_mean[0].detach().to(expected.dtype) - expected).abs().max())
    if not gap <= tolerance:
        raise RuntimeError(f"{type(node).__name__}: its input in the T = 1 pass differs from its mean input over T "
                           f"by {gap:.3g} (tolerance {tolerance:.3g}); the modules between spiking layers are not "
                           "affine per time step, so the fast RGA gradient would be wrong. Use rga_path='layer'")


def _replays(neurons: list[nn.Module], records: dict[nn.Module, list[LayerRecord]]) -> dict[nn.Module, Callable]:
    """For each neuron, a forward that returns its recorded rate with the RGA slope, in recorded call order."""

    def replay(node: nn.Module) -> Callable[..., torch.Tensor]:
        def forward(x_mean: torch.Tensor, *args, **kwargs) -> torch.Tensor:
            queue = records.get(node)
            if not queue:
                raise RuntimeError(f"{type(node).__name__} ran more often in the T = 1 pass than in the T-step "
                                   "forward: the model's control flow depends on T")
            record = queue.pop(0)
            _check_replay_input(node, x_mean, record)
            # forward: the recorded rate; backward: dL/dX̄ = dL/dr · g(Ī) · dI/dX, as the per-layer backward
            return RateGradientFunction.apply(x_mean, record.rate.unsqueeze(0), record.mean_current.unsqueeze(0),
                                              record.slope)

        return forward

    return {node: replay(node) for node in neurons}


def fast_rga_logits(model: nn.Module, x_seq: torch.Tensor, logits: LogitsFunction, rga: RGA) -> torch.Tensor:
    """Logits ``[B, classes]`` of ``model`` on ``x_seq`` whose backward is the per-layer RGA backward, computed fast.

    ``x_seq``: the encoded network input ``[T, B, ...]`` (after normalisation), still attached to the
    autograd graph of the pixel-space batch it came from. ``logits(seq)`` runs ``model`` on a time-major
    input and averages its output over time; the neurons must be in multi-step mode with fresh state, and
    BatchNorm/Dropout in eval mode. The caller decides exactness (:func:`~sj_rga.fast.use_fast_path`); a model
    that does not run alike at T = 1 raises a RuntimeError rather than give a wrong gradient.

    The value is the exact T-step logits (the forward runs without an autograd graph and keeps only Ī and the
    rate per neuron); the gradient flows through one T = 1 pass fed the time mean of ``x_seq``. Without
    gradient mode it is the plain T-step forward. Neuron state is left as the T-step forward leaves it.
    """
    obstacle = mode_obstacle(model)
    if obstacle is not None:
        raise ValueError(obstacle)
    if not torch.is_grad_enabled():
        return logits(x_seq)
    neurons = spiking_neurons(model)
    records: dict[nn.Module, list[LayerRecord]] = {}
    with torch.no_grad(), _recording(neurons, records, rga):
        exact = logits(x_seq.detach())
    with replaced_forwards(_replays(neurons, records)):
        fast = logits(x_seq.mean(0, keepdim=True))
    unused = sorted({type(node).__name__ for node, queue in records.items() if queue})
    if unused:
        raise RuntimeError(f"{', '.join(unused)} ran fewer times in the T = 1 pass than in the T-step forward: "
                           "the model's control flow depends on T")
    return exact + (fast - fast.detach())
