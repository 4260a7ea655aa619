"""ASSG: the adaptive sharpness surrogate gradient (Wang et al., arXiv 2512.22522; method §2).

BPTT through the stock dynamics with the reset detached, and the ATan surrogate at u = H[t] − θ with a
sharpness α per (layer, step, sample, neuron):

    dS/du = (α/2) / (1 + (π/2 · α · u)²),      α = a / (M_t + relax·D_t + 1e-4),   a = 2·tan(π·A)/π
    M_t ← β1·M_t + (1 − β1)·|u|,   then   D_t ← β2·D_t + (1 − β2)·| |u| − M_t |

(the new M_t in D's update; α from the updated moments), both without gradient, starting from M = 1, D = 0.
The moments persist across the gradient evaluations of one attack run, are updated once per evaluation
(not inside EOT repeats) and start afresh for every attack run: they live in an :class:`ASSGStatistics`
that the caller owns (:class:`sj_rga.SNNClassifier` keeps one and restarts it in ``restart()``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Hashable, Optional, Union

import torch
import torch.nn as nn

from ..validation import check_range
from .per_step import PerStepEstimator, SurrogateDerivative

Moment = Union[float, torch.Tensor]


@dataclass
class LayerMoments:
    """M_t and D_t of one layer call at every step ``[T, B, ...]``: per step, sample and neuron (None until
    the first update: M = 1, D = 0)."""

    first: Optional[torch.Tensor] = None
    spread: Optional[torch.Tensor] = None

    def fits(self, u: torch.Tensor) -> bool:
        """Whether the stored moments belong to potentials like ``u`` (shape, dtype, device)."""
        m = self.first
        return m is None or (m.shape == u.shape and m.dtype == u.dtype and m.device == u.device)


class ASSGStatistics:
    """ASSG's moments for every layer call of a model, keyed by (neuron index, call index in the forward).

    Per sample: when a layer's batch (or T, dtype or device) changes, as when an evaluation suite attacks
    only the samples still robust, that layer starts afresh. ``updates`` counts each layer's updates.
    """

    def __init__(self) -> None:
        self.layers: dict[Hashable, LayerMoments] = {}
        self.updates: dict[Hashable, int] = {}

    def layer(self, key: Hashable, update: bool) -> _LayerView:
        return _LayerView(self, key, update)


class _LayerView:
    """One layer call's access to :class:`ASSGStatistics` during one forward."""

    def __init__(self, statistics: ASSGStatistics, key: Hashable, update: bool):
        self.statistics, self.key, self.update = statistics, key, update

    def moments(self, u: torch.Tensor) -> LayerMoments:
        found = self.statistics.layers.get(self.key)
        if found is None or not found.fits(u):
            found = self.statistics.layers[self.key] = LayerMoments()
            self.statistics.updates[self.key] = 0
        return found


class _Derivative:
    """ASSG's dS/du at every step, updating the layer's moments first when this forward may."""

    def __init__(self, estimator: ASSG, view: _LayerView):
        self.estimator, self.view = estimator, view

    def __call__(self, u: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        e = self.estimator
        moments = self.view.moments(u)
        first: Moment = 1.0 if moments.first is None else moments.first
        spread: Moment = 0.0 if moments.spread is None else moments.spread
        if self.view.update:
            magnitude = u.abs()
            first = e.beta1 * first + (1.0 - e.beta1) * magnitude
            spread = e.beta2 * spread + (1.0 - e.beta2) * (magnitude - first).abs()
            moments.first, moments.spread = first, spread
            self.view.statistics.updates[self.view.key] += 1
        alpha = (2.0 * math.tan(math.pi * e.A) / math.pi) / (first + e.relax * spread + 1e-4)
        return (alpha / 2.0) / (1.0 + (math.pi / 2.0 * alpha * u).square())


@dataclass(frozen=True)
class ASSG(PerStepEstimator):
    r"""Adaptive sharpness surrogate gradient (Wang et al., arXiv 2512.22522; method §2): BPTT with the reset
    detached and the ATan surrogate at u = H[t] − θ with a sharpness α per (layer, step, sample, neuron)::

        dS/du = (α/2) / (1 + (π/2 · α · u)²),      α = a / (M_t + relax·D_t + 1e-4),   a = 2·tan(π·A)/π
        M_t ← β1·M_t + (1 − β1)·|u|,   then   D_t ← β2·D_t + (1 − β2)·| |u| − M_t |

    The moments (no gradient; M = 1, D = 0 at first) persist across the gradient evaluations of one attack
    run and live in an :class:`ASSGStatistics` the caller owns (:class:`sj_rga.SNNClassifier` keeps one).

    Arguments:
        A (float): in (0, 0.5), the bound on the expected gradient vanishing that sets a = 2·tan(π·A)/π
            (the authors search 0.35 … 0.49). (Default: 0.425)
        relax (float): ≥ 0, the weight of the spread D_t (a pure number: M_t and D_t are potentials). (Default: 1.5)
        beta1 (float): in [0, 1), the decay of the first moment M_t. (Default: 0.9)
        beta2 (float): in [0, 1), the decay of the spread D_t. (Default: 0.9)

    Examples::

        >>> classifier = sj_rga.SNNClassifier(model, T=8, gradient=sj_rga.gradients.ASSG(A=0.45))
        >>> x_adv = sj_rga.attacks.PGD(classifier, eps=8 / 255, alpha=2 / 255, steps=10)(images, labels)
        >>> with sj_rga.gradient_mode(model, sj_rga.gradients.ASSG(A=0.45)):  # any model, your own loop
        ...     model(x_seq).mean(0).sum().backward()
    """

    A: float = 0.425
    relax: float = 1.5
    beta1: float = 0.9
    beta2: float = 0.9
    name: ClassVar[str] = "assg"
    batch_statistic: ClassVar[Optional[str]] = "its moments are kept per sample of the batch it saw"

    def __post_init__(self) -> None:
        for name, label, low, high, low_open in (("A", "A (ASSG's vanishing bound)", 0.0, 0.5, True),
                                                 ("relax", "relax (ASSG's weight of D_t)", 0.0, math.inf, False),
                                                 ("beta1", "beta1 (ASSG's decay of M_t)", 0.0, 1.0, False),
                                                 ("beta2", "beta2 (ASSG's decay of D_t)", 0.0, 1.0, False)):
            object.__setattr__(self, name, check_range(getattr(self, name), label, low, high, low_open=low_open,
                                                       high_open=True))

    def new_statistics(self) -> ASSGStatistics:
        return ASSGStatistics()

    def derivative(self, node: nn.Module, x_seq: torch.Tensor, state: object) -> SurrogateDerivative:
        if not isinstance(state, _LayerView):
            raise TypeError("ASSG needs its statistics: run it through SNNClassifier or gradient_mode")
        return _Derivative(self, state)

    def detach_reset(self, node: nn.Module) -> bool:
        return True
