"""Attach gradient handles to neurons for the duration of a block (method §5), and put the model back.

Every neuron gets the handle as an instance attribute (:data:`sj_rga.neuron.HANDLE`). Then two mechanisms,
each where the other cannot reach:

- a stock neuron with unchanged dynamics (:func:`sj_rga.neuron.runs_wrapped_method`) is run by the handle
  from the wrapped multi-step method, which reads the attribute: the handle replaces the neuron's whole
  multi-step computation (no autograd graph of the stock forward is built);
- any other neuron (a registered class, or a stock class whose ``forward`` is overridden) gets a forward
  pre-hook, which feeds its own forward a detached input, and a forward hook, which hands the handle the
  original input and the spikes and returns the handle's output (the attribute tells a wrapped method it
  reaches on the way to run the neuron's own forward, without a graph and without its surrogate's route).

Both live on the module (its ``__dict__`` and hook tables), so the copies that ``nn.DataParallel`` makes
at every call carry them too. On exit, also after an exception, every attribute and hook is as before.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from .neuron import HANDLE, LayerHandle, runs_wrapped_method

_MISSING = object()


#: What a neuron's layer is handed to while attached: ``stock`` for stock neurons with unchanged dynamics
#: (through the class patch), ``own`` for every other neuron (through hooks).
Handle = LayerHandle


class _HookPair:
    """The pre-hook and hook that route a neuron's own forward through ``handle.own``."""

    def __init__(self, handle: Handle):
        self.handle = handle
        self.inputs: dict[torch.nn.Module, torch.Tensor] = {}

    def before(self, node: torch.nn.Module, args: tuple) -> tuple:
        if not args or not isinstance(args[0], torch.Tensor):
            raise TypeError(f"{type(node).__name__} under an sj_rga gradient takes a tensor [T, B, ...] as its first "
                            "argument")
        self.inputs[node] = args[0]
        return (args[0].detach(), *args[1:])

    def after(self, node: torch.nn.Module, args: tuple, spikes: object) -> torch.Tensor:
        x_seq = self.inputs.pop(node)
        if not isinstance(spikes, torch.Tensor):
            raise TypeError(f"{type(node).__name__} must return a spike tensor under an sj_rga gradient, got "
                            f"{type(spikes).__name__}")
        return self.handle.own(node, x_seq, spikes)


@contextlib.contextmanager
def attach(handles: dict[torch.nn.Module, Handle]) -> Iterator[None]:
    """Inside the block, each neuron of ``handles`` runs through its handle (see the module docstring)."""
    saved: list[tuple[torch.nn.Module, object]] = []
    hooks: list[torch.utils.hooks.RemovableHandle] = []
    try:
        for node, handle in handles.items():
            saved.append((node, node.__dict__.get(HANDLE, _MISSING)))
            node.__dict__[HANDLE] = handle
            if not runs_wrapped_method(node):
                pair = _HookPair(handle)
                hooks.append(node.register_forward_pre_hook(pair.before))
                hooks.append(node.register_forward_hook(pair.after))
        yield
    finally:
        for hook in reversed(hooks):
            hook.remove()
        for node, previous in reversed(saved):
            if previous is _MISSING:
                node.__dict__.pop(HANDLE, None)
            else:
                node.__dict__[HANDLE] = previous


def _clone(value: object) -> object:
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


ModelState = list[tuple[torch.nn.Module, bool, object, dict, object]]


def save_model_state(model: torch.nn.Module) -> ModelState:
    """Each module's training flag, step mode, SpikingJelly memories (cloned) and ``v_seq``."""
    return [(m, m.training, getattr(m, "step_mode", _MISSING),
             {k: _clone(v) for k, v in getattr(m, "_memories", {}).items()},
             _clone(m.__dict__.get("v_seq", _MISSING)))
            for _, m in model.named_modules(remove_duplicate=False)]  # equal RGA surrogates are distinct modules


def restore_model_state(saved: ModelState) -> None:
    """Put back what :func:`save_model_state` recorded."""
    for m, training, step_mode, memories, v_seq in saved:
        m.training = training
        if step_mode is not _MISSING:
            m.step_mode = step_mode
        for k, v in memories.items():
            m._memories[k] = v
        if v_seq is not _MISSING:
            m.v_seq = v_seq
