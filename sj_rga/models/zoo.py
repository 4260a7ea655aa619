"""SpikingJelly's model zoo (``spikingjelly.activation_based.model``) with a chosen neuron, in multi-step mode.

The zoo's ImageNet models take ``[T, B, 3, H, W]`` and return ``[T, B, classes]`` once set to multi-step
mode. The zoo is imported only when a zoo model is asked for: its import pulls torchvision, which fails
when the torch and torchvision builds do not match.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

import torch.nn as nn
from spikingjelly.activation_based import functional, neuron

from ..data.optional_imports import import_optional

#: Zoo modules searched for a model constructor, in order.
ZOO_MODULES: tuple[str, ...] = ("spiking_vgg", "sew_resnet", "spiking_resnet")

#: Extra constructor arguments a zoo family needs (SEW ResNets need their connect function).
_FAMILY_DEFAULTS: Mapping[str, Mapping[str, Any]] = {"sew_resnet": {"cnf": "ADD"}}


def zoo_constructor(name: str) -> tuple[Callable[..., nn.Module], str]:
    """The zoo constructor called ``name`` (e.g. ``spiking_vgg11_bn``, ``sew_resnet18``) and its module."""
    prefix = name.split("_")[0]
    for module_name in ZOO_MODULES:
        if not module_name.startswith(prefix):
            continue
        module = import_optional(f"spikingjelly.activation_based.model.{module_name}", "SpikingJelly's model zoo")
        constructor = getattr(module, name, None)
        if callable(constructor) and not isinstance(constructor, type):
            return constructor, module_name
    raise ValueError(f"{name!r} is not a model of SpikingJelly's zoo modules {', '.join(ZOO_MODULES)}")


def zoo_model(name: str, num_classes: int = 1000, spiking_neuron: Callable[..., nn.Module] = neuron.IFNode,
              zoo_kwargs: Optional[Mapping[str, Any]] = None, **neuron_kwargs: Any) -> nn.Module:
    """SpikingJelly zoo model ``name`` with ``spiking_neuron(**neuron_kwargs)``, set to multi-step mode.

    ``zoo_kwargs`` go to the zoo constructor (e.g. ``{"cnf": "IAND"}`` for SEW ResNets; SEW defaults to
    ``"ADD"``). Input ``[T, B, 3, H, W]``, output ``[T, B, num_classes]``. Weights are random: pretrained
    zoo weights need a download (pass ``zoo_kwargs={"pretrained": True}`` on a machine with network).
    """
    constructor, family = zoo_constructor(name)
    kwargs = {**_FAMILY_DEFAULTS.get(family, {}), **(zoo_kwargs or {})}
    model = constructor(spiking_neuron=spiking_neuron, num_classes=num_classes, **kwargs, **neuron_kwargs)
    functional.set_step_mode(model, "m")
    return model
