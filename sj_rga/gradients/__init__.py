"""Every published SNN input gradient, on unchanged SpikingJelly models (method §2).

| name | estimator | backward of a spiking layer |
|---|---|---|
| ``stbp`` | :class:`STBP` | BPTT with the model's own surrogate |
| ``rga``  | :class:`RGA`  | dL/dX[t] = dL/dS[t] · g(Ī) · dI/dX (rate-current slope) |
| ``bptr`` | :class:`BPTR` | dL/dX[t] = dL/dS[t] · 1[fired at least once] |
| ``hart`` | :class:`HART` | mean_t' dL/dS[t'] · max(0, γ − abs(u[t']))/γ² · dH/dX, membrane detached |
| ``pdsg`` | :class:`PDSG` | BPTT, Gaussian surrogate of width σ(H) |
| ``assg`` | :class:`ASSG` | BPTT, reset detached, ATan surrogate of adaptive sharpness |

Every estimator keeps the stock forward, spike for spike. RGA, BPTR and HART are time-uniform and take the
fast path (one T = 1 backward) where the model allows; PDSG and ASSG run BPTT with their own surrogate.
Use them through :class:`sj_rga.SNNClassifier` (``gradient='hart'`` or ``gradient=HART(gamma=0.5)``) or
around any model with :func:`gradient_mode`. :class:`RGA` (also ``sj_rga.RGA``) is in addition a SpikingJelly
surrogate: ``surrogate_function=RGA()`` gives a neuron the same handle as ``gradient_mode(model, RGA())``.
"""
from .assg import ASSG, ASSGStatistics
from .base import GradientEstimator, Statistics
from .bptr import BPTR
from .hart import HART
from .mode import LayerEstimator, gradient_mode
from .pdsg import PDSG
from .per_step import PerStepEstimator
from .registry import ESTIMATORS, NAMES, estimator
from .rga import RGA
from .stbp import STBP
from .time_uniform import TimeUniformEstimator

__all__ = ["STBP", "RGA", "BPTR", "HART", "PDSG", "ASSG", "ASSGStatistics", "GradientEstimator", "LayerEstimator",
           "TimeUniformEstimator", "PerStepEstimator", "Statistics", "ESTIMATORS", "NAMES", "estimator",
           "gradient_mode"]
