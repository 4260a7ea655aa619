"""SpikingJelly's IF/LIF/PLIF neurons as sj_rga intercepts them (method §5), and the Rate*Node classes.

Importing ``sj_rga`` wraps ``multi_step_forward`` and ``single_step_forward`` of ``IFNode``, ``LIFNode`` and
``ParametricLIFNode``. The wrapped multi-step method asks, in this order:

1. does this very module carry a gradient handle (the instance attribute :data:`HANDLE`, which
   :func:`sj_rga.intercept.attach` sets for the duration of a block and removes afterwards)? Then the
   handle runs the layer (an estimator's per-layer backward, or the fast path's recording and replay);
2. is the neuron's surrogate an :class:`~sj_rga.RGA`? Then the rate op runs it;
3. otherwise SpikingJelly's original method runs, untouched.

The handle is looked up on the module itself, not in a table keyed by module identity, so the copies that
``nn.DataParallel`` makes at every call (which copy each module's ``__dict__``) carry it too.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import torch
from spikingjelly.activation_based import neuron

from ._compat import LEGACY
from .mapping import STOCK_NEURONS, charge_spec, neuron_mapping, registered_mapping, stock_class
from .ops import ScaledGradientFunction, SlopeSpec, backends, rate_neuron
from .ops.torch_backend import mean_current
from .surrogate import RGA, rate_slope

#: The instance attribute through which a gradient handle is attached to one neuron module.
HANDLE = "_sj_rga_gradient"

#: Runs a neuron's original (SpikingJelly) multi-step method on a time-major input.
Original = Callable[[torch.Tensor], torch.Tensor]


class LayerHandle(Protocol):
    """What the wrapped ``multi_step_forward`` hands a stock neuron's layer to (see :data:`HANDLE`)."""

    def stock(self, node: torch.nn.Module, x_seq: torch.Tensor, original: Original) -> torch.Tensor:
        """Spikes ``[T, B, ...]`` of the stock neuron ``node`` on ``x_seq``, with the handle's backward."""


def handle_of(node: torch.nn.Module) -> Optional[LayerHandle]:
    """The gradient handle attached to ``node`` itself, or None."""
    return node.__dict__.get(HANDLE)


def runs_wrapped_method(node: torch.nn.Module) -> bool:
    """True when calling ``node`` reaches the wrapped ``multi_step_forward`` of an IF/LIF/PLIF neuron with
    unchanged dynamics (its class overrides neither ``forward`` nor ``multi_step_forward``)."""
    base = stock_class(node)
    return base is not None and type(node).forward is base.forward and \
        type(node).multi_step_forward is base.multi_step_forward


def rga_surrogate(node: torch.nn.Module) -> Optional[RGA]:
    """The neuron's own surrogate if it is an :class:`~sj_rga.RGA`, else None."""
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


def slope_spec(node: torch.nn.Module, rga) -> SlopeSpec:
    """g's parameters for ``node`` under ``rga`` (the RGA surrogate or estimator: anything with ``lam``,
    ``beta`` and ``gamma``; an explicit ``rga.lam`` wins over the neuron's λ)."""
    mapping = neuron_mapping(node)
    lam = mapping.lam if rga.lam is None else rga.lam
    return SlopeSpec(lam=lam, theta=mapping.theta, input_gain=mapping.input_gain, beta=rga.beta, gamma=rga.gamma)


def initial_state(node: torch.nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    """V[0] as the stock neuron would materialise it for this input."""
    if LEGACY:
        node.v_float_to_tensor(x_seq[0])
        return node.v
    return node.materialize_states((x_seq,), tuple(node._memories.values()), "m")[0]


def store_state(node: torch.nn.Module, v_last: torch.Tensor, v_seq: Optional[torch.Tensor]) -> None:
    """Leave ``v`` (and ``v_seq``) as the stock multi-step forward would."""
    if LEGACY:
        node.v = v_last
        if node.store_v_seq:
            node.v_seq = v_seq
    else:
        node._memories["v"] = v_last
        node.v_seq = v_seq


def rate_multi_step_forward(node: torch.nn.Module, x_seq: torch.Tensor, rga) -> torch.Tensor:
    """Multi-step forward of a stock neuron through the rate op; updates ``v`` (and ``v_seq``) as stock."""
    check_sequence(x_seq, type(node).__name__)
    charge, slope = charge_spec(node), slope_spec(node, rga)
    spikes, v_last, v_seq = rate_neuron(x_seq, initial_state(node, x_seq), charge, slope, bool(node.store_v_seq))
    store_state(node, v_last, v_seq)
    return spikes


@dataclass(frozen=True)
class StockRun:
    """One exact multi-step run of a neuron, without autograd: ``spikes`` ``[T, B, ...]`` and
    ``mean_current`` ``[B, ...]``, mean_t X[t] times ``input_gain`` (float32 for half types; membrane-potential
    units per step)."""

    spikes: torch.Tensor
    mean_current: torch.Tensor
    input_gain: float


#: Sees the charged potential H[t] of every step of an exact run (see :func:`exact_forward`).
ChargeObserver = Callable[[int, torch.Tensor], None]


def exact_forward(node: torch.nn.Module, x_seq: torch.Tensor, input_gain: float = 1.0,
                  on_charge: Optional[ChargeObserver] = None) -> StockRun:
    """Spikes of a stock IF/LIF/PLIF neuron on ``x_seq``, without autograd, with what the estimators record.

    The rate op's forward (SpikingJelly's arithmetic, spikes written in place, Ī summed on the way): the
    same spikes as the stock forward; ``v`` (and ``v_seq``) are left as the stock forward leaves them.
    ``on_charge(t, H[t])`` sees the potential after charging and before fire and reset at every step, and
    must not keep or change it (the plain torch op then runs, also on CUDA).
    """
    spec = charge_spec(node)
    backend = backends.select(x_seq) if on_charge is None else backends.torch_backend
    with torch.no_grad():
        spikes, v_last, v_seq, current = backend.forward(
            x_seq, initial_state(node, x_seq), spec, input_gain, bool(node.store_v_seq),
            *(() if on_charge is None else (on_charge,)))
    store_state(node, v_last, v_seq)
    return StockRun(spikes, current, input_gain)


def rate_by_own_forward(node: torch.nn.Module, x_seq: torch.Tensor, run: Original, rga) -> torch.Tensor:
    """RGA backward for a registered neuron: its own multi-step forward ``run`` (no autograd), then
    ``dL/dX[t] = dL/dS[t] · g(Ī) · dI/dX`` attached to the spikes it returned."""
    check_sequence(x_seq, type(node).__name__)
    slope = slope_spec(node, rga)
    with torch.no_grad():
        spikes = run(x_seq)
        if not isinstance(spikes, torch.Tensor) or spikes.shape != x_seq.shape:
            raise ValueError(f"{type(node).__name__} must return spikes shaped like its input [T, B, ...] "
                             f"{tuple(x_seq.shape)} to take the RGA backward")
        current = mean_current(x_seq.detach(), slope.input_gain)
        factor = rate_slope(current, slope.lam, slope.theta, slope.beta, slope.gamma) * slope.input_gain
    return ScaledGradientFunction.apply(x_seq, spikes, factor)


SINGLE_STEP_ERROR = (
    "{name} is under an sj_rga gradient (RGA or another estimator) but runs in single-step mode: the "
    "estimator needs the whole time window. Call "
    "spikingjelly.activation_based.functional.set_step_mode(net, 'm') and feed time-major [T, B, ...] inputs"
)


def _wrap_single_step(cls: type) -> None:
    original = cls.single_step_forward

    @functools.wraps(original)
    def single_step_forward(self, x: torch.Tensor, *args, **kwargs):
        intercepted = handle_of(self) is not None or rga_surrogate(self) is not None
        if intercepted and torch.is_grad_enabled() and getattr(x, "requires_grad", False):
            raise RuntimeError(SINGLE_STEP_ERROR.format(name=type(self).__name__))
        return original(self, x, *args, **kwargs)

    single_step_forward.__sj_rga_original__ = original
    cls.single_step_forward = single_step_forward


def _wrap_multi_step(cls: type) -> None:
    original = cls.multi_step_forward

    @functools.wraps(original)
    def multi_step_forward(self, x_seq: torch.Tensor, *args, **kwargs):
        handle = handle_of(self)
        if handle is not None:
            if args or kwargs:
                raise TypeError(f"{type(self).__name__} under an sj_rga gradient takes one input [T, B, ...], "
                                f"got {len(args) + 1} positional and {len(kwargs)} keyword arguments")
            return handle.stock(self, x_seq, functools.partial(original, self))
        rga = rga_surrogate(self)
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
