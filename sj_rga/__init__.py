"""sj-rga: the Rate Gradient Approximation (RGA) attack of Bu et al. (CVPR 2023) for SpikingJelly.

Importing the package gives SpikingJelly's IFNode, LIFNode and ParametricLIFNode the RGA backward
whenever their surrogate is :class:`RGA` or they sit inside :func:`rate_mode`.
"""
from . import attacks, gradients
from .classifier import SNNClassifier
from .fast import register_affine_block
from .gradients import RGA, gradient_mode
from .mapping import NeuronMapping, neuron_mapping, register_neuron
from .metrics import AttackReport, evaluate
from .rate_mode import rate_mode, spiking_neurons
from .rate_nodes import RateIFNode, RateLIFNode, RateParametricLIFNode
from .shuffle import ShuffleReport, shuffle_test
from .surrogate import rate_slope
from .tuning import TuningResult, tune_gradient
from .version import __version__ as __version__

__all__ = [
    "RGA", "rate_slope", "rate_mode", "spiking_neurons", "NeuronMapping", "neuron_mapping", "register_neuron",
    "RateIFNode", "RateLIFNode", "RateParametricLIFNode", "SNNClassifier", "attacks", "evaluate", "AttackReport",
    "shuffle_test", "ShuffleReport", "register_affine_block", "gradients", "gradient_mode",
    "tune_gradient", "TuningResult",
]
