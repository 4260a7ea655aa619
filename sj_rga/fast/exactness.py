"""When is the fast gradient of the time-uniform estimators exact? A conservative decision from the modules.

The fast path (method §1.5) equals the per-layer backward of RGA, BPTR or HART when every operation between spiking
layers (and before the first, and after the last) is affine and acts on each time step alike: then it
commutes with the mean over T and its Jacobian is the same at every step. A Python ``forward`` can do
anything, so the criterion looks only at what it can vouch for:

- every leaf module is a spiking neuron with a rate mapping (stock IF/LIF/PLIF or a class registered with
  :func:`sj_rga.register_neuron`), or of one of the exact types in :data:`AFFINE_LEAVES` (convolution,
  linear, BatchNorm with running statistics, average pooling, flatten, dropout, identity; torch's classes and
  SpikingJelly's multi-step wrappers — a subclass may override ``forward`` and is not accepted);
- every module with children is a container whose ``forward`` only chains its children
  (``nn.Sequential``, SpikingJelly's ``SeqToANNContainer``; ``ModuleList``/``ModuleDict`` hold modules for
  their parent), or a block registered with :func:`register_affine_block` because its ``forward`` combines
  its children only by per-step affine operations (residual sums). Registered out of the box: sj_rga's
  ResNet ``BasicBlock`` (``neuron(residual(x) + shortcut(x))``) and SpikingJelly's SEW ResNet and its
  blocks with the ``'ADD'`` connection. Any other module with a ``forward`` of its own — spike products
  (SEW ``'AND'``/``'IAND'``), attention, max pooling, time-mixing layers — is an obstacle.

BatchNorm and Dropout count as affine in eval mode only; :class:`~sj_rga.SNNClassifier` always runs them
so, and :func:`~sj_rga.fast.fast_logits` checks it at run time.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch.nn as nn
from spikingjelly.activation_based import layer

from .._compat import clock_driven_layer, clock_driven_neuron
from ..mapping import is_spiking_neuron, neuron_layout, registered_mapping, stock_class

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

#: Containers whose ``forward`` chains their children, or that have no ``forward`` of their own.
_CHAINS: frozenset[type] = frozenset({nn.Sequential, nn.ModuleList, nn.ModuleDict, layer.SeqToANNContainer}) | (
    frozenset() if clock_driven_neuron() is None else frozenset({clock_driven_layer().SeqToANNContainer}))

#: Blocks whose ``forward`` is known to be per-step affine around its children: (module, qualname) -> condition.
_AFFINE_BLOCKS: dict[tuple[str, str], Callable[[nn.Module], bool]] = {}

_SEW = "spikingjelly.activation_based.model.sew_resnet"


def _always(block: nn.Module) -> bool:
    return True


def _sew_add(block: nn.Module) -> bool:
    return getattr(block, "cnf", None) == "ADD"


def register_affine_block(cls: type, condition: Optional[Callable[[nn.Module], bool]] = None) -> None:
    """Declare that ``cls.forward`` combines its child modules only by per-time-step affine operations.

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


for _key, _condition in (
    (("sj_rga.models.resnet", "BasicBlock"), _always),
    ((_SEW, "SEWResNet"), _always),
    ((_SEW, "BasicBlock"), _sew_add),
    ((_SEW, "Bottleneck"), _sew_add),
):
    _AFFINE_BLOCKS[_key] = _condition


def _leaf_obstacle(module: nn.Module) -> Optional[str]:
    if type(module) in _BATCH_NORMS and (module.running_mean is None or module.running_var is None):
        return "BatchNorm without running statistics normalises with batch statistics, which mix time steps"
    return None


def _affine_block(module: nn.Module) -> bool:
    condition = _AFFINE_BLOCKS.get((type(module).__module__, type(module).__qualname__))
    return condition is not None and bool(condition(module))


def _obstacle(module: nn.Module, path: str) -> Optional[str]:
    name = f"{path} ({type(module).__name__})"
    if is_spiking_neuron(module):
        if registered_mapping(module) is None and stock_class(module) is None:
            return f"{name}: a spiking neuron with no rate mapping"
        if neuron_layout(module) == "merged":
            return f"{name}: a neuron on a merged [T·B, ...] layout splits its T steps itself, it cannot run at T = 1"
        return None
    if type(module) in AFFINE_LEAVES:
        reason = _leaf_obstacle(module)
        return None if reason is None else f"{name}: {reason}"
    children = list(module.named_children())
    if not children:
        return f"{name}: not a known affine layer (max pooling, attention, custom layers break the identity)"
    if type(module) not in _CHAINS and not _affine_block(module):
        return (f"{name}: its forward is not known to combine its children affinely (e.g. spike products); "
                "if it only adds or scales them per time step, declare it with "
                "sj_rga.fast.register_affine_block")
    for child_name, child in children:
        found = _obstacle(child, f"{path}.{child_name}")
        if found is not None:
            return found
    return None


def fast_path_obstacle(model: nn.Module) -> Optional[str]:
    """Why the fast gradient may differ from the per-layer one for ``model``, or None when it is exact.

    The first offending module is named by its path from ``model`` (e.g. ``model.maxpool (MaxPool2d)``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    return _obstacle(model, "model")


def mode_obstacle(model: nn.Module) -> Optional[str]:
    """The first BatchNorm or Dropout of ``model`` in training mode (not affine per step), or None."""
    for path, module in model.named_modules(prefix="model"):
        if type(module) in _BATCH_NORMS | _DROPOUTS and module.training:
            return f"{path} ({type(module).__name__}) is in training mode; the fast path needs it in eval mode"
    return None


def use_fast_path(model: nn.Module, rga_path: str) -> bool:
    """Whether a time-uniform gradient of ``model`` takes the fast path under ``rga_path`` (see :data:`RGA_PATHS`).

    ``'fast'`` on a model the criterion cannot prove exact raises a ValueError that names the obstacle.
    """
    if rga_path not in RGA_PATHS:
        raise ValueError(f"rga_path must be one of {RGA_PATHS}, got {rga_path!r}")
    if rga_path == "layer":
        return False
    obstacle = fast_path_obstacle(model)
    if obstacle is not None and rga_path == "fast":
        raise ValueError(f"rga_path='fast' cannot be proven exact for this model: {obstacle}. "
                         "Use rga_path='auto' (or 'layer') for the per-layer backward")
    return obstacle is None
