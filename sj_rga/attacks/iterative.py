"""What APGD and SA-PGD share: the objective, random starts, projection, restarts and the step-size schedule.

Inputs and ε are in pixel space (method §3). An attack ascends a per-sample loss (:mod:`.losses`) and
records, per sample, whether some iterate it evaluated was misclassified (untargeted) or classified as
the target (targeted). Restarts run only on the samples no earlier restart broke.

Random starts are drawn per sample (:class:`~sj_rga.seeding.SampleStreams`, ``derive_seed(seed, sample index,
START_PART)``), each restart continuing the sample's stream, and every restart starts the estimator's
statistics afresh: a sample's attack does not depend on the batch it is in (method §3, "Seeding").
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from ..classifier import SNNClassifier
from ..seeding import SampleStreams, current_indices, sample_indices
from ..validation import check_count, check_eps, check_seed, check_steps
from .ball import TINY, ascent_direction, check_norm, into_ball, l2_norm, mean_abs, per_sample
from .base import Attack
from .losses import LOSSES, cross_entropy, dlr, targeted_dlr

#: The part of a sample's random-start stream: ``derive_seed(seed, sample index, START_PART)``.
START_PART = 2


def halving_points(steps: int) -> list[int]:
    """Iterations after which the step size may halve (APGD) or halves (SA-PGD), Croce & Hein's schedule.

    The first interval is ``⌊0.22·steps⌋`` iterations; each next one is ``⌊0.03·steps⌋`` shorter, but
    never shorter than ``⌊0.06·steps⌋`` (each at least 1). For 100 steps: 22, 41, 57, 70, 80, 87, 93, 99.
    """
    first, shrink, floor = (max(int(fraction * steps), 1) for fraction in (0.22, 0.03, 0.06))
    points, interval, point = [], first, first
    while point <= steps:
        points.append(point)
        interval = max(interval - shrink, floor)
        point += interval
    return points


@dataclass
class Objective:
    """The per-sample loss an attack ascends and its success test, for one batch.

    ``labels``: the true classes (for a targeted attack with the DLR loss: the classes predicted for the
    clean inputs, which the loss pushes down). ``targets``: the classes targeted losses push up (None for
    untargeted losses). ``reach_target``: success means "classified as the target"; otherwise it means
    "not classified as the label".
    """

    loss_name: str
    labels: torch.Tensor
    targets: Optional[torch.Tensor] = None
    reach_target: bool = False

    def subset(self, index: torch.Tensor) -> Objective:
        targets = None if self.targets is None else self.targets[index]
        return Objective(self.loss_name, self.labels[index], targets, self.reach_target)

    def loss(self, logits: torch.Tensor) -> torch.Tensor:
        if self.targets is None:
            return (cross_entropy if self.loss_name == "ce" else dlr)(logits, self.labels)
        if self.loss_name == "ce":
            return -cross_entropy(logits, self.targets)
        return targeted_dlr(logits, self.labels, self.targets)

    def success(self, logits: torch.Tensor) -> torch.Tensor:
        predicted = logits.argmax(1)
        return predicted == self.targets if self.reach_target else predicted != self.labels


def _loss_and_grad(classifier: SNNClassifier, x_adv: torch.Tensor, objective: Objective
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x_adv = x_adv.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = classifier(x_adv)
        loss = objective.loss(logits)
        grad = torch.autograd.grad(loss.sum(), x_adv, allow_unused=True)[0] if loss.requires_grad else None
    grad = torch.zeros_like(x_adv) if grad is None else grad  # a model that ignores its input
    return logits.detach(), loss.detach(), grad.detach()


class IterativeAttack(Attack):
    """Base of APGD and SA-PGD: checks, objective, random start, projection, restarts, final answer.

    Subclasses implement :meth:`run`: one restart on a sub-batch, returning the point to report per
    sample and which samples it broke.
    """

    def __init__(self, classifier: SNNClassifier, eps: float, norm: str, steps: int, restarts: int, loss: str,
                 targeted: bool, seed: int, ensemble: Sequence[SNNClassifier] = ()):
        super().__init__(classifier, targeted)
        ensemble = tuple(ensemble)
        if not all(isinstance(member, SNNClassifier) for member in ensemble):
            raise TypeError("ensemble must be a sequence of sj_rga.SNNClassifier (e.g. the same model with other "
                            "gradient estimators)")
        self.ensemble = ensemble
        self.eps, self.norm = check_eps(eps), check_norm(norm)
        self.steps, self.restarts = check_steps(steps), check_count(restarts, "restarts")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.loss_name, self.seed = loss, check_seed(seed)
        #: Per sample of the last call: True where some restart broke it.
        self.last_broken: Optional[torch.Tensor] = None

    # -- geometry -----------------------------------------------------------------------------------
    def project(self, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        """Onto the ε-ball around ``x`` (clamp for L∞, rescale for L2), then the classifier's bounds.
        Clipping to the bounds moves every coordinate towards ``x`` (which lies inside them), so the
        result stays inside the ball."""
        return self.clip_to_bounds(into_ball(x, x_adv, self.eps, self.norm))

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        """Steepest ascent direction of unit norm: sign(∇) for L∞, ∇/‖∇‖₂ per sample for L2."""
        return ascent_direction(grad, self.norm)

    def random_start(self, x: torch.Tensor, streams: SampleStreams) -> torch.Tensor:
        """A point on the surface of the ε-ball, projected onto the bounds (Croce & Hein's start):
        L∞: ε·u/max|u| with u uniform in [−1, 1]; L2: ε·n/‖n‖₂ with n standard normal; row i drawn from
        its sample's stream."""
        if self.norm == "Linf":
            u = streams.rand(x.shape[1:], dtype=x.dtype, device=x.device) * 2 - 1
            delta = u / u.flatten(1).abs().amax(1).reshape(per_sample(x)).clamp_min(TINY)
        else:
            n = streams.randn(x.shape[1:], dtype=x.dtype, device=x.device)
            delta = n / l2_norm(n).clamp_min(TINY)
        return self.project(x, x + self.eps * delta)

    # -- objective ----------------------------------------------------------------------------------
    def objective(self, x: torch.Tensor, y: torch.Tensor) -> Objective:
        """The batch's objective; the targeted DLR loss pushes down the class predicted for the clean input."""
        if not self.targeted:
            return Objective(self.loss_name, y)
        reference = y
        if self.loss_name == "dlr":
            with torch.no_grad():
                reference = self.classifier(x).argmax(1)
        return Objective(self.loss_name, reference, y, reach_target=True)

    def loss_and_grad(self, x_adv: torch.Tensor, objective: Objective
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, per-sample loss, gradient) at ``x_adv``: ∇x of the summed loss with the classifier's
        estimator (its EOT average for Poisson input); with an ``ensemble``, the sum over the classifier and
        its members of each gradient divided by its mean |·| per sample. One forward with gradients per
        classifier: ASSG's statistics update once."""
        logits, loss, grad = _loss_and_grad(self.classifier, x_adv, objective)
        if self.ensemble:
            grad = grad / mean_abs(grad).clamp_min(TINY)
            for member in self.ensemble:
                other = _loss_and_grad(member, x_adv, objective)[2]
                grad = grad + other / mean_abs(other).clamp_min(TINY)
        return logits, loss, grad

    # -- the attack ---------------------------------------------------------------------------------
    def begin(self, x: torch.Tensor) -> SampleStreams:
        """Start a call: restart the ensemble's classifiers (``Attack.__call__`` restarts the classifier) and
        return the call's per-sample random streams, seeded with ``seed`` and each row's sample index."""
        for member in self.ensemble:
            member.restart()
        return SampleStreams(self.seed, x.shape[0], (START_PART,), device=x.device)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        streams = self.begin(x)
        x_adv, broken = self.restarted(x, self.objective(x, y), streams)
        self.last_broken = broken
        return x_adv

    def restarted(self, x: torch.Tensor, objective: Objective, streams: SampleStreams,
                  x_adv: Optional[torch.Tensor] = None, broken: Optional[torch.Tensor] = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """``restarts`` runs, each on the samples no earlier run broke (nor ``broken``, if given), with those
        samples' indices declared (:func:`~sj_rga.seeding.sample_indices`) and the estimators' statistics
        fresh; (points, broken), starting from ``x_adv`` (default: ``x``)."""
        x_adv = x.clone() if x_adv is None else x_adv
        broken = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device) if broken is None else broken
        indices = current_indices(x.shape[0])
        for _ in range(self.restarts):
            todo = (~broken).nonzero()[:, 0]
            if todo.numel() == 0:
                break
            for classifier in (self.classifier, *self.ensemble):
                classifier.restart_statistics()
            with sample_indices(indices[todo.cpu()]):
                point, success = self.run(x[todo], objective.subset(todo), streams.subset(todo))
            x_adv[todo], broken[todo] = point, success
        return x_adv, broken

    @abc.abstractmethod
    def run(self, x: torch.Tensor, objective: Objective, streams: SampleStreams
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """One restart on a sub-batch: (point to report per sample, broken per sample)."""
