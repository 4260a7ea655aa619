"""Reference spiking models of the paper, from SpikingJelly layers in multi-step mode.

Every model takes a time-major input ``[T, B, C, H, W]`` (static images repeated over T, or event frames)
and returns per-time-step class scores ``[T, B, classes]``; the classifier wrapper (and training) average
them over T. The neuron class and its keyword arguments (leak, surrogate, reset, ...) are arguments, so
``surrogate_function=sj_rga.RGA(lam)`` or ``sj_rga.RateLIFNode`` can be swapped in.
"""
from .digits import digits_snn
from .neurons import PAPER_SURROGATE, PAPER_SURROGATE_KWARGS, make_surrogate, neuron_factory, paper_neuron
from .registry import MODELS, build
from .resnet import resnet17
from .vgg import dvs_vgg, vgg11
from .zoo import zoo_model

__all__ = [
    "vgg11", "resnet17", "dvs_vgg", "digits_snn", "zoo_model", "build", "MODELS",
    "paper_neuron", "make_surrogate", "neuron_factory", "PAPER_SURROGATE", "PAPER_SURROGATE_KWARGS",
]
