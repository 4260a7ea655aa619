"""A Spike-Driven-Transformer-style model file (our own code, written the way BICLab/Spike-Driven-Transformer
``model/spikeformer.py``, ``module/ms_conv.py`` and ``module/sps.py`` write theirs, checked against those files):
the same imports (``MultiStepLIFNode`` and ``MultiStepParametricLIFNode`` from
``spikingjelly.clock_driven.neuron``), ``spike_mode`` choosing ``MultiStepLIFNode(tau=2.0, detach_reset=True,
backend='cupy')`` or ``MultiStepParametricLIFNode(init_tau=2.0, ...)``, ``v_threshold=0.5`` for the
talking-heads neuron; membrane shortcuts (each block starts with a LIF on the residual stream, sums are of
membrane inputs), the spike-driven self-attention ``q ⊙ LIF(Σ_N k ⊙ v)`` (Hadamard products of spikes), a
conv MLP, an MS-SPS patch embedding with max pooling and a relative position embedding, ``head_lif`` then
``head`` then the mean over time; a ``hook`` dict threaded through every ``forward`` and a tuple ``(x, hook)``
returned. The published ``forward``: ``len(x.shape) < 5`` repeats a static batch ``self.T`` times, otherwise a
batch-first ``[B, T, C, H, W]`` input is ``x.transpose(0, 1)``.

The published files also import timm (``trunc_normal_``, ``to_2tuple``, ``DropPath``, ``register_model``,
``_cfg``), which is not installed here; this file does without it. Tiny sizes for 8×8 one-channel digits:
``embed_dims`` 16, 2 heads, one block, 4 tokens.

Import it only where ``spikingjelly.clock_driven`` exists; :data:`BACKEND` as in ``spikformer_model``.
"""
import torch
import torch.nn as nn
from spikingjelly.clock_driven.neuron import MultiStepLIFNode, MultiStepParametricLIFNode

#: The published ``backend=`` keyword; 0.0.0.0.14 without CuPy needs ``'torch'`` at construction.
BACKEND = "cupy"


def spiking(spike_mode, v_threshold=1.0):
    if spike_mode == "lif":
        return MultiStepLIFNode(tau=2.0, v_threshold=v_threshold, detach_reset=True, backend=BACKEND)
    if spike_mode == "plif":
        return MultiStepParametricLIFNode(init_tau=2.0, v_threshold=v_threshold, detach_reset=True,
                                          backend=BACKEND)
    raise ValueError(f"spike_mode must be 'lif' or 'plif', got {spike_mode!r}")


def conv_bn(x, conv, bn, T, B, H, W):
    """``bn(conv(x))`` on ``[T·B, C, H, W]``, back to ``[T, B, C', H, W]``."""
    return bn(conv(x)).reshape(T, B, -1, H, W).contiguous()


class MS_MLP_Conv(nn.Module):
    def __init__(self, in_features, hidden_features, spike_mode="lif", layer=0):
        super().__init__()
        self.fc1_lif = spiking(spike_mode)
        self.fc1_conv, self.fc1_bn = nn.Conv2d(in_features, hidden_features, 1), nn.BatchNorm2d(hidden_features)
        self.fc2_lif = spiking(spike_mode)
        self.fc2_conv, self.fc2_bn = nn.Conv2d(hidden_features, in_features, 1), nn.BatchNorm2d(in_features)
        self.layer = layer

    def forward(self, x, hook=None):
        T, B, C, H, W = x.shape
        identity = x
        x = self.fc1_lif(x)
        if hook is not None:
            hook[f"{self._get_name()}{self.layer}_fc1_lif"] = x.detach()
        x = conv_bn(x.flatten(0, 1), self.fc1_conv, self.fc1_bn, T, B, H, W)
        x = self.fc2_lif(x)
        if hook is not None:
            hook[f"{self._get_name()}{self.layer}_fc2_lif"] = x.detach()
        x = conv_bn(x.flatten(0, 1), self.fc2_conv, self.fc2_bn, T, B, H, W)
        return x + identity, hook


class MS_SSA_Conv(nn.Module):
    """Spike-driven self-attention: ``q ⊙ talking_heads_lif(Σ_N k ⊙ v)``, then a projection, plus the shortcut."""

    def __init__(self, dim, num_heads=2, spike_mode="lif", layer=0):
        super().__init__()
        self.num_heads, self.layer = num_heads, layer
        self.shortcut_lif = spiking(spike_mode)
        for name in ("q", "k", "v"):
            setattr(self, f"{name}_conv", nn.Conv2d(dim, dim, 1, bias=False))
            setattr(self, f"{name}_bn", nn.BatchNorm2d(dim))
            setattr(self, f"{name}_lif", spiking(spike_mode))
        self.talking_heads_lif = spiking(spike_mode, v_threshold=0.5)
        self.proj_conv, self.proj_bn = nn.Conv2d(dim, dim, 1), nn.BatchNorm2d(dim)

    def _heads(self, name, x, T, B, C, H, W, hook):
        s = getattr(self, f"{name}_lif")(conv_bn(x, getattr(self, f"{name}_conv"), getattr(self, f"{name}_bn"),
                                                 T, B, H, W))
        if hook is not None:
            hook[f"{self._get_name()}{self.layer}_{name}_lif"] = s.detach()
        return s.flatten(3).transpose(-1, -2).reshape(T, B, H * W, self.num_heads, C // self.num_heads) \
            .permute(0, 1, 3, 2, 4).contiguous()  # [T, B, heads, N, C // heads]

    def forward(self, x, hook=None):
        T, B, C, H, W = x.shape
        identity = x
        x = self.shortcut_lif(x)
        x_for_qkv = x.flatten(0, 1)
        q, k, v = (self._heads(name, x_for_qkv, T, B, C, H, W, hook) for name in ("q", "k", "v"))
        kv = self.talking_heads_lif(k.mul(v).sum(dim=-2, keepdim=True))
        if hook is not None:
            hook[f"{self._get_name()}{self.layer}_kv"] = kv.detach()
        x = q.mul(kv).transpose(3, 4).reshape(T, B, C, H, W).contiguous()
        x = conv_bn(x.flatten(0, 1), self.proj_conv, self.proj_bn, T, B, H, W)
        return x + identity, v, hook


class MS_Block_Conv(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=2.0, spike_mode="lif", layer=0):
        super().__init__()
        self.attn = MS_SSA_Conv(dim, num_heads=num_heads, spike_mode=spike_mode, layer=layer)
        self.mlp = MS_MLP_Conv(dim, int(dim * mlp_ratio), spike_mode=spike_mode, layer=layer)

    def forward(self, x, hook=None):
        x_attn, attn, hook = self.attn(x, hook=hook)
        x, hook = self.mlp(x_attn, hook=hook)
        return x, attn, hook


class MS_SPS(nn.Module):
    """conv-BN-LIF (max pool), conv-BN-LIF, conv-BN (max pool) = ``x_feat``; LIF, conv-BN (the relative position
    embedding) + ``x_feat``: membrane values ``[T, B, embed_dims, H/4, W/4]`` out."""

    def __init__(self, in_channels=1, embed_dims=16, spike_mode="lif"):
        super().__init__()
        self.proj_conv = nn.Conv2d(in_channels, embed_dims // 4, 3, padding=1, bias=False)
        self.proj_bn, self.proj_lif = nn.BatchNorm2d(embed_dims // 4), spiking(spike_mode)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.proj_conv1 = nn.Conv2d(embed_dims // 4, embed_dims // 2, 3, padding=1, bias=False)
        self.proj_bn1, self.proj_lif1 = nn.BatchNorm2d(embed_dims // 2), spiking(spike_mode)
        self.proj_conv2 = nn.Conv2d(embed_dims // 2, embed_dims, 3, padding=1, bias=False)
        self.proj_bn2 = nn.BatchNorm2d(embed_dims)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.proj_lif2 = spiking(spike_mode)
        self.rpe_conv = nn.Conv2d(embed_dims, embed_dims, 3, padding=1, bias=False)
        self.rpe_bn = nn.BatchNorm2d(embed_dims)

    def forward(self, x, hook=None):
        T, B, _, H, W = x.shape
        x = self.proj_lif(conv_bn(x.flatten(0, 1), self.proj_conv, self.proj_bn, T, B, H, W))
        if hook is not None:
            hook[self._get_name() + "_lif"] = x.detach()
        x = self.maxpool(x.flatten(0, 1).contiguous())
        x = self.proj_lif1(conv_bn(x, self.proj_conv1, self.proj_bn1, T, B, H // 2, W // 2))
        x = self.maxpool2(self.proj_bn2(self.proj_conv2(x.flatten(0, 1).contiguous())))
        x_feat = x
        x = self.proj_lif2(x.reshape(T, B, -1, H // 4, W // 4).contiguous())
        x = self.rpe_bn(self.rpe_conv(x.flatten(0, 1).contiguous()))
        x = (x + x_feat).reshape(T, B, -1, H // 4, W // 4).contiguous()
        return x, (H // 4, W // 4), hook


class SpikeDrivenTransformer(nn.Module):
    def __init__(self, in_channels=1, num_classes=10, embed_dims=16, num_heads=2, mlp_ratios=2.0, depths=1, T=4,
                 spike_mode="lif", TET=False):
        super().__init__()
        self.T, self.TET = T, TET
        self.patch_embed = MS_SPS(in_channels=in_channels, embed_dims=embed_dims, spike_mode=spike_mode)
        self.block = nn.ModuleList([MS_Block_Conv(embed_dims, num_heads, mlp_ratios, spike_mode=spike_mode, layer=j)
                                    for j in range(depths)])
        self.head_lif = spiking(spike_mode)
        self.head = nn.Linear(embed_dims, num_classes)

    def forward_features(self, x, hook=None):
        x, _, hook = self.patch_embed(x, hook=hook)
        for blk in self.block:
            x, _, hook = blk(x, hook=hook)
        return x.flatten(3).mean(3), hook

    def forward(self, x, hook=None):
        if len(x.shape) < 5:
            x = (x.unsqueeze(0)).repeat(self.T, 1, 1, 1, 1)
        else:
            x = x.transpose(0, 1).contiguous()
        x, hook = self.forward_features(x, hook=hook)
        x = self.head_lif(x)
        if hook is not None:
            hook["head_lif"] = x.detach()
        x = self.head(x)
        if not self.TET:
            x = x.mean(0)
        return x, hook


def sdt(**kwargs):
    """The factory, as ``sj-rga evaluate --model sdt_model:sdt -T 4`` calls it (seeded)."""
    torch.manual_seed(0)
    return SpikeDrivenTransformer(**kwargs)
