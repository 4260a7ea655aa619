"""A tiny model written the way Spikformer-era repositories write theirs (our own code, in their style):
``clock_driven`` imports at the top, ``MultiStepLIFNode(tau=2.0, detach_reset=True, backend='cupy')``,
ANN layers on ``x.flatten(0, 1)`` with BatchNorm1d over the channel of tokens, reshapes back to
``[T, B, N, C]``, a spiking self-attention (products of spike matrices), residual sums, a linear head.

Import it only where ``spikingjelly.clock_driven`` exists (SpikingJelly 0.0.0.0.14, or 2.x after
``sj_rga.compat.enable_clock_driven()``). Input: time-major ``[T, B, 1, 8, 8]``; output ``[B, classes]``.
``lif``: the neuron factory; the default is the published one, :func:`activation_based_lif` its twin.
"""
from __future__ import annotations

import functools
from typing import Callable, Optional

import torch
import torch.nn as nn
from spikingjelly.clock_driven import layer
from spikingjelly.clock_driven.neuron import MultiStepLIFNode

#: The published keyword arguments; SpikingJelly 0.0.0.0.14 asserts CuPy for 'cupy' at construction, so the
#: tests build with 'torch' there and set ``backend = 'cupy'`` afterwards.
BACKEND = "cupy"


def clock_driven_lif(v_threshold: float = 1.0, backend: str = BACKEND) -> nn.Module:
    return MultiStepLIFNode(tau=2.0, v_threshold=v_threshold, detach_reset=True, backend=backend)


def activation_based_lif(v_threshold: float = 1.0) -> nn.Module:
    from spikingjelly.activation_based import neuron
    return neuron.LIFNode(tau=2.0, v_threshold=v_threshold, detach_reset=True, step_mode="m")


class TokenLinear(nn.Module):
    """Linear + BatchNorm1d on tokens ``[T, B, N, C]`` (flattened over T·B, normalised per channel), then LIF."""

    def __init__(self, dim_in: int, dim_out: int, lif: Callable[..., nn.Module], v_threshold: float = 1.0):
        super().__init__()
        self.linear, self.bn = nn.Linear(dim_in, dim_out), nn.BatchNorm1d(dim_out)
        self.lif = lif(v_threshold=v_threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, N, _ = x.shape
        y = self.bn(self.linear(x.flatten(0, 1)).transpose(-1, -2)).transpose(-1, -2)
        return self.lif(y.reshape(T, B, N, -1).contiguous())


class SpikingSelfAttention(nn.Module):
    """Q, K, V spikes; attention = Q·Kᵀ·V scaled, no softmax; a LIF at threshold 0.5; a projection."""

    def __init__(self, dim: int, heads: int, lif: Callable[..., nn.Module]):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = (TokenLinear(dim, dim, lif) for _ in range(3))
        self.attn_lif = lif(v_threshold=0.5)
        self.proj = TokenLinear(dim, dim, lif)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, N, C = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(T, B, N, self.heads, C // self.heads).permute(0, 1, 3, 2, 4)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        mixed = (q @ k.transpose(-2, -1)) @ v * 0.25
        return self.proj(self.attn_lif(mixed.transpose(2, 3).reshape(T, B, N, C).contiguous()))


class TinySpikformer(nn.Module):
    """Conv patch embedding (SeqToANNContainer, LIF), one attention + MLP block with residual sums, a head."""

    def __init__(self, num_classes: int = 10, dim: int = 8, heads: int = 2,
                 lif: Optional[Callable[..., nn.Module]] = None):
        super().__init__()
        lif = lif or functools.partial(clock_driven_lif)
        self.embed = layer.SeqToANNContainer(nn.Conv2d(1, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim),
                                             nn.AvgPool2d(2))
        self.embed_lif = lif()
        self.attn = SpikingSelfAttention(dim, heads, lif)
        self.mlp = nn.Sequential(TokenLinear(dim, 2 * dim, lif), TokenLinear(2 * dim, dim, lif))
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed_lif(self.embed(x))  # [T, B, C, 4, 4]
        x = x.flatten(-2).transpose(-1, -2)  # [T, B, N, C]
        x = x + self.attn(x)
        x = x + self.mlp(x)
        return self.head(x.mean(2).mean(0))
