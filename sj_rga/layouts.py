"""How a user's model takes its input and gives its output (``SNNClassifier(input_layout=..., output=...)``).

Input layouts (the encoded network input is time-major ``[T, B, ...]`` inside sj-rga):

- ``'TB'`` (default): the model takes ``[T, B, ...]``, as SpikingJelly's multi-step layers do;
- ``'BT'``: the model takes batch-first ``[B, T, ...]`` (e.g. event frames fed as the loaders give them);
- ``'B'``: the model takes one static ``[B, ...]`` batch and makes its own T time steps (Spikformer's
  ``x.unsqueeze(0).repeat(T, 1, 1, 1, 1)``). Only the ``'direct'`` encoding fits it: Poisson spikes and
  event frames differ from step to step, and such a model repeats one input at every step.

Outputs: a tuple, list or dict is first reduced by ``output`` (an index, a key, or a callable taking the
whole output); the tensor left is ``[B, K]`` (logits), or 3-D with one time axis, averaged over time:
``[T, B, K]`` for ``'TB'``, ``[B, T, K]`` for ``'BT'``, and for ``'B'`` either order when T ≠ B (when T = B
the order cannot be told from the shape and the model's output is refused: pass an ``output`` callable that
reduces it). Any other shape is refused with the shape expected; nothing is guessed.
"""
from __future__ import annotations

from typing import Any, Callable, Union

import torch

from .errors import UserModelError

#: The input layouts a model may take (see the module docstring).
INPUT_LAYOUTS = ("TB", "BT", "B")

#: What reduces a model's structured output to its logits tensor: an index, a key, or a callable.
OutputSelector = Union[None, int, str, Callable[[Any], Any]]

_DESCRIPTIONS = {"TB": "time-major [T, B, ...]", "BT": "batch-first [B, T, ...]",
                 "B": "one [B, ...] batch; the model makes its own time steps"}


def describe(input_layout: str) -> str:
    """What the model is fed under ``input_layout``, in words."""
    return _DESCRIPTIONS[input_layout]


def check_input_layout(input_layout: object, encoding: str) -> str:
    """``input_layout`` if it is one of :data:`INPUT_LAYOUTS` and fits ``encoding``; a ValueError otherwise."""
    if input_layout not in INPUT_LAYOUTS:
        raise ValueError(f"input_layout must be one of {INPUT_LAYOUTS} ('TB': time-major [T, B, ...], 'BT': "
                         f"batch-first [B, T, ...], 'B': one [B, ...] batch), got {input_layout!r}")
    if input_layout == "B" and encoding != "direct":
        what = "Poisson spikes differ at every step" if encoding == "poisson" else \
            "event frames have a time axis of their own"
        raise ValueError(f"input_layout='B' (the model repeats one [B, ...] input over its own time steps) cannot "
                         f"take the {encoding!r} encoding: {what}. Use encoding='direct', or a model that takes "
                         "the time steps as input (input_layout='TB' or 'BT')")
    return str(input_layout)


def check_output(output: object) -> OutputSelector:
    """``output`` if it is None, an int index, a str key or a callable; a TypeError otherwise."""
    if output is None or callable(output) or isinstance(output, str) or \
            (isinstance(output, int) and not isinstance(output, bool)):
        return output
    raise TypeError("output must be None, an index (int) into a tuple/list output, a key (str) of a dict output, "
                    f"or a callable that takes the model's output and returns its logits; got {output!r}")


def model_input(x_seq: torch.Tensor, input_layout: str) -> torch.Tensor:
    """The model's input from the encoded time-major ``x_seq`` ``[T, B, ...]``: itself (``'TB'``), a
    batch-first view (``'BT'``), or its first step (``'B'``: the 'direct' encoding repeats one batch, so every
    step is the same; the gradient reaches the pixels through it unchanged)."""
    if input_layout == "TB":
        return x_seq
    if input_layout == "BT":
        return x_seq.transpose(0, 1)
    return x_seq[0]


def select(out: Any, output: OutputSelector) -> Any:
    """The part of the model's output that ``output`` names (``out`` itself when ``output`` is None)."""
    if output is None:
        return out
    if callable(output):
        return output(out)
    if isinstance(out, dict):
        if output not in out:
            raise UserModelError(f"the model returned a dict with keys {sorted(map(str, out))}; output={output!r} "
                                 "is not one of them")
        return out[output]
    if isinstance(out, (tuple, list)):
        if not isinstance(output, int) or not -len(out) <= output < len(out):
            raise UserModelError(f"the model returned a {type(out).__name__} of {len(out)}; output={output!r} must "
                                 f"be an index in [0, {len(out)})")
        return out[output]
    raise UserModelError(f"output={output!r} selects from a tuple, list or dict, but the model returned a "
                         f"{type(out).__name__}; leave output=None")


def _structure(out: Any) -> str:
    if isinstance(out, dict):
        return f"a dict with keys {sorted(map(str, out))}"
    return f"a {type(out).__name__} of {len(out)} ({', '.join(type(v).__name__ for v in out)})"


def logits(out: Any, input_layout: str, T: int, B: int) -> torch.Tensor:
    """Logits ``[B, K]`` from the model's (selected) output; see the module docstring for the shapes taken."""
    if isinstance(out, (tuple, list, dict)):
        raise UserModelError(f"the model returned {_structure(out)}; say which part holds the logits with "
                             "output= (an index, a key, or a callable), e.g. output=0 for (logits, hook)")
    if not isinstance(out, torch.Tensor):
        raise UserModelError(f"the model must return a tensor of logits, got {type(out).__name__}")
    shape = tuple(out.shape)
    expected = {"TB": f"[T, B, classes] = [{T}, {B}, K] or [B, classes]",
                "BT": f"[B, T, classes] = [{B}, {T}, K] or [B, classes]",
                "B": f"[B, classes], or [T, B, classes] / [B, T, classes] with T = {T}, B = {B}"}[input_layout]
    if out.dim() == 2 and shape[0] == B:
        return out
    if out.dim() == 3:
        time_major, batch_first = shape[:2] == (T, B), shape[:2] == (B, T)
        if input_layout == "TB" and time_major or input_layout == "BT" and batch_first:
            return out.mean(0 if input_layout == "TB" else 1)
        if input_layout == "B" and time_major != batch_first:
            return out.mean(0 if time_major else 1)
        if input_layout == "B" and time_major:
            raise UserModelError(f"the model returned shape {shape} and T = B = {T}: whether its time axis comes "
                                 "first or second cannot be told from the shape; pass output= a callable that "
                                 "reduces it to [B, classes] (e.g. output=lambda out: out.mean(0))")
        if time_major or batch_first:
            other = "TB" if time_major else "BT"
            raise UserModelError(f"the model returned shape {shape}, which is {describe(other)}, but "
                                 f"input_layout={input_layout!r} expects {expected}; use input_layout={other!r} or "
                                 "an output callable")
    raise UserModelError(f"the model returned shape {shape}; with input_layout={input_layout!r} sj-rga expects "
                         f"{expected}")
