"""Multi-step building blocks shared by the reference models (inputs and outputs time-major [T, B, ...])."""
from __future__ import annotations

import torch.nn as nn
from spikingjelly.activation_based import layer

from .neurons import NeuronFactory


def conv_bn_neuron(in_channels: int, out_channels: int, make_neuron: NeuronFactory, *, stride: int = 1,
                   bias: bool = True) -> list[nn.Module]:
    """3×3 convolution (padding 1), BatchNorm2d and a spiking neuron, all in multi-step mode."""
    return [
        layer.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=bias, step_mode="m"),
        layer.BatchNorm2d(out_channels, step_mode="m"),
        make_neuron(),
    ]


def avg_pool() -> nn.Module:
    """Multi-step AvgPool2d(2): halves height and width."""
    return layer.AvgPool2d(2, step_mode="m")


def flatten() -> nn.Module:
    """Multi-step flatten: ``[T, B, C, H, W] -> [T, B, C·H·W]``."""
    return layer.Flatten(step_mode="m")


def linear(in_features: int, out_features: int) -> nn.Module:
    """Multi-step fully connected layer with bias."""
    return layer.Linear(in_features, out_features, step_mode="m")


def pooled_size(model: str, image_size: int, halvings: int) -> int:
    """Side length after ``halvings`` halvings of ``image_size``, or a ValueError when it does not divide."""
    if image_size % 2 ** halvings:
        raise ValueError(f"{model} halves the image {halvings} times: image_size must be divisible by "
                         f"{2 ** halvings}, got {image_size}")
    return image_size // 2 ** halvings
