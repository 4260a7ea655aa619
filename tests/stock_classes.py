"""The stock neuron classes the independent references know, by charge equation: ``activation_based``'s
IF/LIF/PLIF and, where the installed SpikingJelly has them (0.0.0.0.14), ``clock_driven``'s MultiStep classes."""
from __future__ import annotations

import importlib

from spikingjelly.activation_based import neuron


def _clock_driven():
    try:
        return importlib.import_module("spikingjelly.clock_driven.neuron")
    except ImportError:
        return None


_CLOCK = _clock_driven()

IF = (neuron.IFNode,) + ((_CLOCK.MultiStepIFNode,) if _CLOCK else ())
LIF = (neuron.LIFNode,) + ((_CLOCK.MultiStepLIFNode,) if _CLOCK else ())
PLIF = (neuron.ParametricLIFNode,) + ((_CLOCK.MultiStepParametricLIFNode,) if _CLOCK else ())
STOCK = IF + LIF + PLIF
