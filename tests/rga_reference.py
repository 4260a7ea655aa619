"""An independent reference of the RGA backward, written in the tests straight from method §1.1–1.3.

It shares no code with ``sj_rga``: each spiking layer runs its stock SpikingJelly forward with no
autograd graph, and the output is ``S + (X - X.detach()) · g(Ī) · dI/dX`` per layer, so that autograd
gives exactly dL/dX[t] = dL/dS[t] · g(Ī) · dI/dX while the forward value stays S.
"""
from __future__ import annotations

import math

import torch
from stock_classes import LIF, PLIF, STOCK


def slope_reference(current: torch.Tensor, lam: float, theta: float, beta: float = 2.0, gamma: float = 0.2):
    """g(I) of method §1.1, element by element in Python floats (float64), returned as a tensor."""
    out = []
    for i in current.detach().double().flatten().tolist():
        if 0.0 <= i <= (1.0 - lam) * theta:
            out.append(gamma)
        elif (1.0 - lam) * theta < i <= beta * theta:
            out.append((1.0 - gamma * theta + gamma * theta * lam) / ((beta + lam - 1.0) * theta))
        else:
            out.append(0.0)
    return torch.tensor(out, dtype=torch.float64).reshape(current.shape)


def table_mapping(node) -> tuple[float, float, float]:
    """(λ, θ, dI/dX) of method §1.3's table."""
    v_r = 0.0 if node.v_reset is None else node.v_reset
    theta = node.v_threshold - v_r
    if isinstance(node, PLIF):
        inv_tau = 1.0 / (1.0 + math.exp(-float(node.w.detach())))
    elif isinstance(node, LIF):
        inv_tau = 1.0 / node.tau
    else:
        return 1.0, theta, 1.0
    return 1.0 - inv_tau, theta, (inv_tau if node.decay_input else 1.0)


class ReferenceRGA:
    """Context manager: every stock neuron of ``model`` takes the reference RGA backward (forward hooks)."""

    def __init__(self, model: torch.nn.Module, lam: float | None = None, beta: float = 2.0, gamma: float = 0.2):
        self.model, self.lam, self.beta, self.gamma = model, lam, beta, gamma
        self.handles = []

    def _hook(self, node, inputs, spikes):
        (x_seq,) = inputs
        lam, theta, gain = table_mapping(node)
        lam = lam if self.lam is None else self.lam
        mean_current = x_seq.detach().double().mean(0) * gain
        factor = (slope_reference(mean_current, lam, theta, self.beta, self.gamma) * gain).to(x_seq.dtype)
        return spikes.detach() + (x_seq - x_seq.detach()) * factor

    def __enter__(self):
        for m in self.model.modules():
            if isinstance(m, STOCK):
                self.handles.append(m.register_forward_hook(self._hook))
        return self.model

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles.clear()
