"""clock_driven-era code on SpikingJelly 2.x: :func:`enable_clock_driven`.

Most published SNN code (Spikformer and its successors, many SEW/MS-ResNet repositories) imports
``spikingjelly.clock_driven``, which SpikingJelly 2.x no longer ships. ``sj_rga.compat.enable_clock_driven()``
(opt-in; nothing changes unless it is called) makes ``spikingjelly.clock_driven`` and its submodules
``neuron``, ``layer``, ``functional`` and ``surrogate`` importable again, each name mapped to its
``activation_based`` equivalent with the same equations:

- ``neuron.MultiStepIFNode``, ``MultiStepLIFNode``, ``MultiStepParametricLIFNode``: subclasses of
  ``activation_based``'s ``IFNode``, ``LIFNode``, ``ParametricLIFNode`` in multi-step mode that keep ``v_seq``
  (as clock_driven's do) and take the old keyword arguments: ``backend`` (``'torch'`` or ``'cupy'``) is
  recorded on the module and otherwise ignored, since 2.x runs its own torch path on CPU and GPU (and sj-rga's
  estimators run their own op); ``lava_s_cale`` is ignored. ``neuron.IFNode``, ``LIFNode``,
  ``ParametricLIFNode`` are the single-step ones (``cupy_fp32_inference`` ignored), ``neuron.BaseNode`` is
  ``activation_based``'s.
- ``layer.MultiStepContainer``, ``SeqToANNContainer``, ``Dropout``, ``Dropout2d`` are ``activation_based``'s
  classes; ``layer.MultiStepDropout`` and ``MultiStepDropout2d`` are their multi-step forms.
- ``functional.reset_net``, ``multi_step_forward``, ``seq_to_ann_forward`` and the other functions of the
  same name; ``surrogate.ATan``, ``Sigmoid``, ``PiecewiseQuadratic`` and every other surrogate of the same name.

A name without such an equivalent (``neuron.QIFNode``, ``layer.STDPLearner``, ...) raises an AttributeError
that says so. Under SpikingJelly 0.0.0.0.14, which ships ``clock_driven`` itself, the call leaves it alone.
The command line's ``--clock-driven`` calls it before importing the user's model.
"""
from __future__ import annotations

import importlib.machinery
import sys
from types import ModuleType
from typing import Callable

import spikingjelly
from spikingjelly.activation_based import functional, layer, neuron, surrogate

from ._compat import clock_driven_neuron

PACKAGE = "spikingjelly.clock_driven"

BACKENDS = ("torch", "cupy")


def _check_backend(backend: object) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} (SpikingJelly 2.x runs its torch path for both), "
                         f"got {backend!r}")


class MultiStepIFNode(neuron.IFNode):
    """clock_driven's multi-step IF neuron: ``activation_based.neuron.IFNode`` in multi-step mode, keeping
    ``v_seq``. ``backend`` is recorded, not used; ``lava_s_cale`` is ignored."""

    def __init__(self, v_threshold: float = 1.0, v_reset: float = 0.0,
                 surrogate_function: Callable = surrogate.Sigmoid(), detach_reset: bool = False,
                 backend: str = "torch", lava_s_cale: int = 1 << 6):
        _check_backend(backend)
        super().__init__(v_threshold=v_threshold, v_reset=v_reset, surrogate_function=surrogate_function,
                         detach_reset=detach_reset, step_mode="m", store_v_seq=True)
        self.backend = backend

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, backend={self.backend}"


class MultiStepLIFNode(neuron.LIFNode):
    """clock_driven's multi-step LIF neuron: ``activation_based.neuron.LIFNode`` in multi-step mode, keeping
    ``v_seq``. ``backend`` is recorded, not used; ``lava_s_cale`` is ignored."""

    def __init__(self, tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset: float = 0.0, surrogate_function: Callable = surrogate.Sigmoid(),
                 detach_reset: bool = False, backend: str = "torch", lava_s_cale: int = 1 << 6):
        _check_backend(backend)
        super().__init__(tau=tau, decay_input=decay_input, v_threshold=v_threshold, v_reset=v_reset,
                         surrogate_function=surrogate_function, detach_reset=detach_reset, step_mode="m",
                         store_v_seq=True)
        self.backend = backend

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, backend={self.backend}"


class MultiStepParametricLIFNode(neuron.ParametricLIFNode):
    """clock_driven's multi-step PLIF neuron: ``activation_based.neuron.ParametricLIFNode`` in multi-step mode,
    keeping ``v_seq``. ``backend`` is recorded, not used."""

    def __init__(self, init_tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset: float = 0.0, surrogate_function: Callable = surrogate.Sigmoid(),
                 detach_reset: bool = False, backend: str = "torch"):
        _check_backend(backend)
        super().__init__(init_tau=init_tau, decay_input=decay_input, v_threshold=v_threshold, v_reset=v_reset,
                         surrogate_function=surrogate_function, detach_reset=detach_reset, step_mode="m",
                         store_v_seq=True)
        self.backend = backend

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, backend={self.backend}"


class IFNode(neuron.IFNode):
    """clock_driven's single-step IF neuron (``cupy_fp32_inference`` ignored)."""

    def __init__(self, v_threshold: float = 1.0, v_reset: float = 0.0,
                 surrogate_function: Callable = surrogate.Sigmoid(), detach_reset: bool = False,
                 cupy_fp32_inference: bool = False):
        super().__init__(v_threshold=v_threshold, v_reset=v_reset, surrogate_function=surrogate_function,
                         detach_reset=detach_reset)


class LIFNode(neuron.LIFNode):
    """clock_driven's single-step LIF neuron (``cupy_fp32_inference`` ignored)."""

    def __init__(self, tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset: float = 0.0, surrogate_function: Callable = surrogate.Sigmoid(),
                 detach_reset: bool = False, cupy_fp32_inference: bool = False):
        super().__init__(tau=tau, decay_input=decay_input, v_threshold=v_threshold, v_reset=v_reset,
                         surrogate_function=surrogate_function, detach_reset=detach_reset)


class MultiStepDropout(layer.Dropout):
    """clock_driven's ``MultiStepDropout``: ``activation_based.layer.Dropout`` in multi-step mode."""

    def __init__(self, p: float = 0.5):
        super().__init__(p=p, step_mode="m")


class MultiStepDropout2d(layer.Dropout2d):
    """clock_driven's ``MultiStepDropout2d``: ``activation_based.layer.Dropout2d`` in multi-step mode."""

    def __init__(self, p: float = 0.2):
        super().__init__(p=p, step_mode="m")


_NEURON = {"MultiStepIFNode": MultiStepIFNode, "MultiStepLIFNode": MultiStepLIFNode,
           "MultiStepParametricLIFNode": MultiStepParametricLIFNode, "IFNode": IFNode, "LIFNode": LIFNode,
           "ParametricLIFNode": neuron.ParametricLIFNode, "BaseNode": neuron.BaseNode}
_LAYER = {"MultiStepContainer": layer.MultiStepContainer, "SeqToANNContainer": layer.SeqToANNContainer,
          "Dropout": layer.Dropout, "Dropout2d": layer.Dropout2d, "MultiStepDropout": MultiStepDropout,
          "MultiStepDropout2d": MultiStepDropout2d}
#: clock_driven's functions and surrogates that 2.x's ``activation_based`` has under the same name.
_FUNCTIONAL = ("reset_net", "multi_step_forward", "seq_to_ann_forward", "first_spike_index", "redundant_one_hot",
               "spike_similar_loss", "kernel_dot_product", "set_threshold_margin",
               "temporal_efficient_training_cross_entropy", "kaiming_normal_conv_linear_weight")
_SURROGATE = ("SurrogateFunctionBase", "PiecewiseQuadratic", "PiecewiseExp", "Sigmoid", "SoftSign", "ATan",
              "NonzeroSignLogAbs", "Erf", "PiecewiseLeakyReLU", "SquarewaveFourierSeries", "S2NN", "QPseudoSpike")


def _module(name: str, names: dict[str, object], package: bool = False) -> ModuleType:
    module = ModuleType(name, f"sj_rga.compat's stand-in for SpikingJelly 0.0.0.0.14's {name}")
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=package)
    if package:
        module.__path__ = []
    module.__dict__.update(names)

    def __getattr__(attribute: str) -> object:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise AttributeError(f"{name}.{attribute} has no activation_based equivalent in sj_rga.compat (it maps "
                             f"{', '.join(sorted(k for k in names if not k.startswith('_'))) or 'its submodules'}); "
                             "port that part of the model to spikingjelly.activation_based by hand")

    module.__getattr__ = __getattr__
    return module


def enable_clock_driven() -> ModuleType:
    """Make ``spikingjelly.clock_driven.{neuron,layer,functional,surrogate}`` importable on SpikingJelly 2.x.

    Idempotent; returns the ``spikingjelly.clock_driven`` package module. Under SpikingJelly 0.0.0.0.14, which
    has the real package, nothing is changed and the real package is returned. See the module docstring for
    which names are mapped and how.

    Example::

        import sj_rga.compat
        sj_rga.compat.enable_clock_driven()
        from spikingjelly.clock_driven.neuron import MultiStepLIFNode   # published model code, unchanged
    """
    if clock_driven_neuron() is not None:
        return importlib.import_module(PACKAGE)
    found = sys.modules.get(PACKAGE)
    if found is not None:
        return found
    parts = {"neuron": _module(f"{PACKAGE}.neuron", dict(_NEURON)),
             "layer": _module(f"{PACKAGE}.layer", dict(_LAYER)),
             "functional": _module(f"{PACKAGE}.functional", {n: getattr(functional, n) for n in _FUNCTIONAL}),
             "surrogate": _module(f"{PACKAGE}.surrogate", {n: getattr(surrogate, n) for n in _SURROGATE})}
    package = _module(PACKAGE, parts, package=True)
    for part, module in parts.items():
        sys.modules[f"{PACKAGE}.{part}"] = module
    sys.modules[PACKAGE] = package
    spikingjelly.clock_driven = package
    return package
