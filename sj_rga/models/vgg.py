"""The paper's VGG-11 for CIFAR and its VGG for CIFAR10-DVS, from SpikingJelly multi-step layers.

Both take a time-major input ``[T, B, C, H, W]`` and return per-time-step class scores ``[T, B, classes]``;
the classifier wrapper averages them over T.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import torch.nn as nn
from spikingjelly.activation_based import neuron

from .blocks import avg_pool, conv_bn_neuron, flatten, linear, pooled_size
from .neurons import NeuronFactory, neuron_factory

#: VGG-11 feature layers as the paper's code has them: channel counts, "A" = AvgPool2d(2).
VGG11_LAYERS: tuple[Union[int, str], ...] = (64, "A", 128, 256, "A", 512, 512, 512, "A", 512, 512)

#: The CIFAR10-DVS VGG's feature layers (48×48 frames -> 3×3 after four poolings).
DVS_VGG_LAYERS: tuple[Union[int, str], ...] = (64, 128, "A", 256, 256, "A", 512, 512, "A", 512, 512, "A")


def _features(spec: Sequence[Union[int, str]], in_channels: int, make_neuron: NeuronFactory) -> list[nn.Module]:
    """Conv(3×3, pad 1, bias)-BN-neuron for each channel count, AvgPool2d(2) for each "A"."""
    layers: list[nn.Module] = []
    for item in spec:
        if item == "A":
            layers.append(avg_pool())
        else:
            layers += conv_bn_neuron(in_channels, int(item), make_neuron)
            in_channels = int(item)
    return layers


def vgg11(num_classes: int, spiking_neuron: Callable[..., nn.Module] = neuron.IFNode, in_channels: int = 3,
          image_size: int = 32, **neuron_kwargs: Any) -> nn.Sequential:
    """The paper's spiking VGG-11 for 32×32 images.

    conv64-A, conv128, conv256-A, conv512×3-A, conv512×2 (each conv 3×3, pad 1, bias, then BatchNorm and a
    spiking neuron; A = AvgPool2d(2)), flatten, FC 4096-neuron, FC 4096-neuron, FC ``num_classes``; no
    dropout. Input ``[T, B, in_channels, image_size, image_size]`` (image_size divisible by 8), output
    ``[T, B, num_classes]``. ``spiking_neuron(**neuron_kwargs, step_mode='m')`` builds every neuron.
    """
    flat = 512 * pooled_size("vgg11", image_size, 3) ** 2
    make = neuron_factory(spiking_neuron, neuron_kwargs)
    return nn.Sequential(
        *_features(VGG11_LAYERS, in_channels, make),
        flatten(),
        linear(flat, 4096), make(),
        linear(4096, 4096), make(),
        linear(4096, num_classes),
    )


def dvs_vgg(num_classes: int = 10, spiking_neuron: Callable[..., nn.Module] = neuron.IFNode, in_channels: int = 2,
            image_size: int = 48, **neuron_kwargs: Any) -> nn.Sequential:
    """The paper's spiking VGG for CIFAR10-DVS frames.

    [64, 128, A], [256, 256, A], [512, 512, A], [512, 512, A] (conv 3×3, pad 1, bias, BatchNorm, neuron;
    A = AvgPool2d(2)), flatten, Linear(512·(image_size/16)², ``num_classes``) = Linear(512·9, 10) at 48×48.
    Input ``[T, B, 2, 48, 48]`` event-count frames, output ``[T, B, num_classes]``.
    """
    flat = 512 * pooled_size("dvs_vgg", image_size, 4) ** 2
    make = neuron_factory(spiking_neuron, neuron_kwargs)
    return nn.Sequential(
        *_features(DVS_VGG_LAYERS, in_channels, make),
        flatten(),
        linear(flat, num_classes),
    )
