"""The RGA backward inside SpikingJelly's own IF/LIF/PLIF neurons, and the Rate*Node classes.

Importing ``sj_rga`` wraps ``multi_step_forward`` of ``IFNode``, ``LIFNode`` and ``ParametricLIFNode``:
a neuron whose surrogate is an :class:`~sj_rga.RGA` (or that sits inside :func:`~sj_rga.rate_mode`)
runs the rate op; every other neuron calls the original method untouched.
"""
from __future__ import annotations

import functools
import inspect
import weakref
from typing import Optional

import torch
from spikingjelly.activation_based import neuron

from ._compat import LEGACY
from .mapping import STOCK_NEURONS, charge_spec, neuron_mapping, registered_mapping
from .ops import RateGradientFunction, SlopeSpec, backends, rate_neuron
from .ops.torch_backend import mean_current
from .surrogate import RGA

#: Neurons put under RGA by an active ``rate_mode``: neuron -> stack of RGA surrogates (innermost last).
_RATE_OVERRIDES: weakref.WeakKeyDictionary[torch.nn.Module, list[RGA]] = weakref.WeakKeyDictionary()


def active_surrogate(node: torch.nn.Module) -> Optional[RGA]:
    """The RGA surrogate ``node`` uses now: from an active ``rate_mode``, else its own, else None."""
    stack = _RATE_OVERRIDES.get(node)
    if stack:
        return stack[-1]
    sg = getattr(node, "surrogate_function", None)
    return sg if isinstance(sg, RGA) else None


def check_sequence(x_seq: object, owner: str) -> torch.Tensor:
    """A time-major ``[T, B, ...]`` floating-point, finite tensor, or a clear error."""
    if not isinstance(x_seq, torch.Tensor):
        raise TypeError(f"{owner} expects a torch.Tensor [T, B, ...], got {type(x_seq).__name__}")
    if not x_seq.is_floating_point():
        raise TypeError(f"{owner} expects a floating-point tensor, got dtype {x_seq.dtype}")
    if x_seq.dim() < 2 or x_seq.shape[0] < 1:
        raise ValueError(f"{owner} expects a time-major [T, B, ...] tensor with T >= 1, got shape {tuple(x_seq.shape)}")
    if not bool(torch.isfinite(x_seq).all()):
        raise ValueError(f"{owner} got non-finite values (NaN or inf) in its input")
    return x_seq


def slope_spec(node: torch.nn.Module, rga: RGA) -> SlopeSpec:
    """g's parameters for ``node`` under surrogate ``rga`` (an explicit ``rga.lam`` wins over the neuron's λ)."""
    mapping = neuron_mapping(node)
    lam = mapping.lam if rga.lam is None else rga.lam
    return SlopeSpec(lam=lam, theta=mapping.theta, input_gain=mapping.input_gain, beta=rga.beta, gamma=rga.gamma)


def _initial_state(node: torch.nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    """V[0] as the stock neuron would materialise it for this input."""
    if LEGACY:
        node.v_float_to_tensor(x_seq[0])
        return node.v
    return node.materialize_states((x_seq,), tuple(node._memories.values()), "m")[0]


def _store_state(node: torch.nn.Module, v_last: torch.Tensor, v_seq: Optional[torch.Tensor]) -> None:
    """Leave ``v`` (and ``v_seq``) as the stock multi-step forward would."""
    if LEGACY:
        node.v = v_last
        if node.store_v_seq:
            node.v_seq = v_seq
    else:
        node._memories["v"] = v_last
        node.v_seq = v_seq


def rate_multi_step_forward(node: torch.nn.Module, x_seq: torch.Tensor, rga: RGA) -> torch.Tensor:
    """Multi-step forward of a stock neuron through the rate op; updates ``v`` (and ``v_seq``) as stock."""
    check_sequence(x_seq, type(node).__name__)
    charge, slope = charge_spec(node), slope_spec(node, rga)
    spikes, v_last, v_seq = rate_neuron(x_seq, _initial_state(node, x_seq), charge, slope, bool(node.store_v_seq))
    _store_state(node, v_last, v_seq)
    return spikes


def stock_forward_with_current(node: torch.nn.Module, x_seq: torch.Tensor, input_gain: float
                               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes ``[T, B, ...]`` and Ī ``[B, ...]`` of a stock neuron on ``x_seq``, without autograd.

    The rate op's forward (SpikingJelly's arithmetic, spikes written in place, Ī summed on the way):
    the same spikes as the stock forward, faster; ``v`` (and ``v_seq``) are left as the stock forward
    leaves them. ``input_gain`` is dI/dX.
    """
    with torch.no_grad():
        spikes, v_last, v_seq, current = backends.select(x_seq).forward(
            x_seq, _initial_state(node, x_seq), charge_spec(node), input_gain, bool(node.store_v_seq))
    _store_state(node, v_last, v_seq)
    return spikes, current


def rate_by_own_forward(node: torch.nn.Module, x_seq: torch.Tensor, run, rga: RGA) -> torch.Tensor:
    """RGA backward for a registered neuron: its own multi-step forward ``run`` (no autograd), then
    ``dL/dX[t] = dL/dS[t] · g(Ī) · dI/dX`` attached to the spikes it returned."""
    check_sequence(x_seq, type(node).__name__)
    slope = slope_spec(node, rga)
    with torch.no_grad():
        spikes = run(x_seq)
        if not isinstance(spikes, torch.Tensor) or spikes.shape != x_seq.shape:
            raise ValueError(f"{type(node).__name__} must return spikes shaped like its input [T, B, ...] "
                             f"{tuple(x_seq.shape)} to take the RGA backward")
    return RateGradientFunction.apply(x_seq, spikes, mean_current(x_seq.detach(), slope.input_gain), slope)


SINGLE_STEP_ERROR = (
    "{name} is under the RGA backward but runs in single-step mode: the rate gradient needs the whole "
    "time window. Call spikingjelly.activation_based.functional.set_step_mode(net, 'm') and feed "
    "time-major [T, B, ...] inputs"
)


def _wrap_single_step(cls: type) -> None:
    original = cls.single_step_forward

    @functools.wraps(original)
    def single_step_forward(self, x: torch.Tensor, *args, **kwargs):
        if active_surrogate(self) is not None and torch.is_grad_enabled() and getattr(x, "requires_grad", False):
            raise RuntimeError(SINGLE_STEP_ERROR.format(name=type(self).__name__))
        return original(self, x, *args, **kwargs)

    single_step_forward.__sj_rga_original__ = original
    cls.single_step_forward = single_step_forward


def _wrap_multi_step(cls: type) -> None:
    original = cls.multi_step_forward

    @functools.wraps(original)
    def multi_step_forward(self, x_seq: torch.Tensor, *args, **kwargs):
        rga = active_surrogate(self)
        if rga is None:
            return original(self, x_seq, *args, **kwargs)
        if registered_mapping(self) is not None:
            return rate_by_own_forward(self, x_seq, functools.partial(original, self), rga)
        return rate_multi_step_forward(self, x_seq, rga)

    multi_step_forward.__sj_rga_original__ = original
    cls.multi_step_forward = multi_step_forward


for _cls in STOCK_NEURONS:
    if getattr(_cls.multi_step_forward, "__sj_rga_original__", None) is None:
        _wrap_multi_step(_cls)
    if getattr(_cls.single_step_forward, "__sj_rga_original__", None) is None:
        _wrap_single_step(_cls)


def _rate_class(base: type, doc: str) -> type:
    """A subclass of ``base`` whose default surrogate is ``RGA()`` (λ from the neuron)."""
    position = list(inspect.signature(base.__init__).parameters).index("surrogate_function") - 1

    def __init__(self, *args, **kwargs):
        if len(args) <= position and "surrogate_function" not in kwargs:
            kwargs["surrogate_function"] = RGA()
        base.__init__(self, *args, **kwargs)

    return type(f"Rate{base.__name__}", (base,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})


RateIFNode = _rate_class(neuron.IFNode, "SpikingJelly's IFNode with surrogate_function=RGA() by default (λ = 1).")
RateLIFNode = _rate_class(neuron.LIFNode,
                          "SpikingJelly's LIFNode with surrogate_function=RGA() by default (λ = 1 - 1/τ).")
RateParametricLIFNode = _rate_class(
    neuron.ParametricLIFNode,
    "SpikingJelly's ParametricLIFNode with surrogate_function=RGA() by default (λ = 1 - sigmoid(w)).")
