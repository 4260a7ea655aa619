"""``rate_mode``: give every spiking neuron of an existing model the RGA backward, temporarily."""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch

from .gradients import RGA, gradient_mode
from .mapping import spiking_neurons
from .surrogate import DEFAULT_BETA, DEFAULT_GAMMA, Number

__all__ = ["rate_mode", "spiking_neurons"]


@contextlib.contextmanager
def rate_mode(
    model: torch.nn.Module,
    lam: Optional[Number] = None,
    beta: Number = DEFAULT_BETA,
    gamma: Number = DEFAULT_GAMMA,
    *,
    T: Optional[int] = None,
) -> Iterator[torch.nn.Module]:
    """Inside the block, every spiking neuron of ``model`` uses the RGA backward, whatever its surrogate.

    ``lam=None`` takes each neuron's own leak (1 for IF, 1 - 1/τ for LIF/PLIF). The same as
    ``sj_rga.gradients.gradient_mode(model, sj_rga.gradients.RGA(lam, beta, gamma))``: nothing of the model
    is replaced, and on exit (also after an exception) classes, surrogates, instance attributes, hooks,
    ``training`` flags, step modes and neuron state (``v``, ``v_seq``) are as they were on entry.
    Neurons must run in multi-step mode on ``[T, B, ...]`` inputs while gradients are taken. ``T``: the time
    steps, needed by neurons registered with ``layout='merged'`` (see :func:`~sj_rga.gradients.gradient_mode`).
    """
    with gradient_mode(model, RGA(lam=lam, beta=beta, gamma=gamma), T=T) as inside:
        yield inside
