"""Map SpikingJelly neurons onto the rate model's leak λ, threshold θ and input gain dI/dX (method §1.3).

| neuron                       | λ         | I     | dI/dX | θ                     |
| IFNode                       | 1         | X     | 1     | v_threshold - V_r     |
| LIFNode, decay_input=True    | 1 - 1/τ   | X/τ   | 1/τ   | v_threshold - V_r     |
| LIFNode, decay_input=False   | 1 - 1/τ   | X     | 1     | v_threshold - V_r     |
| ParametricLIFNode            | as LIFNode with 1/τ = sigmoid(w), its current value  |

V_r is ``v_reset``, or 0 for soft reset (``v_reset=None``). The stock neurons are ``activation_based``'s
``IFNode``, ``LIFNode`` and ``ParametricLIFNode`` and, under SpikingJelly 0.0.0.0.14, ``clock_driven``'s
``MultiStepIFNode``, ``MultiStepLIFNode`` and ``MultiStepParametricLIFNode`` (the same equations, any
``backend``). Other neuron classes can be described with :func:`register_neuron`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Optional

import torch
from spikingjelly.activation_based import neuron

from ._compat import LEGACY, clock_driven_neuron
from .ops.spec import ChargeSpec, NeuronKind
from .surrogate import check_leak, check_threshold


@dataclass(frozen=True)
class StockFamily:
    """A stock neuron class whose dynamics sj_rga knows.

    ``kind``: its charge equation (``'if'``, ``'lif'``, ``'plif'``); ``entry``: its multi-step method, which
    the class patch wraps (:mod:`sj_rga.neuron`); ``dynamics``: the methods that define its equations (a
    subclass overriding one is not this stock neuron); ``path``: the methods between a call of the module and
    ``entry`` (a subclass overriding one never reaches the wrapped method); ``always_v_seq``: it keeps ``v_seq``
    after every multi-step call (clock_driven), instead of when ``store_v_seq`` is set."""

    base: type
    kind: NeuronKind
    entry: str
    dynamics: tuple[str, ...]
    path: tuple[str, ...]
    always_v_seq: bool = False

    def same_dynamics(self, cls: type) -> bool:
        return all(getattr(cls, m) is getattr(self.base, m) for m in self.dynamics if hasattr(self.base, m))

    def same_path(self, cls: type) -> bool:
        return all(getattr(cls, m) is getattr(self.base, m) for m in self.path)


_ACTIVATION_DYNAMICS = ("neuronal_charge",) if LEGACY else (
    "single_step_functional_forward", "multi_step_functional_forward")
_ACTIVATION_PATH = ("forward", "multi_step_forward")


def _families() -> tuple[StockFamily, ...]:
    """Most specific first: ``isinstance`` picks the first that matches."""
    found = [StockFamily(cls, kind, "multi_step_forward", _ACTIVATION_DYNAMICS, _ACTIVATION_PATH)
             for cls, kind in ((neuron.ParametricLIFNode, "plif"), (neuron.LIFNode, "lif"), (neuron.IFNode, "if"))]
    clock = clock_driven_neuron()
    if clock is not None:
        dynamics = ("neuronal_charge", "neuronal_fire", "neuronal_reset")
        found += [StockFamily(getattr(clock, name), kind, "forward", dynamics, (), always_v_seq=True)
                  for name, kind in (("MultiStepParametricLIFNode", "plif"), ("MultiStepLIFNode", "lif"),
                                     ("MultiStepIFNode", "if"))]
    return tuple(found)


#: The stock neuron classes, each with what the class patch needs to know of it.
STOCK_FAMILIES: tuple[StockFamily, ...] = _families()

STOCK_NEURONS: tuple[type, ...] = tuple(f.base for f in STOCK_FAMILIES)

#: Base classes whose instances are spiking neurons (mapped or not).
SPIKING_BASES: tuple[type, ...] = tuple(
    cls for cls in (getattr(neuron, "BaseNode", None), getattr(neuron, "SimpleBaseNode", None),
                    getattr(clock_driven_neuron(), "BaseNode", None)) if cls is not None
)


def stock_family(node: torch.nn.Module) -> Optional[StockFamily]:
    """The stock family ``node`` belongs to (an instance of its class, subclasses included), or None."""
    for family in STOCK_FAMILIES:
        if isinstance(node, family.base):
            return family
    return None


@dataclass(frozen=True)
class NeuronMapping:
    """A neuron's rate-model parameters: leak ``lam`` in [0, 1], threshold above reset ``theta`` > 0 (in
    membrane-potential units), and ``input_gain`` = dI/dX, the factor from the layer input X to the current I."""

    lam: float
    theta: float
    input_gain: float = 1.0

    def __post_init__(self) -> None:
        check_leak(self.lam)
        check_threshold(self.theta)
        if not (isinstance(self.input_gain, (int, float)) and self.input_gain > 0):
            raise ValueError(f"input_gain (dI/dX) must be a positive number, got {self.input_gain!r}")


_REGISTRY: dict[type, Callable[[torch.nn.Module], NeuronMapping]] = {}

#: How a neuron lays out time: ``'time-major'`` ``[T, B, ...]``, or ``'merged'`` ``[T·B, ...]`` (time outer, as
#: ``x_seq.flatten(0, 1)`` of a time-major tensor gives), which the neuron's own forward splits into T steps.
Layout = Literal["time-major", "merged"]
LAYOUTS: tuple[str, ...] = ("time-major", "merged")

_LAYOUT: dict[type, Layout] = {}


def register_neuron(cls: type, mapping: Callable[[torch.nn.Module], NeuronMapping],
                    layout: Layout = "time-major") -> None:
    """Describe a neuron class the package does not know, so that RGA and BPTR can take its backward.

    ``mapping(node)`` returns the :class:`NeuronMapping` of one instance. Such a neuron runs its own
    forward (without autograd) and receives ``dL/dX[t] = dL/dS[t] · g(Ī) · dI/dX`` (RGA) or
    ``dL/dS[t] · 1[fired]`` (BPTR), with Ī and the firing taken over its T steps.

    ``layout``: ``'time-major'`` (default), the neuron takes and returns ``[T, B, ...]``; ``'merged'``, it
    takes and returns ``[T·B, ...]`` with time outer (``x_seq.flatten(0, 1)``) and splits the T steps
    itself, as the attack papers' own ``LIFSpike`` does. sj_rga then needs T: the classifier's, or the ``T``
    given to :func:`~sj_rga.gradients.gradient_mode` / :func:`~sj_rga.rate_mode`. A time-major neuron whose
    input's leading dimension is not T is refused, never given a wrong gradient.
    """
    if not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
        raise TypeError(f"register_neuron expects an nn.Module subclass, got {cls!r}")
    if not callable(mapping):
        raise TypeError("register_neuron expects a callable mapping(node) -> NeuronMapping")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS} ([T, B, ...] or [T·B, ...]), got {layout!r}")
    _REGISTRY[cls] = mapping
    _LAYOUT[cls] = layout


def _registered_class(node: torch.nn.Module) -> Optional[type]:
    return next((cls for cls in type(node).__mro__ if cls in _REGISTRY), None)


def registered_classes() -> list[tuple[type, Callable[[torch.nn.Module], NeuronMapping], Layout]]:
    """The classes registered with :func:`register_neuron`, their mappings and layouts, in registration order."""
    return [(cls, mapping, _LAYOUT.get(cls, "time-major")) for cls, mapping in _REGISTRY.items()]


def registered_mapping(node: torch.nn.Module) -> Optional[NeuronMapping]:
    """The user-registered mapping of ``node``'s class (nearest in its MRO), or None."""
    cls = _registered_class(node)
    if cls is None:
        return None
    found = _REGISTRY[cls](node)
    if not isinstance(found, NeuronMapping):
        raise TypeError(f"the mapping registered for {cls.__name__} must return a NeuronMapping, "
                        f"got {type(found).__name__}")
    return found


def neuron_layout(node: torch.nn.Module) -> Layout:
    """``'merged'`` for a class registered so (nearest registration in the MRO), else ``'time-major'``."""
    cls = _registered_class(node)
    return "time-major" if cls is None else _LAYOUT.get(cls, "time-major")


def time_major(node: torch.nn.Module, tensor: torch.Tensor, T: Optional[int]) -> torch.Tensor:
    """``tensor`` of ``node``'s layout as time-major ``[T, B, ...]`` (a view where possible, differentiable).

    A merged neuron needs ``T`` and an input of ``T·B`` rows; a registered time-major neuron's leading
    dimension must equal ``T`` when T is known. Anything else is a clear ValueError, not a wrong gradient."""
    name = type(node).__name__
    if neuron_layout(node) == "merged":
        if T is None:
            raise ValueError(f"{name} is registered with layout='merged' ([T·B, ...]), so sj_rga needs T to split "
                             "its input: run it through SNNClassifier(model, T) or pass T to gradient_mode / "
                             "rate_mode")
        if tensor.dim() < 1 or tensor.shape[0] % T != 0:
            raise ValueError(f"{name} is registered with layout='merged' ([T·B, ...]) but got shape "
                             f"{tuple(tensor.shape)}, whose leading dimension is not a multiple of T = {T}")
        return tensor.reshape(T, tensor.shape[0] // T, *tensor.shape[1:])
    if T is not None and _registered_class(node) is not None and tensor.shape[0] != T:
        raise ValueError(f"{name} got an input of shape {tuple(tensor.shape)} whose leading dimension is not T = {T}: "
                         "sj_rga would take it as time and give a wrong gradient. If the neuron merges time and "
                         f"batch as [T·B, ...], register it with sj_rga.register_neuron({name}, mapping, "
                         "layout='merged'). (T is the classifier's, the T given to gradient_mode / rate_mode, or "
                         "else the leading dimension of the model's input: pass T if the model makes its own steps)")
    return tensor


def stock_class(node: torch.nn.Module) -> Optional[type]:
    """The stock IF/LIF/PLIF class whose dynamics ``node`` runs unchanged, or None."""
    family = stock_family(node)
    return family.base if family is not None and family.same_dynamics(type(node)) else None


def stock_kind(node: torch.nn.Module) -> Optional[NeuronKind]:
    """``'if'``, ``'lif'`` or ``'plif'`` for a stock neuron with unchanged dynamics, else None."""
    family = stock_family(node)
    return family.kind if family is not None and family.same_dynamics(type(node)) else None


def is_spiking_neuron(module: torch.nn.Module) -> bool:
    """True for SpikingJelly neurons and for modules of a registered neuron class."""
    return isinstance(module, SPIKING_BASES) or any(cls in _REGISTRY for cls in type(module).__mro__)


def spiking_neurons(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Every spiking neuron in ``model`` (SpikingJelly neurons and registered classes), in module order."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    found = [m for m in model.modules() if is_spiking_neuron(m)]
    if not found:
        raise ValueError(f"{type(model).__name__} contains no spiking neuron (no SpikingJelly BaseNode and no "
                         "class registered with sj_rga.register_neuron): there is nothing to take a gradient of")
    return found


def unmappable_error(node: torch.nn.Module) -> ValueError:
    name = type(node).__name__
    clock = clock_driven_neuron()
    if clock is not None and isinstance(node, clock.BaseNode) and stock_family(node) is None:
        return ValueError(f"{name} is a single-step clock_driven neuron (one time step per call, e.g. inside "
                          "MultiStepContainer), but the estimators need the whole time window: use its MultiStep "
                          "class (MultiStepIFNode, MultiStepLIFNode, MultiStepParametricLIFNode) or register a "
                          "multi-step neuron with sj_rga.register_neuron")
    return ValueError(
        f"sj_rga cannot map the neuron class {name} onto the rate model's leak lam and threshold theta: "
        "only IFNode, LIFNode and ParametricLIFNode (and clock_driven's MultiStep classes of them), with unchanged "
        "dynamics, are known. Describe it with "
        f"sj_rga.register_neuron({name}, lambda node: sj_rga.NeuronMapping(lam=..., theta=..., input_gain=...))"
    )


def _decay(node: torch.nn.Module) -> torch.Tensor:
    """PLIF's 1/τ = sigmoid(w), as the 0-dim tensor the neuron itself multiplies by."""
    return node.w.detach().sigmoid()


def charge_spec(node: torch.nn.Module) -> ChargeSpec:
    """The charge/fire/reset equations of a stock IF/LIF/PLIF neuron."""
    kind = stock_kind(node)
    if kind is None:
        raise unmappable_error(node)
    common = dict(v_threshold=float(node.v_threshold),
                  v_reset=None if node.v_reset is None else float(node.v_reset), legacy=LEGACY)
    if kind == "if":
        return ChargeSpec(kind="if", **common)
    if kind == "lif":
        return ChargeSpec(kind="lif", decay_input=bool(node.decay_input), tau=float(node.tau), **common)
    return ChargeSpec(kind="plif", decay_input=bool(node.decay_input), decay=_decay(node), **common)


def neuron_mapping(node: torch.nn.Module) -> NeuronMapping:
    """λ, θ and dI/dX of a neuron: registered classes first, then the stock IF/LIF/PLIF table."""
    found = registered_mapping(node)
    if found is not None:
        return found
    kind = stock_kind(node)
    if kind is None:
        raise unmappable_error(node)
    v_reset = 0.0 if node.v_reset is None else float(node.v_reset)
    theta = float(node.v_threshold) - v_reset
    if kind == "if":
        return NeuronMapping(lam=1.0, theta=theta, input_gain=1.0)
    inv_tau = 1.0 / float(node.tau) if kind == "lif" else float(_decay(node))
    return NeuronMapping(lam=1.0 - inv_tau, theta=theta, input_gain=inv_tau if node.decay_input else 1.0)
