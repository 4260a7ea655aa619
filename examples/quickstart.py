"""Quick start: put the RGA backward into an existing SpikingJelly model and compare gradients.

Run: python examples/quickstart.py
"""
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, layer, neuron, surrogate

import sj_rga

torch.manual_seed(0)
net = nn.Sequential(layer.Conv2d(1, 8, 3, padding=1), layer.BatchNorm2d(8),
                    neuron.IFNode(surrogate_function=surrogate.PiecewiseQuadratic(alpha=1.0)),
                    layer.Flatten(), layer.Linear(8 * 8 * 8, 10)).eval()
functional.set_step_mode(net, "m")
x = torch.rand(8, 4, 1, 8, 8)  # time-major [T, B, C, H, W], pixel space [0, 1]


def input_gradient() -> torch.Tensor:
    functional.reset_net(net)
    xg = x.clone().requires_grad_()
    net(xg).mean(0).logsumexp(-1).sum().backward()
    return xg.grad


stbp = input_gradient()
with sj_rga.rate_mode(net):
    rga = input_gradient()
print(f"STBP gradient norm {stbp.norm():.4f}; RGA gradient norm {rga.norm():.4f}")
print(f"cosine(STBP, RGA) = {torch.nn.functional.cosine_similarity(stbp.flatten(), rga.flatten(), dim=0):.3f}")
