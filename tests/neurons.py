"""Builders of stock SpikingJelly neurons shared by the tests (keyword arguments valid in both releases)."""
from __future__ import annotations

import torch
from spikingjelly.activation_based import neuron, surrogate

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
