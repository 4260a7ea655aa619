"""What differs between the SpikingJelly releases the package supports.

SpikingJelly 2.x (the current release) and 0.0.0.0.14 (still pinned by much research code) share the
neuron classes' names and their charge equations, but differ in constructors (0.0.0.0.14 has
``backend=``), in a few floating-point forms of the charge equation, in how surrogate classes are
built, and in the ``clock_driven`` package, which only 0.0.0.0.14 ships. Everything the package needs to
know about the installed release is read here, once.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
from types import ModuleType
from typing import Optional

import spikingjelly
from spikingjelly.activation_based import functional, neuron, surrogate
from torch import nn

#: True under SpikingJelly 0.0.0.0.14 (neurons take ``backend=``; IF/LIF take a jit path in eval()).
LEGACY: bool = "backend" in inspect.signature(neuron.IFNode.__init__).parameters

#: The installed SpikingJelly release, as it reports itself.
VERSION: str = getattr(spikingjelly, "__version__", "0.0.0.0.14" if LEGACY else "2")

#: SpikingJelly 0.0.0.0.14 builds surrogates as ``SurrogateFunctionBase(alpha, spiking)``.
SURROGATE_TAKES_ALPHA: bool = "alpha" in inspect.signature(
    surrogate.SurrogateFunctionBase.__init__
).parameters


def _installed_clock_driven() -> Optional[ModuleType]:
    """The installed release's own ``spikingjelly.clock_driven.neuron`` (0.0.0.0.14), or None (2.x)."""
    try:
        spec = importlib.util.find_spec("spikingjelly.clock_driven")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:  # absent, or sj_rga.compat's stand-in (no file)
        return None
    return importlib.import_module("spikingjelly.clock_driven.neuron")


_CLOCK_DRIVEN_NEURON: Optional[ModuleType] = _installed_clock_driven()


def clock_driven_neuron() -> Optional[ModuleType]:
    """SpikingJelly 0.0.0.0.14's ``clock_driven.neuron`` module, or None where the release has none."""
    return _CLOCK_DRIVEN_NEURON


def clock_driven_layer() -> ModuleType:
    """SpikingJelly 0.0.0.0.14's ``clock_driven.layer`` (only where :func:`clock_driven_neuron` is not None)."""
    return importlib.import_module("spikingjelly.clock_driven.layer")


def reset_net(net: nn.Module) -> None:
    """Reset the state of every module of ``net`` that has a ``reset()`` (its neurons' membrane potentials), as
    SpikingJelly's ``functional.reset_net`` does. Under 0.0.0.0.14 that function logs a warning for each module
    that is not an ``activation_based`` MemoryModule, so each of a clock_driven model's neurons at every call of
    the classifier (thousands of lines on stderr in one evaluation); there the modules' ``reset()`` are called
    directly, which is all that function does besides."""
    if _CLOCK_DRIVEN_NEURON is None:
        functional.reset_net(net)
        return
    for m in net.modules():
        if hasattr(m, "reset"):
            m.reset()
