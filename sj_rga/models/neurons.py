"""Spiking neurons for the reference models: the paper's neuron from its leak λ, and neuron factories.

The paper's neuron charges ``V[t] = λ·V[t-1] + X[t]``, spikes when ``V ≥ 1`` and resets hard to 0. In
SpikingJelly that is ``IFNode`` for λ = 1 and ``LIFNode(tau=1/(1-λ), decay_input=False, v_threshold=1.0,
v_reset=0.0)`` for λ < 1 (method §1.3). Its STBP baseline surrogate is the triangle of width 1,
SpikingJelly's ``surrogate.PiecewiseQuadratic(alpha=1.0)``.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Mapping, Optional

import torch.nn as nn
from spikingjelly.activation_based import neuron, surrogate

#: The surrogate the paper trains with and takes its STBP baseline from (the triangle of width 1).
PAPER_SURROGATE: str = "PiecewiseQuadratic"
PAPER_SURROGATE_KWARGS: Mapping[str, Any] = {"alpha": 1.0}

#: A callable that returns one fresh spiking neuron module in multi-step mode.
NeuronFactory = Callable[[], nn.Module]


def make_surrogate(name: str, **kwargs: Any) -> nn.Module:
    """A surrogate function by class name: ``"RGA"`` (sj_rga's rate surrogate) or any class of
    ``spikingjelly.activation_based.surrogate`` (``"PiecewiseQuadratic"``, ``"Sigmoid"``, ``"ATan"``, ...)."""
    if name == "RGA":
        from ..gradients import RGA

        return RGA(**kwargs)
    cls = getattr(surrogate, name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(
            f"unknown surrogate {name!r}: use 'RGA' or a class name from spikingjelly.activation_based.surrogate"
        )
    return cls(**kwargs)


def paper_neuron(lam: float = 1.0, surrogate_function: Optional[nn.Module] = None,
                 **overrides: Any) -> tuple[type[nn.Module], dict[str, Any]]:
    """The paper's neuron with leak ``lam`` as ``(neuron class, keyword arguments)``.

    ``lam = 1`` gives ``IFNode(v_threshold=1.0, v_reset=0.0)``; ``0 < lam < 1`` gives
    ``LIFNode(tau=1/(1-lam), decay_input=False, v_threshold=1.0, v_reset=0.0)``. The surrogate defaults to
    the triangle ``PiecewiseQuadratic(alpha=1.0)``; ``overrides`` (e.g. ``detach_reset=True``) replace or
    add keyword arguments. Pass the pair on as ``vgg11(10, cls, **kwargs)``.
    """
    lam = float(lam)
    if not 0.0 < lam <= 1.0:
        raise ValueError(f"the leak lam must lie in (0, 1], got {lam}")
    if surrogate_function is None:
        surrogate_function = make_surrogate(PAPER_SURROGATE, **PAPER_SURROGATE_KWARGS)
    kwargs: dict[str, Any] = {"v_threshold": 1.0, "v_reset": 0.0, "surrogate_function": surrogate_function}
    if lam == 1.0:
        cls: type[nn.Module] = neuron.IFNode
    else:
        cls = neuron.LIFNode
        kwargs.update(tau=1.0 / (1.0 - lam), decay_input=False)
    kwargs.update(overrides)
    return cls, kwargs


def neuron_factory(spiking_neuron: Callable[..., nn.Module], neuron_kwargs: Mapping[str, Any]) -> NeuronFactory:
    """A factory of fresh multi-step neurons ``spiking_neuron(**neuron_kwargs, step_mode='m')``.

    The keyword arguments are deep-copied for every neuron, so no two neurons share a surrogate module.
    """
    if "step_mode" in neuron_kwargs:
        raise ValueError("the reference models always run in multi-step mode: do not pass step_mode")

    def make() -> nn.Module:
        return spiking_neuron(step_mode="m", **copy.deepcopy(dict(neuron_kwargs)))

    return make
