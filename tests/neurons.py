"""Builders of stock SpikingJelly neurons shared by the tests (keyword arguments valid in both releases)."""
from __future__ import annotations

import torch
from spikingjelly.activation_based import neuron, surrogate

import sj_rga

KINDS = ["if", "lif_decay", "lif_nodecay", "plif_decay", "plif_nodecay"]


def make_neuron(kind: str, sg, v_reset=0.0, v_threshold=1.0, detach_reset=False, store_v_seq=False,
                cls_override=None) -> torch.nn.Module:
    common = dict(v_threshold=v_threshold, v_reset=v_reset, surrogate_function=sg, detach_reset=detach_reset,
                  step_mode="m", store_v_seq=store_v_seq)
    if kind == "if":
        node = (cls_override or neuron.IFNode)(**common)
    elif kind.startswith("lif"):
        node = (cls_override or neuron.LIFNode)(tau=1.7, decay_input=kind == "lif_decay", **common)
    else:
        node = (cls_override or neuron.ParametricLIFNode)(init_tau=2.0, decay_input=kind == "plif_decay", **common)
        with torch.no_grad():
            node.w.fill_(0.3)
    return node


def stock_surrogate():
    return surrogate.ATan()


class DoubledIF(neuron.BaseNode):
    """A neuron class sj_rga does not know (tests register it and remove it again): IF dynamics with a
    doubled input, H[t] = V[t-1] + 2·X[t], hard reset to 0 at threshold 1."""

    def __init__(self):
        super().__init__(v_threshold=1.0, v_reset=0.0, surrogate_function=stock_surrogate(), step_mode="m",
                         **({"backend": "torch"} if sj_rga._compat.LEGACY else {}))

    def neuronal_charge(self, x):
        self.v = self.v + 2 * x

    if not sj_rga._compat.LEGACY:
        def single_step_functional_forward(self, inputs, states, **kwargs):
            v = states[0] + 2 * inputs[0]
            spike = self.surrogate_function(v - self.v_threshold)
            return (spike,), ((1 - spike) * v,)
