"""When is the fast gradient of the time-uniform estimators exact? Decided from the model's traced forward.

The fast path (method §1.5) equals the per-layer backward of RGA, BPTR or HART when every operation between
spiking layers (and before the first, and after the last) is affine and acts on each time step alike: then it
commutes with the mean over T and its Jacobian is the same at every step. The decision, module by module from
the model down (:func:`prove_fast_path`):

- a spiking neuron needs a rate mapping (stock IF/LIF/PLIF or a class registered with
  :func:`sj_rga.register_neuron`);
- a leaf of one of the exact types in :data:`AFFINE_LEAVES` (convolution, linear, BatchNorm with running
  statistics, average pooling, flatten, dropout, identity; torch's classes and SpikingJelly's multi-step
  wrappers) is affine; any other module without children is an obstacle, named with why
  (``features.3 (MaxPool2d): max of spikes is not affine in the rates``);
- a container that only chains its children (``nn.Sequential``, SpikingJelly's ``SeqToANNContainer``, ...)
  or a block declared with :func:`register_affine_block` is judged by its children;
- any other module with a ``forward`` of its own is traced with torch.fx (:mod:`sj_rga.fast.graph`), the
  judged modules kept opaque, and its graph followed operation by operation: sums, scalings, reshapes and
  linear maps pass; products of two spike-dependent tensors (SEW ``'AND'``, attention ``q @ kᵀ``), max,
  nonlinear functions are obstacles, named with the module they sit in;
- a ``forward`` torch.fx cannot trace (control flow on tensor values or on ``len(x.shape)``) is judged by its
  children, and if they pass it is an obstacle itself unless declared with :func:`register_affine_block`
  (the one thing tracing cannot prove).

The verdict says which method decided (:class:`Verdict`). That the linear operations act on each time step
alike (no time mixing) is checked at run time by :func:`~sj_rga.fast.fast_logits`, which compares the input of
every spiking layer and the logits of its T = 1 pass with the T-step forward and raises rather than return a
wrong gradient. BatchNorm and Dropout count as affine in eval mode only; :class:`~sj_rga.SNNClassifier`
always runs them so, and :func:`~sj_rga.fast.fast_logits` checks it at run time.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Callable, Optional

import torch.nn as nn
from spikingjelly.activation_based import layer

from .._compat import clock_driven_layer, clock_driven_neuron
from ..mapping import is_spiking_neuron, neuron_layout, registered_classes, registered_mapping, stock_class
from .graph import graph_obstacle, trace

#: How ``SNNClassifier`` takes a time-uniform gradient (RGA, BPTR, HART): the fast path when it is provably exact,
#: the fast path or an error, the per-layer backward always.
RGA_PATHS = ("auto", "fast", "layer")

_AFFINE_NAMES = ("Conv1d", "Conv2d", "Conv3d", "Linear", "AvgPool1d", "AvgPool2d", "AvgPool3d",
                 "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "Flatten", "Identity",
                 "Dropout", "Dropout1d", "Dropout2d", "Dropout3d")
_NORM_NAMES = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")

_BATCH_NORMS: frozenset[type] = frozenset(
    getattr(source, name) for source in (nn, layer) for name in _NORM_NAMES if hasattr(source, name))
_DROPOUTS: frozenset[type] = frozenset(
    getattr(source, name) for source in (nn, layer) for name in _AFFINE_NAMES
    if name.startswith("Dropout") and hasattr(source, name))

#: Leaf module types (exact classes) that are affine and act on each time step alike (in eval mode).
AFFINE_LEAVES: frozenset[type] = _BATCH_NORMS | frozenset(
    getattr(source, name) for source in (nn, layer) for name in _AFFINE_NAMES if hasattr(source, name))

#: Containers whose ``forward`` chains their children (per step), or that have no ``forward`` of their own.
_CHAINS: frozenset[type] = frozenset(
    {nn.Sequential, nn.ModuleList, nn.ModuleDict, layer.SeqToANNContainer}
    | {getattr(layer, name) for name in ("MultiStepContainer", "StepModeContainer") if hasattr(layer, name)}
    | (set() if clock_driven_neuron() is None else {clock_driven_layer().SeqToANNContainer}))

#: Why some common leaves are obstacles (by class name).
_LEAF_REASONS = {
    "MaxPool1d": "max of spikes is not affine in the rates", "MaxPool2d": "max of spikes is not affine in the rates",
    "MaxPool3d": "max of spikes is not affine in the rates",
    "AdaptiveMaxPool2d": "max of spikes is not affine in the rates",
    "LayerNorm": "normalises by its input's own statistics, not affine in the rates",
    "GroupNorm": "normalises by its input's own statistics, not affine in the rates",
    "ReLU": "a nonlinearity between spiking layers", "GELU": "a nonlinearity between spiking layers",
    "Softmax": "softmax is not affine in the rates",
    "MultiheadAttention": "attention multiplies input-dependent tensors, not affine in the rates",
}

#: Blocks whose ``forward`` is known to be per-step affine around its children: (module, qualname) -> condition.
_AFFINE_BLOCKS: dict[tuple[str, str], Callable[[nn.Module], bool]] = {}



def _always(block: nn.Module) -> bool:
    return True


def register_affine_block(cls: type, condition: Optional[Callable[[nn.Module], bool]] = None) -> None:
    """Declare that ``cls.forward`` combines its child modules only by per-time-step affine operations, for a
    forward that torch.fx cannot trace (a traceable forward is proven from its graph and needs no declaration).

    Allowed in such a ``forward``: calling children, sums and differences of their outputs (``out + x``),
    scaling by constants, reshapes that keep the time axis first. Not allowed: products of two tensors
    that depend on the input (spike products, attention), max/min, anything that mixes time steps.
    ``condition(block)`` (optional) must hold for an instance to count (e.g. a connection argument).
    The exact class is matched: subclasses must be registered themselves. The children are still checked.
    """
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise TypeError(f"register_affine_block expects an nn.Module subclass, got {cls!r}")
    if condition is not None and not callable(condition):
        raise TypeError("condition must be a callable condition(block) -> bool, or None")
    _AFFINE_BLOCKS[(cls.__module__, cls.__qualname__)] = condition or _always


#: How a verdict was reached.
TRACED, STRUCTURE, DECLARED = "traced graph (torch.fx)", "module structure", "declared with register_affine_block"
RUN_TIME = "run-time check of the T = 1 pass"


@dataclass(frozen=True)
class Verdict:
    """Whether the fast path is exact for a model: ``obstacle`` (None when exact) and the ``methods`` that decided
    (:data:`TRACED` for forwards proven from their graph, :data:`STRUCTURE` for chains of modules,
    :data:`DECLARED` for blocks declared affine, and the fallback for forwards torch.fx could not trace)."""

    obstacle: Optional[str]
    methods: tuple[str, ...]

    @property
    def exact(self) -> bool:
        return self.obstacle is None


def _leaf_obstacle(module: nn.Module) -> Optional[str]:
    if type(module) in _BATCH_NORMS and (module.running_mean is None or module.running_var is None):
        return "BatchNorm without running statistics normalises with batch statistics, which mix time steps"
    return None


def _affine_block(module: nn.Module) -> bool:
    condition = _AFFINE_BLOCKS.get((type(module).__module__, type(module).__qualname__))
    return condition is not None and bool(condition(module))


def _judged_whole(module: nn.Module) -> bool:
    """Modules judged as a whole (opaque to the tracer): neurons, leaves, chains, declared blocks."""
    return (is_spiking_neuron(module) or type(module) in AFFINE_LEAVES or not any(True for _ in module.children())
            or type(module) in _CHAINS or _affine_block(module))


class _Judge:
    """Judges modules by path, recording which methods it used."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    def _used(self, method: str) -> None:
        if method not in self.methods:
            self.methods.append(method)

    def children(self, module: nn.Module, path: str) -> Optional[str]:
        for child_name, child in module.named_children():
            found = self(child, f"{path}.{child_name}")
            if found is not None:
                return found
        return None

    def __call__(self, module: nn.Module, path: str) -> Optional[str]:
        name = f"{path} ({type(module).__name__})"
        if is_spiking_neuron(module):
            if registered_mapping(module) is None and stock_class(module) is None:
                return f"{name}: a spiking neuron with no rate mapping"
            if neuron_layout(module) == "merged":
                return f"{name}: a neuron on a merged [T·B, ...] layout (the fast path replays time-major layers)"
            return None
        if type(module) in AFFINE_LEAVES:
            reason = _leaf_obstacle(module)
            return None if reason is None else f"{name}: {reason}"
        if not any(True for _ in module.children()):
            reason = _LEAF_REASONS.get(type(module).__name__, "not a known affine layer")
            return f"{name}: {reason}"
        if type(module) in _CHAINS:
            self._used(STRUCTURE)
            return self.children(module, path)
        if _affine_block(module):
            self._used(DECLARED)
            return self.children(module, path)
        try:
            graph = trace(module, _judged_whole)
        except Exception as error:  # torch.fx raises several types on code it cannot follow
            self._used(f"{STRUCTURE} (torch.fx could not trace {type(module).__name__}.forward)")
            found = self.children(module, path)
            if found is not None:
                return found
            reason = " ".join(str(error).split())[:160]
            return (f"{name}: torch.fx cannot trace its forward ({type(error).__name__}: {reason}), so it cannot be "
                    "proven affine; if it only adds or scales its children per time step, declare it with "
                    "sj_rga.fast.register_affine_block")
        self._used(TRACED)
        return graph_obstacle(graph, module, path, self)


def prove_fast_path(model: nn.Module) -> Verdict:
    """Whether the fast gradient equals the per-layer one for ``model`` (see the module docstring), and how this
    was decided. The first obstacle is named by its path from ``model`` (e.g. ``model.maxpool (MaxPool2d): max
    of spikes is not affine in the rates``)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    signature = _signature(model)
    cached = _VERDICTS.get(model)
    if cached is not None and cached[0] == signature:
        return cached[1]
    judge = _Judge()
    verdict = Verdict(judge(model, "model"), tuple(judge.methods))
    _VERDICTS[model] = (signature, verdict)
    return verdict


#: The last verdict of each model, with the signature it holds for (tracing a large model takes 0.1 s).
_VERDICTS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, Verdict]] = weakref.WeakKeyDictionary()


def _plain_attributes(module: nn.Module) -> tuple:
    """The module's own attributes of plain types (``step_mode``, ``cnf``, ...), but not its training flag."""
    return tuple((k, v) for k, v in vars(module).items()
                 if k != "training" and isinstance(v, (str, int, float, bool, type(None))))


def _signature(model: nn.Module) -> tuple:
    """What a verdict depends on: the modules (path, object, class, step mode, plain attributes such as SEW's
    ``cnf``) and the registries of neurons and affine blocks."""
    modules = tuple((path, id(m), type(m), _plain_attributes(m)) for path, m in model.named_modules())
    return modules, tuple(_AFFINE_BLOCKS.items()), tuple(registered_classes())


def refuse_at_run_time(model: nn.Module, reason: str) -> None:
    """Record that the fast path's run-time check failed on ``model`` (:class:`~sj_rga.fast.FastPathMismatch`):
    its verdict is this obstacle until the model changes."""
    verdict = prove_fast_path(model)
    _VERDICTS[model] = (_signature(model), Verdict(f"model ({type(model).__name__}): {reason}",
                                                   (*verdict.methods, RUN_TIME)))


def fast_path_obstacle(model: nn.Module) -> Optional[str]:
    """Why the fast gradient may differ from the per-layer one for ``model``, or None when it is exact (the
    obstacle of :func:`prove_fast_path`)."""
    return prove_fast_path(model).obstacle


def mode_obstacle(model: nn.Module) -> Optional[str]:
    """The first BatchNorm or Dropout of ``model`` in training mode (not affine per step), or None."""
    for path, module in model.named_modules(prefix="model"):
        if type(module) in _BATCH_NORMS | _DROPOUTS and module.training:
            return f"{path} ({type(module).__name__}) is in training mode; the fast path needs it in eval mode"
    return None


def use_fast_path(model: nn.Module, rga_path: str) -> bool:
    """Whether a time-uniform gradient of ``model`` takes the fast path under ``rga_path`` (see :data:`RGA_PATHS`).

    ``'fast'`` on a model the criterion cannot prove exact raises a ValueError that names the obstacle and the
    method that found it.
    """
    if rga_path not in RGA_PATHS:
        raise ValueError(f"rga_path must be one of {RGA_PATHS}, got {rga_path!r}")
    if rga_path == "layer":
        return False
    verdict = prove_fast_path(model)
    if verdict.obstacle is not None and rga_path == "fast":
        raise ValueError(f"rga_path='fast' cannot be proven exact for this model: {verdict.obstacle} (decided from "
                         f"the {', '.join(verdict.methods) or 'modules'}). Use rga_path='auto' (or 'layer') for the "
                         "per-layer backward")
    return verdict.obstacle is None
