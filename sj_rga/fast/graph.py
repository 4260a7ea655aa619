"""The operations of a module's traced forward (torch.fx), judged one by one: affine in the spike rates, per time
step, or the first obstacle to the fast path (method §1.5).

:class:`OpaqueTracer` traces a ``forward`` symbolically and keeps opaque every module that
:func:`sj_rga.fast.exactness` judges as a whole (spiking neurons, known affine layers, containers, declared
blocks, any module without children); each of those becomes one ``call_module`` node. :func:`graph_obstacle`
then follows the values that depend on the model's input (its first argument) through the graph:

- a module call on such a value is judged by ``judge_module`` (recursively, by its path);
- sums, differences, negation, scaling or matrix products with one input-dependent factor, convolution,
  linear maps, average pooling, reductions (mean, sum), reshapes, permutations, indexing, concatenation and
  repeats are linear; that they act on each time step alike (the time axis is not mixed into another) is
  checked at run time by :func:`sj_rga.fast.fast_logits`, which compares every spiking layer's input and the
  logits of its T = 1 pass with the T-step forward and raises rather than give a wrong gradient;
- a product of two input-dependent values (spike products, attention ``q @ kᵀ``), a division by one, and
  every other function (max, ReLU, softmax, LayerNorm, ...) is an obstacle, named with the innermost module
  of the forward it sits in (``path (Type)``).
"""
from __future__ import annotations

import builtins
import inspect
import operator
from typing import Any, Callable, Optional

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

#: Judges a module called on an input-dependent value: its obstacle (a message), or None.
ModuleJudge = Callable[[nn.Module, str], Optional[str]]

#: Products: (function or method name) -> how the product is named when both factors depend on the input.
_ELEMENTWISE = "a spike product (element-wise)"
_MATRIX = "a spike product (matrix, as attention's q @ kᵀ)"
_WEIGHTS = "a linear map with input-dependent weights"
_PRODUCTS: dict[Any, str] = {
    operator.mul: _ELEMENTWISE, operator.imul: _ELEMENTWISE, torch.mul: _ELEMENTWISE, "mul": _ELEMENTWISE,
    "mul_": _ELEMENTWISE, operator.matmul: _MATRIX, torch.matmul: _MATRIX, "matmul": _MATRIX, torch.bmm: _MATRIX,
    "bmm": _MATRIX, torch.einsum: _MATRIX, F.linear: _WEIGHTS, F.conv1d: _WEIGHTS, F.conv2d: _WEIGHTS,
    F.conv3d: _WEIGHTS,
}
_DIVISIONS = {operator.truediv, operator.itruediv, torch.div, torch.true_divide, "div", "div_", "true_divide"}

#: Linear operations that keep each value's dependence affine (per-step action is checked at run time).
_LINEAR: set[Any] = {
    operator.add, operator.iadd, operator.sub, operator.isub, operator.neg, operator.pos, operator.getitem,
    torch.add, torch.sub, torch.neg, torch.cat, torch.concat, torch.stack, torch.flatten, torch.reshape,
    torch.transpose, torch.permute, torch.unsqueeze, torch.squeeze, torch.mean, torch.sum, torch.chunk,
    torch.split, torch.unbind, torch.movedim, torch.swapaxes, torch.clone, torch.narrow,
    F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
    F.pad, builtins.getattr,
    "add", "add_", "sub", "sub_", "neg", "view", "reshape", "flatten", "unflatten", "permute", "transpose",
    "unsqueeze", "squeeze", "contiguous", "clone", "expand", "expand_as", "repeat", "mean", "sum", "chunk",
    "split", "unbind", "movedim", "swapaxes", "narrow", "to", "float", "double", "half", "type_as", "detach",
    "view_as", "reshape_as", "size", "dim",
}

#: Why some common operations are obstacles.
_REASONS: dict[Any, str] = {
    F.max_pool1d: "max of spikes is not affine in the rates", F.max_pool2d: "max of spikes is not affine in the rates",
    F.max_pool3d: "max of spikes is not affine in the rates", torch.max: "max is not affine in the rates",
    "max": "max is not affine in the rates", torch.amax: "max is not affine in the rates",
    F.layer_norm: "normalises by its input's own statistics, not affine", torch.softmax: "softmax is not affine",
    F.softmax: "softmax is not affine", "softmax": "softmax is not affine",
    F.batch_norm: "functional batch norm may use batch statistics, which mix time steps",
    F.dropout: "functional dropout is random in training mode",
}


class OpaqueTracer(fx.Tracer):
    """torch.fx's tracer, keeping the modules that ``opaque(module)`` names as single ``call_module`` nodes."""

    def __init__(self, opaque: Callable[[nn.Module], bool]):
        super().__init__()
        self.opaque = opaque

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return self.opaque(m)


def trace(module: nn.Module, opaque: Callable[[nn.Module], bool]) -> fx.Graph:
    """The graph of ``module.forward`` called on one input, as the classifier calls it (every other argument at
    its default, e.g. ``hook=None``), with the ``opaque`` modules as leaves; torch.fx's exception if it fails."""
    parameters = list(inspect.signature(module.forward).parameters.values())[1:]
    defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    saved = _attributes(module)  # tracing runs the forward's Python code: it may reset state or set attributes
    try:
        return OpaqueTracer(opaque).trace(module, concrete_args=defaults or None)
    finally:
        for m, attributes, contents in saved:
            m.__dict__.clear()
            m.__dict__.update(attributes)
            for table, entries in contents:
                table.clear()
                table.update(entries)


def _attributes(module: nn.Module) -> list[tuple[nn.Module, dict[str, Any], list[tuple[dict, dict]]]]:
    """Every submodule's attributes, and the entries of the dictionaries among them (parameters, buffers, hooks,
    SpikingJelly's memories), so that what a forward assigns can be put back into the same objects."""
    return [(m, dict(vars(m)), [(v, dict(v)) for v in vars(m).values() if isinstance(v, dict)])
            for m in module.modules()]


def _op_name(node: fx.Node) -> str:
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", repr(target))


def _where(node: fx.Node, root: nn.Module, path: str) -> str:
    """``path (Type)`` of the innermost module whose forward holds ``node`` (the traced module itself if none)."""
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        qualified, kind = list(stack.values())[-1]
        kind_name = kind.__name__ if isinstance(kind, type) else str(kind).rsplit(".", 1)[-1].strip("'>")
        if qualified:
            return f"{path}.{qualified} ({kind_name})"
    return f"{path} ({type(root).__name__})"


def _is_shape(node: fx.Node) -> bool:
    """``x.shape``, ``x.size()``, ``x.dim()`` and items of them: sizes, which do not depend on input values."""
    if node.op == "call_function" and node.target is builtins.getattr:
        return node.args[1] in ("shape", "ndim", "dtype", "device")
    if node.op == "call_method" and node.target in ("size", "dim"):
        return True
    return node.op == "call_function" and node.target is operator.getitem and isinstance(node.args[0], fx.Node) \
        and _is_shape(node.args[0])


def _dependent_arguments(node: fx.Node, dependent: set[fx.Node]) -> list[fx.Node]:
    """The arguments of ``node`` that depend on the input, once per occurrence (``x * x`` has two)."""
    found: list[fx.Node] = []
    fx.node.map_arg((node.args, node.kwargs), lambda arg: found.append(arg) if arg in dependent else None)
    return found


def graph_obstacle(graph: fx.Graph, root: nn.Module, path: str, judge_module: ModuleJudge) -> Optional[str]:
    """The first obstacle in ``graph`` (the traced forward of ``root``, at ``path``), or None when every operation
    on a value that depends on the input is affine in the spike rates (see the module docstring)."""
    dependent: set[fx.Node] = set()
    first_input = True
    for node in graph.nodes:
        if node.op == "placeholder":
            if first_input:
                dependent.add(node)
            first_input = False
            continue
        if node.op in ("get_attr", "output"):
            continue
        inputs = _dependent_arguments(node, dependent)
        if not inputs or _is_shape(node):
            continue
        dependent.add(node)
        if node.op == "call_module":
            found = judge_module(root.get_submodule(node.target), f"{path}.{node.target}")
            if found is not None:
                return found
            continue
        target = node.target
        where = _where(node, root, path)
        if target in _PRODUCTS and len(inputs) > 1:
            return (f"{where}: {_PRODUCTS[target]} of two spike-dependent tensors ({_op_name(node)}) is not affine "
                    "in the rates")
        if target in _DIVISIONS:
            divisor = node.args[1] if len(node.args) > 1 else node.kwargs.get("other")
            if divisor in dependent:
                return f"{where}: a division by a spike-dependent tensor ({_op_name(node)}) is not affine in the rates"
            continue
        if target in _PRODUCTS or target in _LINEAR:
            continue
        reason = _REASONS.get(target, "not known to be affine in the rates")
        return f"{where}: {_op_name(node)}: {reason}"
    return None
