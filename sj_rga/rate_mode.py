"""``rate_mode``: give every spiking neuron of an existing model the RGA backward, temporarily."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional

import torch

from .mapping import STOCK_NEURONS, is_spiking_neuron, neuron_mapping, registered_mapping, stock_class, unmappable_error
from .neuron import _RATE_OVERRIDES, SINGLE_STEP_ERROR, rate_by_own_forward
from .surrogate import DEFAULT_BETA, DEFAULT_GAMMA, RGA, Number

_NO_ATTRIBUTE = object()


def spiking_neurons(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Every spiking neuron in ``model`` (SpikingJelly neurons and registered classes), in module order."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    found = [m for m in model.modules() if is_spiking_neuron(m)]
    if not found:
        raise ValueError(f"{type(model).__name__} contains no spiking neuron (no SpikingJelly BaseNode and no "
                         "class registered with sj_rga.register_neuron): there is nothing to take a rate gradient of")
    return found


def _check_mappable(node: torch.nn.Module) -> None:
    if registered_mapping(node) is None and stock_class(node) is None:
        raise unmappable_error(node)
    neuron_mapping(node)


def _own_forward_wrapper(node: torch.nn.Module, rga: RGA):
    """An instance ``forward`` for a registered (non-stock) neuron: its own forward plus the RGA backward."""
    original = type(node).forward.__get__(node)

    def forward(x_seq: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if getattr(node, "step_mode", "m") != "m":
            if torch.is_grad_enabled() and getattr(x_seq, "requires_grad", False):
                raise RuntimeError(SINGLE_STEP_ERROR.format(name=type(node).__name__))
            return original(x_seq, *args, **kwargs)
        return rate_by_own_forward(node, x_seq, lambda x: original(x, *args, **kwargs), rga)

    return forward


def _clone(value: object) -> object:
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


def save_model_state(model: torch.nn.Module) -> list[tuple[torch.nn.Module, bool, object, dict, object]]:
    """Each module's training flag, step mode, SpikingJelly memories (cloned) and ``v_seq``."""
    return [(m, m.training, getattr(m, "step_mode", _NO_ATTRIBUTE),
             {k: _clone(v) for k, v in getattr(m, "_memories", {}).items()},
             _clone(m.__dict__.get("v_seq", _NO_ATTRIBUTE)))
            for m in model.modules()]


def restore_model_state(saved: list[tuple[torch.nn.Module, bool, object, dict, object]]) -> None:
    """Put back what :func:`save_model_state` recorded."""
    for m, training, step_mode, memories, v_seq in saved:
        m.training = training
        if step_mode is not _NO_ATTRIBUTE:
            m.step_mode = step_mode
        for k, v in memories.items():
            m._memories[k] = v
        if v_seq is not _NO_ATTRIBUTE:
            m.v_seq = v_seq


@contextlib.contextmanager
def replaced_forwards(replacements: dict[torch.nn.Module, Callable[..., torch.Tensor]]) -> Iterator[None]:
    """Give each module an instance ``forward`` for the duration of the block; put back exactly what was
    there (an earlier instance attribute, or none) on exit, also after an exception."""
    saved = [(node, node.__dict__.get("forward", _NO_ATTRIBUTE)) for node in replacements]
    try:
        for node, forward in replacements.items():
            node.forward = forward
        yield
    finally:
        for node, previous in reversed(saved):
            if previous is _NO_ATTRIBUTE:
                del node.forward
            else:
                node.forward = previous


@contextlib.contextmanager
def rate_mode(
    model: torch.nn.Module,
    lam: Optional[Number] = None,
    beta: Number = DEFAULT_BETA,
    gamma: Number = DEFAULT_GAMMA,
) -> Iterator[torch.nn.Module]:
    """Inside the block, every spiking neuron of ``model`` uses the RGA backward, whatever its surrogate.

    ``lam=None`` takes each neuron's own leak (1 for IF, 1 - 1/τ for LIF/PLIF). Nothing of the model
    is replaced: the neurons are looked up by the wrapped SpikingJelly methods, and on exit (also after
    an exception) classes, surrogates, forward methods, hooks, ``training`` flags, step modes and neuron
    state (``v``, ``v_seq``) are as they were on entry, whatever ran inside.
    Neurons must run in multi-step mode on ``[T, B, ...]`` inputs while gradients are taken.
    """
    rga = RGA(lam=lam, beta=beta, gamma=gamma)
    neurons = spiking_neurons(model)
    for node in neurons:
        _check_mappable(node)
    saved_state = save_model_state(model)
    own_forwards = {node: _own_forward_wrapper(node, rga) for node in neurons if not isinstance(node, STOCK_NEURONS)}
    try:
        for node in neurons:
            _RATE_OVERRIDES.setdefault(node, []).append(rga)
        with replaced_forwards(own_forwards):
            yield model
    finally:
        for node in neurons:
            stack = _RATE_OVERRIDES.get(node)
            if stack and rga in stack:
                stack.remove(rga)
            if not stack:
                _RATE_OVERRIDES.pop(node, None)
        restore_model_state(saved_state)
