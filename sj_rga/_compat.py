"""What differs between the SpikingJelly releases the package supports.

SpikingJelly 2.x (the current release) and 0.0.0.0.14 (still pinned by much research code) share the
neuron classes' names and their charge equations, but differ in constructors (0.0.0.0.14 has
``backend=``), in a few floating-point forms of the charge equation, and in how surrogate classes are
built. Everything the package needs to know about the installed release is read here, once.
"""
from __future__ import annotations

import inspect

import spikingjelly
from spikingjelly.activation_based import neuron, surrogate

#: True under SpikingJelly 0.0.0.0.14 (neurons take ``backend=``; IF/LIF take a jit path in eval()).
LEGACY: bool = "backend" in inspect.signature(neuron.IFNode.__init__).parameters

#: The installed SpikingJelly release, as it reports itself.
VERSION: str = getattr(spikingjelly, "__version__", "0.0.0.0.14" if LEGACY else "2")

#: SpikingJelly 0.0.0.0.14 builds surrogates as ``SurrogateFunctionBase(alpha, spiking)``.
SURROGATE_TAKES_ALPHA: bool = "alpha" in inspect.signature(
    surrogate.SurrogateFunctionBase.__init__
).parameters
