"""The paper's spiking ResNet-17 for CIFAR, from SpikingJelly multi-step layers.

Input ``[T, B, C, 32, 32]``, output per-time-step class scores ``[T, B, classes]``.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn
from spikingjelly.activation_based import layer, neuron

from .blocks import avg_pool, conv_bn_neuron, flatten, linear, pooled_size
from .neurons import NeuronFactory, neuron_factory


class BasicBlock(nn.Module):
    """conv3×3-BN-neuron-conv3×3-BN, plus the shortcut, then a neuron.

    The shortcut is the identity, or a 1×1 conv + BN when the block strides or changes channels. Convs
    carry no bias (BatchNorm follows each).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, make_neuron: NeuronFactory):
        super().__init__()
        self.residual = nn.Sequential(
            *conv_bn_neuron(in_channels, out_channels, make_neuron, stride=stride, bias=False),
            layer.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False, step_mode="m"),
            layer.BatchNorm2d(out_channels, step_mode="m"),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                layer.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False, step_mode="m"),
                layer.BatchNorm2d(out_channels, step_mode="m"),
            )
        self.neuron = make_neuron()

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``[T, B, C_in, H, W] -> [T, B, C_out, H/stride, W/stride]`` spikes."""
        return self.neuron(self.residual(x_seq) + self.shortcut(x_seq))


def _stage(in_channels: int, out_channels: int, blocks: int, make_neuron: NeuronFactory) -> list[nn.Module]:
    """``blocks`` basic blocks, the first with stride 2."""
    stage = [BasicBlock(in_channels, out_channels, 2, make_neuron)]
    stage += [BasicBlock(out_channels, out_channels, 1, make_neuron) for _ in range(blocks - 1)]
    return stage


def resnet17(num_classes: int, spiking_neuron: Callable[..., nn.Module] = neuron.IFNode, in_channels: int = 3,
             image_size: int = 32, **neuron_kwargs: Any) -> nn.Sequential:
    """The paper's spiking ResNet-17.

    Stem conv3×3-64 + BN + neuron; stage 1: 3 basic blocks at 64 channels (the first with stride 2 and a
    1×1 conv + BN shortcut); stage 2: 4 blocks at 128 channels (the first with stride 2); AvgPool2d(2);
    flatten; Linear(2048, 256) + BatchNorm1d with no neuron after it; Linear(256, ``num_classes``).
    15 convs + 2 linear layers. Input ``[T, B, in_channels, 32, 32]``, output ``[T, B, num_classes]``.
    """
    flat = 128 * pooled_size("resnet17", image_size, 3) ** 2
    make = neuron_factory(spiking_neuron, neuron_kwargs)
    return nn.Sequential(
        *conv_bn_neuron(in_channels, 64, make, bias=False),
        *_stage(64, 64, 3, make),
        *_stage(64, 128, 4, make),
        avg_pool(),
        flatten(),
        linear(flat, 256),
        # nn.BatchNorm1d over [T·B, 256]: SpikingJelly 0.0.0.0.14's multi-step BatchNorm1d wants [T, B, C, L].
        layer.SeqToANNContainer(nn.BatchNorm1d(256)),
        linear(256, num_classes),
    )
