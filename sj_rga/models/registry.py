"""Reference models by name, built from plain arguments so that a checkpoint can record and rebuild them."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

import torch.nn as nn

from .digits import digits_snn
from .neurons import PAPER_SURROGATE, PAPER_SURROGATE_KWARGS, make_surrogate, paper_neuron
from .resnet import resnet17
from .vgg import dvs_vgg, vgg11
from .zoo import zoo_model

#: The package's own models: name -> constructor(num_classes, spiking_neuron, in_channels, image_size, **neuron_kwargs).
MODELS: Mapping[str, Callable[..., nn.Module]] = {
    "vgg11": vgg11,
    "resnet17": resnet17,
    "dvs_vgg": dvs_vgg,
    "digits_snn": digits_snn,
}


def build(name: str, num_classes: int, *, in_channels: Optional[int] = None, image_size: Optional[int] = None,
          lam: float = 1.0, surrogate: str = PAPER_SURROGATE, surrogate_kwargs: Optional[Mapping[str, Any]] = None,
          **neuron_overrides: Any) -> nn.Module:
    """A reference model by name with the paper's neuron of leak ``lam`` (see :func:`paper_neuron`).

    ``name``: one of :data:`MODELS` (``vgg11``, ``resnet17``, ``dvs_vgg``, ``digits_snn``) or a SpikingJelly
    zoo constructor (``spiking_vgg11_bn``, ``sew_resnet18``, ...). ``surrogate`` names the surrogate class
    (``"PiecewiseQuadratic"`` = the paper's triangle with ``alpha=1``, ``"RGA"``, any SpikingJelly
    surrogate); ``surrogate_kwargs`` default to ``{"alpha": 1.0}`` for the triangle and ``{}`` otherwise.
    ``in_channels`` and ``image_size`` default to the model's own (3 and 32 for CIFAR models); zoo models
    take neither. All arguments are plain values, so ``build(**checkpoint_meta["model"])`` rebuilds a model.

    Every model maps a time-major input ``[T, B, C, H, W]`` to per-time-step scores ``[T, B, num_classes]``.
    """
    if surrogate_kwargs is None:
        surrogate_kwargs = PAPER_SURROGATE_KWARGS if surrogate == PAPER_SURROGATE else {}
    cls, neuron_kwargs = paper_neuron(lam, make_surrogate(surrogate, **surrogate_kwargs), **neuron_overrides)
    if name in MODELS:
        shape = {key: value for key, value in (("in_channels", in_channels), ("image_size", image_size))
                 if value is not None}
        return MODELS[name](num_classes, cls, **shape, **neuron_kwargs)
    if in_channels not in (None, 3) or image_size is not None:
        raise ValueError(f"SpikingJelly zoo model {name!r} takes 3-channel images of any size: "
                         "leave in_channels and image_size unset")
    try:
        return zoo_model(name, num_classes, cls, **neuron_kwargs)
    except ValueError as err:
        raise ValueError(f"unknown model {name!r}: use one of {', '.join(MODELS)} or a SpikingJelly zoo "
                         f"constructor name ({err})") from err
