"""Small models written the way SNN paper repositories write them, one per input/output style (for the layout
and fast-path tests). Plain SpikingJelly ``activation_based`` layers and neurons, multi-step, 1×8×8 inputs.

- :class:`AttentionSNN`: time-major ``[T, B, C, H, W]`` in, ``[T, B, K]`` out, with a spiking self-attention
  block (Spikformer's SSA: ``(q @ kᵀ) @ v`` of spike tensors), shapes unpacked with ``T, B, C, H, W = x.shape``.
- :class:`StaticInputSNN`: Spikformer-style: a static ``[B, C, H, W]`` batch, repeated over its own
  ``self.T`` steps inside, ``head(x.mean(0))`` out (``[B, K]``); only affine operations between neurons.
- :class:`BatchFirstSNN`: Spike-Driven-Transformer-style: batch-first ``[B, T, C, H, W]`` in (or a static
  ``[B, C, H, W]`` batch it repeats), a tuple ``(logits [B, K], hook)`` out, with a spike-driven attention
  (``q * sum(k * v)``, Hadamard products).
"""
from __future__ import annotations

import torch
import torch.nn as nn
from spikingjelly.activation_based import layer, neuron


def lif() -> nn.Module:
    return neuron.LIFNode(tau=2.0, v_threshold=0.5, detach_reset=True, step_mode="m")


class ConvBN(nn.Module):
    """A convolution and BatchNorm on ``[T, B, C, H, W]``, merging T and B the way the papers' code does."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        x = self.bn(self.conv(x.flatten(0, 1)))
        return x.reshape(T, B, -1, H, W).contiguous()


class SelfAttention(nn.Module):
    """Spiking self-attention (Spikformer's SSA): q, k, v spikes; ``(q @ kᵀ) @ v · scale``; a spiking output."""

    def __init__(self, dim: int):
        super().__init__()
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.q_lif, self.k_lif, self.v_lif, self.out_lif = lif(), lif(), lif(), lif()
        self.proj = nn.Linear(dim, dim)
        self.scale = 0.25

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, N, C]
        q, k, v = self.q_lif(self.q(x)), self.k_lif(self.k(x)), self.v_lif(self.v(x))
        attn = q @ k.transpose(-2, -1) * self.scale
        return self.out_lif(self.proj(attn @ v))


class AttentionSNN(nn.Module):
    """Time-major ``[T, B, 1, 8, 8]`` -> ``[T, B, classes]``: a conv stem, 16 tokens, one SSA block, a head."""

    def __init__(self, classes: int = 10, dim: int = 8):
        super().__init__()
        self.stem = ConvBN(1, dim)
        self.stem_lif = lif()
        self.pool = nn.AvgPool2d(2)
        self.attn = SelfAttention(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_lif(self.stem(x))
        T, B, C, H, W = x.shape
        x = self.pool(x.flatten(0, 1)).reshape(T, B, C, -1).transpose(-2, -1)  # [T, B, N, C]
        x = x + self.attn(x)
        return self.head(x.mean(2))


class StaticInputSNN(nn.Module):
    """Spikformer-style: ``[B, 1, 8, 8]`` -> repeated over ``self.T`` steps inside -> ``head(x.mean(0))`` [B, K]."""

    def __init__(self, T: int, classes: int = 10, dim: int = 6):
        super().__init__()
        self.T = T
        self.stem = ConvBN(1, dim)
        self.stem_lif = lif()
        self.block = ConvBN(dim, dim)
        self.block_lif = lif()
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Linear(dim * 16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        x = self.stem_lif(self.stem(x))
        x = self.block_lif(self.block(x) + x)
        T, B, C, H, W = x.shape
        x = self.pool(x.flatten(0, 1)).reshape(T, B, -1)
        return self.head(x.mean(0))


class SpikeDrivenAttention(nn.Module):
    """Spike-driven self-attention (Hadamard products of spikes): ``q * LIF(sum_N(k * v))``."""

    def __init__(self, dim: int):
        super().__init__()
        self.q = layer.Linear(dim, dim, step_mode="m")
        self.k = layer.Linear(dim, dim, step_mode="m")
        self.v = layer.Linear(dim, dim, step_mode="m")
        self.q_lif, self.k_lif, self.v_lif, self.kv_lif = lif(), lif(), lif(), lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, N, C]
        q, k, v = self.q_lif(self.q(x)), self.k_lif(self.k(x)), self.v_lif(self.v(x))
        kv = self.kv_lif((k * v).sum(dim=-2, keepdim=True) * 0.5)
        return q * kv


class BatchFirstSNN(nn.Module):
    """Spike-Driven-Transformer-style: batch-first frames ``[B, T, 1, 8, 8]`` (or a static ``[B, 1, 8, 8]``
    batch, repeated over ``self.T`` steps) -> ``(logits [B, K], hook)``; the input's rank decides in Python
    (``len(x.shape)``), which torch.fx cannot trace."""

    def __init__(self, classes: int = 10, dim: int = 8, T: int = 3):
        super().__init__()
        self.T = T
        self.stem = layer.SeqToANNContainer(nn.Conv2d(1, dim, 3, padding=1), nn.BatchNorm2d(dim))
        self.stem_lif = lif()
        self.pool = layer.AvgPool2d(2, step_mode="m")
        self.attn = SpikeDrivenAttention(dim)
        self.head_lif = lif()
        self.head = layer.Linear(dim, classes, step_mode="m")

    def forward(self, x: torch.Tensor, hook: dict | None = None):
        if len(x.shape) < 5:
            x = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        else:
            x = x.transpose(0, 1).contiguous()  # [T, B, C, H, W]
        x = self.pool(self.stem_lif(self.stem(x)))
        x = x.flatten(3).transpose(-2, -1)  # [T, B, N, C]
        x = x + self.attn(x)
        x = self.head_lif(x.mean(2))
        if hook is not None:
            hook["head_lif"] = x.detach()
        return self.head(x).mean(0), hook
