"""Models that fire at random initialisation, for gradient tests in value."""
import torch
from torch import nn


def lively(model: nn.Module) -> nn.Module:
    """The model in float64, with BatchNorm statistics and affine parameters and scaled-up linear weights that
    keep every spiking layer firing at random init (so that every layer's surrogate or slope takes part in the
    gradient). Seeded: the same model gives the same result."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.2, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
                m.weight.uniform_(0.8, 1.6, generator=gen)
                m.bias.uniform_(0.1, 0.6, generator=gen)
            elif isinstance(m, nn.Linear):
                m.weight.mul_(4.0)
    return model.double()
