"""SpikingJelly's IF/LIF/PLIF neurons with ``surrogate_function=RGA()`` by default (λ from the neuron)."""
from __future__ import annotations

import inspect

from spikingjelly.activation_based import neuron

from .gradients.rga import RGA


def _rate_class(base: type, doc: str) -> type:
    """A subclass of ``base`` whose default surrogate is ``RGA()`` (λ from the neuron)."""
    position = list(inspect.signature(base.__init__).parameters).index("surrogate_function") - 1

    def __init__(self, *args, **kwargs):
        if len(args) <= position and "surrogate_function" not in kwargs:
            kwargs["surrogate_function"] = RGA()
        base.__init__(self, *args, **kwargs)

    return type(f"Rate{base.__name__}", (base,), {"__init__": __init__, "__doc__": doc, "__module__": __name__})


RateIFNode = _rate_class(neuron.IFNode, "SpikingJelly's IFNode with surrogate_function=RGA() by default (λ = 1).")
RateLIFNode = _rate_class(neuron.LIFNode,
                          "SpikingJelly's LIFNode with surrogate_function=RGA() by default (λ = 1 - 1/τ).")
RateParametricLIFNode = _rate_class(
    neuron.ParametricLIFNode,
    "SpikingJelly's ParametricLIFNode with surrogate_function=RGA() by default (λ = 1 - sigmoid(w)).")
