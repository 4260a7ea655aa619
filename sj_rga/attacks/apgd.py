"""APGD (Croce & Hein, ICML 2020): PGD with momentum and a step size that halves when progress stalls."""
from __future__ import annotations

from typing import Sequence

import torch

from ..classifier import SNNClassifier
from ..seeding import SampleStreams
from ..validation import check_count
from .iterative import IterativeAttack, Objective, halving_points


class APGD(IterativeAttack):
    r"""Auto-PGD of Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks" (ICML 2020), method §3; pixel space, L∞ or L2.

    From a random point x⁽⁰⁾ on the ε-ball's surface, with the step size η⁽⁰⁾ = 2ε and projection P onto
    the ball and the bounds::

        x⁽¹⁾   = P(x⁽⁰⁾ + η·d(∇f(x⁽⁰⁾)))
        z      = P(x⁽ᵏ⁾ + η·d(∇f(x⁽ᵏ⁾)))
        x⁽ᵏ⁺¹⁾ = P(x⁽ᵏ⁾ + α·(z − x⁽ᵏ⁾) + (1 − α)·(x⁽ᵏ⁾ − x⁽ᵏ⁻¹⁾)),      α = 0.75 (momentum 0.25)

    with d = sign for L∞ and ∇/‖∇‖₂ for L2. At the checkpoints of :func:`~.iterative.halving_points`
    (0.22·N, then intervals shrinking by 0.03·N down to 0.06·N) a sample's η halves, and it restarts
    from its best point x_max, when

    1. the loss rose in at most ρ·(interval) of the interval's steps (ρ = ``rho``, 0.75), or
    2. η was not halved at the previous checkpoint and the best loss has not grown since it.

    Losses (:mod:`.losses`): ``'ce'`` or ``'dlr'``; ``targeted=True`` takes target labels and ascends
    −CE or the targeted DLR loss (which pushes down the class predicted for the clean input: the true
    class of a correctly classified sample; :class:`~.autoattack.AutoAttack` runs it over the top
    classes). Each gradient is the classifier's, whichever estimator it uses, averaged over its ``eot``
    Poisson samples. ``restarts`` random restarts run on the samples still unbroken. Returned per sample:
    the last iterate that fooled the classifier, else the iterate of highest loss. ``steps`` + 1
    gradient evaluations per restart.

    Distance measure: L∞ or L2.

    Arguments:
        classifier (SNNClassifier): the model to attack, as :class:`sj_rga.SNNClassifier` feeds it (T, encoding,
            normalisation, bounds) with its input-gradient estimator (``gradient=``).
        eps (float): radius ε of the ball, in input units (pixel space: 8/255 for images in [0, 1]). (Default: 8/255)
        norm (str): ``'Linf'`` or ``'L2'``, the ball's norm. (Default: ``'Linf'``)
        steps (int): iterations N per restart. (Default: 100)
        restarts (int): random restarts, each on the samples no earlier one broke. (Default: 1)
        loss (str): ``'ce'`` (cross-entropy) or ``'dlr'`` (difference of logits ratio; 3 or more classes).
            (Default: ``'ce'``)
        targeted (bool): ``y`` holds target labels; the attack descends the loss towards them. (Default: False)
        rho (float): ρ in (0, 1), the share of an interval's steps that must raise the loss. (Default: 0.75)
        seed (int): seeds the random starts (a call with the same seed and input repeats). (Default: 0)
        ensemble (sequence of SNNClassifier): more classifiers (e.g. the same model with other estimators) whose
            gradients, each divided by its mean ``|·|`` per sample, are added to the classifier's. (Default: ())

    Shape:
        - x: a batch the classifier accepts, in pixel space: images ``[B, C, H, W]`` within the classifier's
          ``bounds`` (e.g. [0, 1]), or event frames ``[B, T, C, H, W]``; the classifier encodes it to the
          time-major network input ``[T, B, ...]``.
        - y: ``[B]`` integer class indices in [0, classes): the true labels, or the targets when ``targeted``.
        - output: the adversarial inputs, shaped like ``x``, inside the ε-ball around ``x`` and the bounds.

    Examples::

        >>> classifier = sj_rga.SNNClassifier(model, T=8, gradient="assg")
        >>> attack = sj_rga.attacks.APGD(classifier, eps=8 / 255, norm="Linf", steps=20, loss="ce")
        >>> x_adv = attack(images, labels)
        >>> broken = attack.last_broken          # [B] bool: some iterate fooled the classifier
    """

    def __init__(self, classifier: SNNClassifier, eps: float = 8 / 255, norm: str = "Linf", steps: int = 100,
                 restarts: int = 1, loss: str = "ce", targeted: bool = False, rho: float = 0.75, seed: int = 0,
                 ensemble: Sequence[SNNClassifier] = ()):
        super().__init__(classifier, eps, norm, steps, restarts, loss, targeted, seed, ensemble)
        if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0 < rho < 1:
            raise ValueError(f"rho (the share of steps that must raise the loss) must lie in (0, 1), got {rho!r}")
        self.rho = float(rho)

    def run(self, x: torch.Tensor, objective: Objective, streams: SampleStreams
            ) -> tuple[torch.Tensor, torch.Tensor]:
        x_adv = self.random_start(x, streams)
        logits, loss, grad = self.loss_and_grad(x_adv, objective)
        broken = objective.success(logits)
        answer = x_adv.clone()
        x_best, loss_best, grad_best = x_adv.clone(), loss.clone(), grad.clone()
        eta = torch.full((x.shape[0],) + (1,) * (x.dim() - 1), 2 * self.eps, dtype=x.dtype, device=x.device)
        checkpoints, previous_checkpoint = halving_points(self.steps), 0
        rises = torch.zeros(x.shape[0], device=x.device)
        reduced_last = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        loss_best_last = loss_best.clone()
        x_prev, loss_prev = x_adv.clone(), loss
        for k in range(self.steps):
            alpha = 1.0 if k == 0 else 0.75
            z = self.project(x, x_adv + eta * self.direction(grad))
            x_next = self.project(x, x_adv + alpha * (z - x_adv) + (1 - alpha) * (x_adv - x_prev))
            x_prev, x_adv = x_adv, x_next
            logits, loss, grad = self.loss_and_grad(x_adv, objective)
            fooled = objective.success(logits)
            answer[fooled], broken = x_adv[fooled], broken | fooled
            rises += (loss > loss_prev).float()
            loss_prev = loss
            better = loss > loss_best
            x_best[better], loss_best[better], grad_best[better] = x_adv[better], loss[better], grad[better]
            if k + 1 in checkpoints:
                interval = k + 1 - previous_checkpoint
                halve = (rises <= self.rho * interval) | (~reduced_last & (loss_best <= loss_best_last))
                eta[halve] /= 2
                x_adv[halve], grad[halve] = x_best[halve], grad_best[halve]
                reduced_last, loss_best_last = halve, loss_best.clone()
                rises.zero_()
                previous_checkpoint = k + 1
        answer[~broken] = x_best[~broken]
        return answer, broken


class APGDT(APGD):
    r"""APGD-T (Croce & Hein, ICML 2020): APGD with the targeted DLR loss, run towards each of the classes the
    clean input scores highest after its true class; untargeted in its goal.

    ``atk(x, y)`` takes the true labels. For r = 1 … ``target_classes`` (at most classes − 1), the
    samples not yet misclassified are attacked with the loss
    ``−(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2)`` where t is the class with the r-th highest clean logit
    among those ≠ y; each run is ``restarts`` × (``steps`` + 1) gradient evaluations. A sample counts
    broken when the classifier no longer predicts y (the target need not be reached). Needs 4 or more
    classes.

    Distance measure: L∞ or L2.

    Arguments:
        classifier (SNNClassifier): the model to attack, as :class:`sj_rga.SNNClassifier` feeds it (T, encoding,
            normalisation, bounds) with its input-gradient estimator (``gradient=``).
        eps (float): radius ε of the ball, in input units (pixel space: 8/255 for images in [0, 1]). (Default: 8/255)
        norm (str): ``'Linf'`` or ``'L2'``, the ball's norm. (Default: ``'Linf'``)
        steps (int): APGD iterations per target class and restart. (Default: 100)
        target_classes (int): how many of the top-scoring other classes to target, one after the other.
            (Default: 9)
        restarts (int): random restarts, each on the samples no earlier one broke. (Default: 1)
        rho (float): ρ in (0, 1), APGD's step-size rule. (Default: 0.75)
        seed (int): seeds the random starts (a call with the same seed and input repeats). (Default: 0)
        ensemble (sequence of SNNClassifier): more classifiers (e.g. the same model with other estimators) whose
            gradients, each divided by its mean ``|·|`` per sample, are added to the classifier's. (Default: ())

    Shape:
        - x: a batch the classifier accepts, in pixel space: images ``[B, C, H, W]`` within the classifier's
          ``bounds`` (e.g. [0, 1]), or event frames ``[B, T, C, H, W]``; the classifier encodes it to the
          time-major network input ``[T, B, ...]``.
        - y: ``[B]`` integer class indices in [0, classes): the true labels.
        - output: the adversarial inputs, shaped like ``x``, inside the ε-ball around ``x`` and the bounds.

    Examples::

        >>> classifier = sj_rga.SNNClassifier(model, T=8, gradient="assg")
        >>> attack = sj_rga.attacks.APGDT(classifier, eps=8 / 255, steps=20, target_classes=3)
        >>> x_adv = attack(images, labels)
    """

    def __init__(self, classifier: SNNClassifier, eps: float = 8 / 255, norm: str = "Linf", steps: int = 100,
                 target_classes: int = 9, restarts: int = 1, rho: float = 0.75, seed: int = 0,
                 ensemble: Sequence[SNNClassifier] = ()):
        super().__init__(classifier, eps, norm, steps, restarts, "dlr", False, rho, seed, ensemble)
        self.target_classes = check_count(target_classes, "target_classes")

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        streams = self.begin(x)
        with torch.no_grad():
            clean = self.classifier(x)
        if clean.shape[1] < 4:
            raise ValueError(f"APGD-T's targeted DLR loss needs at least 4 classes; this model has {clean.shape[1]}")
        ranked = clean.scatter(1, y[:, None], float("-inf")).argsort(1, descending=True)
        x_adv, broken = x.clone(), clean.argmax(1) != y
        for rank in range(min(self.target_classes, clean.shape[1] - 1)):
            objective = Objective("dlr", y, ranked[:, rank])
            x_adv, broken = self.restarted(x, objective, streams, x_adv, broken)
        self.last_broken = broken
        return x_adv
