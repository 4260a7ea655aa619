"""SpikingJelly's stock neurons as sj_rga intercepts them (method §5).

Importing ``sj_rga`` wraps the multi-step method of every stock neuron class (:data:`sj_rga.mapping.STOCK_FAMILIES`:
``multi_step_forward`` of ``activation_based``'s ``IFNode``, ``LIFNode`` and ``ParametricLIFNode``, and, under
SpikingJelly 0.0.0.0.14, ``forward`` of ``clock_driven``'s ``MultiStepIFNode``, ``MultiStepLIFNode`` and
``MultiStepParametricLIFNode``) and ``single_step_forward`` of the ``activation_based`` ones. The wrapped
multi-step method asks, in this order:

1. does this very module carry a gradient handle (the instance attribute :data:`HANDLE`, which
   :func:`sj_rga.intercept.attach` sets for the duration of a block and removes afterwards)? Then the
   handle runs the layer (an estimator's per-layer backward, or the fast path's recording and replay);
2. is the neuron's ``surrogate_function`` a :class:`SurrogateRoute` (``sj_rga.RGA``) and are gradients
   taken? Then the handle that ``gradient_mode(model, that RGA)`` would attach runs it: one route per gradient;
3. otherwise SpikingJelly's original method runs, untouched.

The handle is looked up on the module itself, not in a table keyed by module identity, so the copies that
``nn.DataParallel`` makes at every call (which copy each module's ``__dict__``) carry it too.
"""
from __future__ import annotations

import abc
import functools
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import torch

from ._compat import LEGACY
from .mapping import STOCK_FAMILIES, StockFamily, charge_spec, neuron_mapping, stock_family
from .ops import SlopeSpec, backends, rate_neuron

#: The instance attribute through which a gradient handle is attached to one neuron module.
HANDLE = "_sj_rga_gradient"

#: Runs a neuron's original (SpikingJelly) multi-step method on a time-major input.
Original = Callable[[torch.Tensor], torch.Tensor]


class LayerHandle(Protocol):
    """What a neuron's layer is handed to while attached (see :data:`HANDLE`): :meth:`stock` for a stock neuron
    with unchanged dynamics (through the class patch), :meth:`own` for every other neuron."""

    def stock(self, node: torch.nn.Module, x_seq: torch.Tensor, original: Original) -> torch.Tensor:
        """Spikes ``[T, B, ...]`` of the stock neuron ``node`` on ``x_seq``, with the handle's backward."""

    def own(self, node: torch.nn.Module, x_seq: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
        """The output of any other neuron, given its input and the spikes its own forward returned."""


class SurrogateRoute(abc.ABC):
    """A ``surrogate_function`` that routes its neuron's whole multi-step computation to a gradient handle
    while gradients are taken (``sj_rga.RGA``): the neuron then runs as inside ``gradient_mode``."""

    @abc.abstractmethod
    def neuron_handle(self) -> LayerHandle:
        """A fresh handle for one call of one neuron, the one ``gradient_mode`` would attach."""


def handle_of(node: torch.nn.Module) -> Optional[LayerHandle]:
    """The gradient handle attached to ``node`` itself, or None."""
    return node.__dict__.get(HANDLE)


def surrogate_route(node: torch.nn.Module) -> Optional[SurrogateRoute]:
    """The neuron's own surrogate if it routes to a gradient handle (``sj_rga.RGA``), else None."""
    sg = getattr(node, "surrogate_function", None)
    return sg if isinstance(sg, SurrogateRoute) else None


def runs_wrapped_method(node: torch.nn.Module) -> bool:
    """True when calling ``node`` reaches the wrapped multi-step method of a stock neuron with unchanged
    dynamics (its class overrides none of the methods on the way, see :class:`~sj_rga.mapping.StockFamily`)."""
    family = stock_family(node)
    return family is not None and family.same_dynamics(type(node)) and family.same_path(type(node)) and \
        getattr(type(node), family.entry) is getattr(family.base, family.entry)


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
    """g's parameters for ``node`` under ``rga`` (anything with ``lam``, ``beta`` and ``gamma``; an explicit
    ``rga.lam`` wins over the neuron's λ)."""
    mapping = neuron_mapping(node)
    lam = mapping.lam if rga.lam is None else rga.lam
    return SlopeSpec(lam=lam, theta=mapping.theta, input_gain=mapping.input_gain, beta=rga.beta, gamma=rga.gamma)


def keeps_v_seq(node: torch.nn.Module) -> bool:
    """Whether the stock multi-step forward leaves ``v_seq`` (always for clock_driven, else ``store_v_seq``)."""
    family = stock_family(node)
    return bool(family is not None and family.always_v_seq) or bool(getattr(node, "store_v_seq", False))


def initial_state(node: torch.nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    """V[0] as the stock neuron would materialise it for this input."""
    if not LEGACY:
        return node.materialize_states((x_seq,), tuple(node._memories.values()), "m")[0]
    if hasattr(node, "v_float_to_tensor"):
        node.v_float_to_tensor(x_seq[0])
        return node.v
    v = node.v  # clock_driven: a float until the first step adds the input to it
    return torch.full_like(x_seq[0], v) if isinstance(v, float) else v


def store_state(node: torch.nn.Module, v_last: torch.Tensor, v_seq: Optional[torch.Tensor]) -> None:
    """Leave ``v`` (and ``v_seq``) as the stock multi-step forward would."""
    if LEGACY:
        node.v = v_last
        if keeps_v_seq(node):
            node.v_seq = v_seq
    else:
        node._memories["v"] = v_last
        node.v_seq = v_seq


def rate_multi_step_forward(node: torch.nn.Module, x_seq: torch.Tensor, rga) -> torch.Tensor:
    """Multi-step forward of a stock neuron through the rate op; updates ``v`` (and ``v_seq``) as stock."""
    check_sequence(x_seq, type(node).__name__)
    charge, slope = charge_spec(node), slope_spec(node, rga)
    spikes, v_last, v_seq = rate_neuron(x_seq, initial_state(node, x_seq), charge, slope, keeps_v_seq(node))
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
            x_seq, initial_state(node, x_seq), spec, input_gain, keeps_v_seq(node),
            *(() if on_charge is None else (on_charge,)))
    store_state(node, v_last, v_seq)
    return StockRun(spikes, current, input_gain)


SINGLE_STEP_ERROR = (
    "{name} is under an sj_rga gradient (RGA or another estimator) but runs in single-step mode: the "
    "estimator needs the whole time window. Call "
    "spikingjelly.activation_based.functional.set_step_mode(net, 'm') and feed time-major [T, B, ...] inputs"
)


def _wrap_single_step(cls: type) -> None:
    original = cls.single_step_forward

    @functools.wraps(original)
    def single_step_forward(self, x: torch.Tensor, *args, **kwargs):
        intercepted = handle_of(self) is not None or surrogate_route(self) is not None
        if intercepted and torch.is_grad_enabled() and getattr(x, "requires_grad", False):
            raise RuntimeError(SINGLE_STEP_ERROR.format(name=type(self).__name__))
        return original(self, x, *args, **kwargs)

    single_step_forward.__sj_rga_original__ = original
    cls.single_step_forward = single_step_forward


def _torch_path_on_cpu(original: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``original``, except that a ``clock_driven`` neuron of SpikingJelly 0.0.0.0.14 with ``backend='cupy'`` (a
    plain attribute there) given a CPU tensor, where the CuPy kernels cannot run, takes SpikingJelly's own torch
    path, as ``backend='torch'`` would."""
    if not LEGACY:
        return original

    @functools.wraps(original)
    def run(node: torch.nn.Module, x_seq: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if node.__dict__.get("backend") != "cupy" or not isinstance(x_seq, torch.Tensor) or x_seq.is_cuda:
            return original(node, x_seq, *args, **kwargs)
        node.backend = "torch"
        try:
            return original(node, x_seq, *args, **kwargs)
        finally:
            node.backend = "cupy"

    return run


def _wrap_multi_step(family: StockFamily) -> None:
    unwrapped = getattr(family.base, family.entry)
    original = _torch_path_on_cpu(unwrapped)

    @functools.wraps(original)
    def multi_step_forward(self, x_seq: torch.Tensor, *args, **kwargs):
        handle = handle_of(self)
        if handle is not None and not runs_wrapped_method(self):
            with torch.no_grad():  # a subclass of its own: the hooks of sj_rga.intercept.attach take its backward
                return original(self, x_seq, *args, **kwargs)
        if handle is None:
            route = surrogate_route(self)
            if route is None or not torch.is_grad_enabled():
                return original(self, x_seq, *args, **kwargs)
            handle = route.neuron_handle()
        if args or kwargs:
            raise TypeError(f"{type(self).__name__} under an sj_rga gradient takes one input [T, B, ...], "
                            f"got {len(args) + 1} positional and {len(kwargs)} keyword arguments")
        if runs_wrapped_method(self):
            return handle.stock(self, x_seq, functools.partial(original, self))
        with torch.no_grad():  # a subclass with dynamics of its own whose surrogate routes: its own spikes
            spikes = original(self, x_seq.detach())
        return handle.own(self, x_seq, spikes)

    multi_step_forward.__sj_rga_original__ = unwrapped
    setattr(family.base, family.entry, multi_step_forward)


for _family in STOCK_FAMILIES:
    if getattr(getattr(_family.base, _family.entry), "__sj_rga_original__", None) is None:
        _wrap_multi_step(_family)
    _single = getattr(_family.base, "single_step_forward", None)
    if _single is not None and getattr(_single, "__sj_rga_original__", None) is None:
        _wrap_single_step(_family.base)
