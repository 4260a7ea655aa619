"""A Spikformer-style model file (our own code, written the way ZK-Zhou/spikformer ``cifar10/model.py`` writes
its model, checked against that file): the same imports (``MultiStepLIFNode`` from
``spikingjelly.clock_driven.neuron``, ``torch.nn.functional as F``), the published neuron
``MultiStepLIFNode(tau=2.0, detach_reset=True, backend='cupy')`` (``v_threshold=0.5`` for the attention's),
ANN layers on ``x.flatten(0, 1)`` with BatchNorm1d over the channels of tokens, an SPS patch embedding with
max pooling of spikes and a relative position embedding added to the pooled spikes, SSA (products of spike
matrices, no softmax), an MLP, residual sums, and the published ``forward``: a static ``[B, C, H, W]`` batch,
``x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)`` inside, ``self.head(x.mean(0))`` out (``[B, classes]``).

The published file also imports timm (``to_2tuple``, ``trunc_normal_``, ``DropPath``, ``register_model``,
``_cfg``), which is not installed here; this file does without it (a plain pair for the patch size, the
default initialisation). Sizes are tiny, for 8×8 one-channel digits: ``embed_dims`` 16, 2 heads, one block,
4 tokens.

Import it only where ``spikingjelly.clock_driven`` exists (SpikingJelly 0.0.0.0.14, or 2.x after
``sj_rga.compat.enable_clock_driven()``). SpikingJelly 0.0.0.0.14 asserts CuPy at construction when
``backend='cupy'``; :data:`BACKEND` lets the tests build with ``'torch'`` there.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F  # noqa: F401  (imported as the published file does)
from spikingjelly.clock_driven.neuron import MultiStepLIFNode

__all__ = ["spikformer"]

#: The published ``backend=`` keyword; 0.0.0.0.14 without CuPy needs ``'torch'`` at construction.
BACKEND = "cupy"


def lif(v_threshold=1.0):
    return MultiStepLIFNode(tau=2.0, v_threshold=v_threshold, detach_reset=True, backend=BACKEND)


class MLP(nn.Module):
    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1_linear, self.fc1_bn, self.fc1_lif = nn.Linear(in_features, hidden_features), \
            nn.BatchNorm1d(hidden_features), lif()
        self.fc2_linear, self.fc2_bn, self.fc2_lif = nn.Linear(hidden_features, in_features), \
            nn.BatchNorm1d(in_features), lif()
        self.c_hidden = hidden_features

    def forward(self, x):
        T, B, N, C = x.shape
        x = self.fc1_linear(x.flatten(0, 1))
        x = self.fc1_bn(x.transpose(-1, -2)).transpose(-1, -2).reshape(T, B, N, self.c_hidden).contiguous()
        x = self.fc1_lif(x)
        x = self.fc2_linear(x.flatten(0, 1))
        x = self.fc2_bn(x.transpose(-1, -2)).transpose(-1, -2).reshape(T, B, N, C).contiguous()
        return self.fc2_lif(x)


class SSA(nn.Module):
    """Spiking self-attention: ``attn_lif((q @ kᵀ) @ v · scale)`` of spike matrices, per head."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads, self.scale = num_heads, 0.125
        for name in ("q", "k", "v", "proj"):
            setattr(self, f"{name}_linear", nn.Linear(dim, dim))
            setattr(self, f"{name}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{name}_lif", lif())
        self.attn_lif = lif(v_threshold=0.5)

    def _tokens(self, name, x, T, B, N, C):
        y = getattr(self, f"{name}_linear")(x)
        y = getattr(self, f"{name}_bn")(y.transpose(-1, -2)).transpose(-1, -2)
        return getattr(self, f"{name}_lif")(y.reshape(T, B, N, C).contiguous())

    def _heads(self, x):
        T, B, N, C = x.shape
        return x.reshape(T, B, N, self.num_heads, C // self.num_heads).permute(0, 1, 3, 2, 4).contiguous()

    def forward(self, x):
        T, B, N, C = x.shape
        x_for_qkv = x.flatten(0, 1)  # [T·B, N, C]
        q, k, v = (self._heads(self._tokens(name, x_for_qkv, T, B, N, C)) for name in ("q", "k", "v"))
        attn = (q @ k.transpose(-2, -1)) * self.scale
        x = (attn @ v).transpose(2, 3).reshape(T, B, N, C).contiguous()
        x = self.attn_lif(x)
        return self._tokens("proj", x.flatten(0, 1), T, B, N, C)


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=2.0):
        super().__init__()
        self.attn = SSA(dim, num_heads)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(x)
        return x + self.mlp(x)


class SPS(nn.Module):
    """Spiking patch splitting: conv-BN-LIF stages (channels ``embed_dims // 4``, ``// 2``, ``embed_dims``) with
    max pooling of spikes, then a relative position embedding (conv-BN-LIF) added to the pooled spikes."""

    def __init__(self, in_channels=1, embed_dims=16):
        super().__init__()
        self.proj_conv = nn.Conv2d(in_channels, embed_dims // 4, kernel_size=3, padding=1, bias=False)
        self.proj_bn, self.proj_lif = nn.BatchNorm2d(embed_dims // 4), lif()
        self.proj_conv1 = nn.Conv2d(embed_dims // 4, embed_dims // 2, kernel_size=3, padding=1, bias=False)
        self.proj_bn1, self.proj_lif1 = nn.BatchNorm2d(embed_dims // 2), lif()
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.proj_conv2 = nn.Conv2d(embed_dims // 2, embed_dims, kernel_size=3, padding=1, bias=False)
        self.proj_bn2, self.proj_lif2 = nn.BatchNorm2d(embed_dims), lif()
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.rpe_conv = nn.Conv2d(embed_dims, embed_dims, kernel_size=3, padding=1, bias=False)
        self.rpe_bn, self.rpe_lif = nn.BatchNorm2d(embed_dims), lif()

    def forward(self, x):
        T, B, C, H, W = x.shape
        x = self.proj_bn(self.proj_conv(x.flatten(0, 1))).reshape(T, B, -1, H, W).contiguous()
        x = self.proj_lif(x).flatten(0, 1).contiguous()
        x = self.proj_bn1(self.proj_conv1(x)).reshape(T, B, -1, H, W).contiguous()
        x = self.maxpool1(self.proj_lif1(x).flatten(0, 1).contiguous())
        x = self.proj_bn2(self.proj_conv2(x)).reshape(T, B, -1, H // 2, W // 2).contiguous()
        x = self.maxpool2(self.proj_lif2(x).flatten(0, 1).contiguous())
        x_feat = x.reshape(T, B, -1, H // 4, W // 4).contiguous()
        x = self.rpe_bn(self.rpe_conv(x)).reshape(T, B, -1, H // 4, W // 4).contiguous()
        x = self.rpe_lif(x) + x_feat
        return x.flatten(-2).transpose(-1, -2)  # [T, B, N, C]


class Spikformer(nn.Module):
    def __init__(self, in_channels=1, num_classes=10, embed_dims=16, num_heads=2, mlp_ratios=2.0, depths=1, T=4):
        super().__init__()
        self.T = T  # time step
        self.patch_embed = SPS(in_channels=in_channels, embed_dims=embed_dims)
        self.block = nn.ModuleList([Block(embed_dims, num_heads, mlp_ratios) for _ in range(depths)])
        self.head = nn.Linear(embed_dims, num_classes)

    def forward_features(self, x):
        x = self.patch_embed(x)
        for blk in self.block:
            x = blk(x)
        return x.mean(2)

    def forward(self, x):
        x = (x.unsqueeze(0)).repeat(self.T, 1, 1, 1, 1)
        x = self.forward_features(x)
        return self.head(x.mean(0))


def spikformer(**kwargs):
    """The factory, as ``sj-rga evaluate --model spikformer_model:spikformer -T 4`` calls it (seeded)."""
    torch.manual_seed(0)
    return Spikformer(**kwargs)
