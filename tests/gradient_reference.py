"""An independent reference of the input-gradient estimators BPTR, HART, PDSG and ASSG, written in the tests
straight from method §2 (and the charge equations of method §1.3). It shares no code with ``sj_rga``.

Every stock IF/LIF/PLIF neuron of a model gets a forward hook. The stock forward gives the spikes S (the
value of the layer's output); a plain torch loop over the T steps, written from the formulas, gives a
gradient path G whose value is zero; the hook returns ``S.detach() + G``, so that autograd yields the
estimator's gradient while the forward stays the stock one.
"""
from __future__ import annotations

import math

import torch
from stock_classes import LIF, PLIF, STOCK


def _reset_value(node) -> float:
    return 0.0 if node.v_reset is None else float(node.v_reset)


def _inverse_tau(node) -> float:
    if isinstance(node, PLIF):
        return 1.0 / (1.0 + math.exp(-float(node.w.detach())))
    return 1.0 / float(node.tau)


def charge(node, v, x):
    """H[t] from V[t-1] and X[t] (method §1.3): IF H = V + X; LIF/PLIF with or without input decay."""
    if isinstance(node, LIF + PLIF):
        k, v_r = _inverse_tau(node), _reset_value(node)
        return v + (x - (v - v_r)) * k if node.decay_input else v - (v - v_r) * k + x
    return v + x


def reset(node, h, s):
    """V[t] from H[t] and the spike used in the reset (hard: to v_reset; soft: minus v_threshold)."""
    if node.v_reset is None:
        return h - s * node.v_threshold
    return s * node.v_reset + (1.0 - s) * h


def initial_potential(node, like):
    return torch.full_like(like, _reset_value(node))


def step_with_derivative(u, derivative):
    """Heaviside of u in value, with dS/du = derivative (no gradient through the derivative)."""
    return (u >= 0).to(u.dtype) + (u - u.detach()) * derivative.detach()


class Reference:
    """Context manager: every stock neuron of ``model`` takes the reference backward of one estimator."""

    def __init__(self, model):
        self.model = model
        self.handles = []
        self.neurons = [m for m in model.modules() if isinstance(m, STOCK)]

    def gradient_path(self, index, node, x_seq, spikes):
        raise NotImplementedError

    def _hook(self, node, inputs, spikes):
        x_seq = inputs[0]
        return spikes.detach() + self.gradient_path(self.neurons.index(node), node, x_seq, spikes)

    def __enter__(self):
        self.handles = [m.register_forward_hook(self._hook) for m in self.neurons]
        return self.model

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles = []


class ReferenceBPTR(Reference):
    """dL/dX[t] = dL/dS[t] · 1[Σ_t S[t] > 0]."""

    def gradient_path(self, index, node, x_seq, spikes):
        fired = (spikes.detach().sum(0) > 0).to(x_seq.dtype)
        return (x_seq - x_seq.detach()) * fired


class ReferenceHART(Reference):
    """Membrane detached across time, triangle max(0, γ − |u|)/γ² at u = H − v_threshold, averaged over time."""

    def __init__(self, model, gamma=1.0):
        super().__init__(model)
        self.gamma = gamma

    def gradient_path(self, index, node, x_seq, spikes):
        v = initial_potential(node, x_seq[0].detach())
        potentials, triangles = [], []
        for x in x_seq:
            h = charge(node, v.detach(), x)  # the gradient reaches X[t] only through this step's charge
            u = h.detach() - node.v_threshold
            triangles.append(torch.clamp(self.gamma - u.abs(), min=0.0) / self.gamma ** 2)
            potentials.append(h)
            v = reset(node, h.detach(), (u >= 0).to(u.dtype))
        mean_potential = torch.stack(potentials).mean(0)  # d/dX[t] = dH[t]/dX[t] / T
        return torch.stack(triangles) * (mean_potential - mean_potential.detach())


def _std_dims(stacked):
    """Per channel over (time, batch, spatial) for [t, B, C, ...]; per neuron over (time, batch) for [t, B, N]."""
    if stacked.dim() <= 3:
        return (0, 1)
    return tuple(d for d in range(stacked.dim()) if d != 2)


class ReferencePDSG(Reference):
    """Full BPTT (reset detached if the neuron says so); Gaussian pdf of mean σ/2, std σ at u; σ the std of
    H[0..t] stacked over time (torch.std, Bessel-corrected), σ = 1 where 0 or undefined."""

    def gradient_path(self, index, node, x_seq, spikes):
        v = initial_potential(node, x_seq[0].detach())
        history, out = [], []
        for x in x_seq:
            h = charge(node, v, x)
            history.append(h.detach())
            stacked = torch.stack(history)
            dims = _std_dims(stacked)
            if math.prod(stacked.shape[d] for d in dims) > 1:
                sigma = stacked.std(dim=dims, keepdim=True)[0]
                sigma = torch.where(sigma == 0, torch.ones_like(sigma), sigma)
            else:
                sigma = torch.ones_like(h)
            u = h - node.v_threshold
            pdf = torch.exp(-((u.detach() - 0.5 * sigma) / (math.sqrt(2) * sigma)) ** 2)
            pdf = pdf / (math.sqrt(2 * math.pi) * sigma)
            s = step_with_derivative(u, pdf)
            v = reset(node, h, s.detach() if node.detach_reset else s)
            out.append(s)
        seq = torch.stack(out)
        return seq - seq.detach()


class ReferenceASSG(Reference):
    """BPTT, reset detached; ATan dS/du = (α/2)/(1 + (π/2·α·u)²), α = a/(M + relax·D + 1e-4), a = 2 tan(πA)/π;
    M ← β1 M + (1−β1)|u|, then D ← β2 D + (1−β2)| |u| − M |, per (layer, t), from M = 1, D = 0.
    ``update`` says whether the next forward updates the moments."""

    def __init__(self, model, A=0.425, relax=1.5, beta1=0.9, beta2=0.9):
        super().__init__(model)
        self.a = 2 * math.tan(math.pi * A) / math.pi
        self.relax, self.beta1, self.beta2 = relax, beta1, beta2
        self.moments = {}  # (layer index, t) -> (M, D)
        self.update = True

    def gradient_path(self, index, node, x_seq, spikes):
        v = initial_potential(node, x_seq[0].detach())
        out = []
        for t, x in enumerate(x_seq):
            h = charge(node, v, x)
            u = h - node.v_threshold
            m, d = self.moments.get((index, t), (1.0, 0.0))
            if self.update:
                m = self.beta1 * m + (1 - self.beta1) * u.detach().abs()
                d = self.beta2 * d + (1 - self.beta2) * (u.detach().abs() - m).abs()
                self.moments[(index, t)] = (m, d)
            alpha = self.a / (m + self.relax * d + 1e-4)
            s = step_with_derivative(u, (alpha / 2) / (1 + (math.pi / 2 * alpha * u.detach()) ** 2))
            v = reset(node, h, s.detach())
            out.append(s)
        seq = torch.stack(out)
        return seq - seq.detach()


def cross_entropy_gradient(logits_of, x: torch.Tensor, labels: torch.Tensor):
    """(logits, dL/dx) of L = cross-entropy(logits_of(x), labels) by autograd: the gradient a test compares."""
    x = x.clone().requires_grad_(True)
    logits = logits_of(x)
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, labels), x)
    return logits.detach(), grad
