"""Map SpikingJelly neurons onto the rate model's leak λ, threshold θ and input gain dI/dX (method §1.3).

| neuron                       | λ         | I     | dI/dX | θ                     |
| IFNode                       | 1         | X     | 1     | v_threshold - V_r     |
| LIFNode, decay_input=True    | 1 - 1/τ   | X/τ   | 1/τ   | v_threshold - V_r     |
| LIFNode, decay_input=False   | 1 - 1/τ   | X     | 1     | v_threshold - V_r     |
| ParametricLIFNode            | as LIFNode with 1/τ = sigmoid(w), its current value  |

V_r is ``v_reset``, or 0 for soft reset (``v_reset=None``). Other neuron classes can be described with
:func:`register_neuron`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from spikingjelly.activation_based import neuron

from ._compat import LEGACY
from .ops.spec import ChargeSpec
from .surrogate import check_leak, check_threshold

STOCK_NEURONS = (neuron.IFNode, neuron.LIFNode, neuron.ParametricLIFNode)

#: The methods that define a stock neuron's dynamics; a subclass overriding any is not the stock neuron.
_DYNAMICS_METHODS = ("neuronal_charge",) if LEGACY else (
    "single_step_functional_forward", "multi_step_functional_forward")

#: Base classes whose instances are spiking neurons (mapped or not).
SPIKING_BASES: tuple[type, ...] = tuple(
    cls for cls in (getattr(neuron, "BaseNode", None), getattr(neuron, "SimpleBaseNode", None)) if cls is not None
)


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


def register_neuron(cls: type, mapping: Callable[[torch.nn.Module], NeuronMapping]) -> None:
    """Describe a neuron class the package does not know, so ``rate_mode`` can give it the RGA backward.

    ``mapping(node)`` returns the :class:`NeuronMapping` of one instance. Such a neuron runs its own
    forward (without autograd) and receives ``dL/dX[t] = dL/dS[t] · g(Ī) · dI/dX``; it must be in
    multi-step mode, taking and returning time-major ``[T, B, ...]`` tensors.
    """
    if not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
        raise TypeError(f"register_neuron expects an nn.Module subclass, got {cls!r}")
    if not callable(mapping):
        raise TypeError("register_neuron expects a callable mapping(node) -> NeuronMapping")
    _REGISTRY[cls] = mapping


def registered_classes() -> list[tuple[type, Callable[[torch.nn.Module], NeuronMapping]]]:
    """The classes registered with :func:`register_neuron` and their mappings, in registration order."""
    return list(_REGISTRY.items())


def registered_mapping(node: torch.nn.Module) -> Optional[NeuronMapping]:
    """The user-registered mapping of ``node``'s class (nearest in its MRO), or None."""
    for cls in type(node).__mro__:
        if cls in _REGISTRY:
            found = _REGISTRY[cls](node)
            if not isinstance(found, NeuronMapping):
                raise TypeError(f"the mapping registered for {cls.__name__} must return a NeuronMapping, "
                                f"got {type(found).__name__}")
            return found
    return None


def stock_class(node: torch.nn.Module) -> Optional[type]:
    """The stock IF/LIF/PLIF class whose dynamics ``node`` runs unchanged, or None."""
    for base in (neuron.ParametricLIFNode, neuron.LIFNode, neuron.IFNode):
        if isinstance(node, base):
            same = all(getattr(type(node), m) is getattr(base, m) for m in _DYNAMICS_METHODS if hasattr(base, m))
            return base if same else None
    return None


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
    return ValueError(
        f"sj_rga cannot map the neuron class {name} onto the rate model's leak lam and threshold theta: "
        "only IFNode, LIFNode and ParametricLIFNode (unchanged dynamics) are known. Describe it with "
        f"sj_rga.register_neuron({name}, lambda node: sj_rga.NeuronMapping(lam=..., theta=..., input_gain=...))"
    )


def _decay(node: torch.nn.Module) -> torch.Tensor:
    """PLIF's 1/τ = sigmoid(w), as the 0-dim tensor the neuron itself multiplies by."""
    return node.w.detach().sigmoid()


def charge_spec(node: torch.nn.Module) -> ChargeSpec:
    """The charge/fire/reset equations of a stock IF/LIF/PLIF neuron."""
    base = stock_class(node)
    if base is None:
        raise unmappable_error(node)
    common = dict(v_threshold=float(node.v_threshold),
                  v_reset=None if node.v_reset is None else float(node.v_reset), legacy=LEGACY)
    if base is neuron.IFNode:
        return ChargeSpec(kind="if", **common)
    if base is neuron.LIFNode:
        return ChargeSpec(kind="lif", decay_input=bool(node.decay_input), tau=float(node.tau), **common)
    return ChargeSpec(kind="plif", decay_input=bool(node.decay_input), decay=_decay(node), **common)


def neuron_mapping(node: torch.nn.Module) -> NeuronMapping:
    """λ, θ and dI/dX of a neuron: registered classes first, then the stock IF/LIF/PLIF table."""
    found = registered_mapping(node)
    if found is not None:
        return found
    base = stock_class(node)
    if base is None:
        raise unmappable_error(node)
    v_reset = 0.0 if node.v_reset is None else float(node.v_reset)
    theta = float(node.v_threshold) - v_reset
    if base is neuron.IFNode:
        return NeuronMapping(lam=1.0, theta=theta, input_gain=1.0)
    inv_tau = 1.0 / float(node.tau) if base is neuron.LIFNode else float(_decay(node))
    return NeuronMapping(lam=1.0 - inv_tau, theta=theta, input_gain=inv_tau if node.decay_input else 1.0)
