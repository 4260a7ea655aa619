"""SA-PGD (arXiv 2512.22522): PGD with a normalised momentum, an Adam-like second moment and a halving step."""
from __future__ import annotations

from typing import Sequence

import torch

from ..classifier import SNNClassifier
from ..seeding import SampleStreams
from .ball import TINY, l2_norm, mean_abs
from .iterative import IterativeAttack, Objective, halving_points


class SAPGD(IterativeAttack):
    r"""SA-PGD, the optimiser of the ASSG paper (Wang et al., arXiv 2512.22522), method §3; pixel space, L∞ or L2.

    From a random point on the ε-ball's surface, for k = 0 … N−1 with the gradient g of the loss at x⁽ᵏ⁾
    (the classifier's estimator, EOT-averaged for Poisson input), per sample b and pixel::

        m ← 0.5·m + g / mean_b|g|                       (momentum of the normalised gradient; m₀ = 0)
        v ← 0.8·v + g² / mean_b(g²)                     (second moment, normalised; v₀ = 0)
        u = m / √v                                       (0 where v = 0)
        L∞: x ← P(x + clip(s·u, −s, s))                  (per pixel)
        L2: x ← P(x + s·u / ‖u‖₂)                        (per sample)

    P projects onto the ε-ball and the bounds. The step size s starts at ε and halves after the
    iterations of :func:`~.iterative.halving_points`: every k iterations, k starting at 0.22·N and
    shrinking by 0.03·N after each halving, floor 0.06·N (for N = 100: after 22, 41, 57, 70, 80, 87, 93
    and 99). Returned per sample: the last iterate that fooled the classifier (the final iterate is
    checked by one more forward without gradient), else the final iterate. It pays off with adaptive
    gradients such as ASSG, whose statistics keep adapting over 100 or more steps. Losses and
    ``targeted`` as in :class:`~.apgd.APGD`; ``restarts`` run on the samples still unbroken.

    Distance measure: L∞ or L2.

    Arguments:
        classifier (SNNClassifier): the model to attack, as :class:`sj_rga.SNNClassifier` feeds it (T, encoding,
            normalisation, bounds) with its input-gradient estimator (``gradient=``).
        eps (float): radius ε of the ball, in input units (pixel space: 8/255 for images in [0, 1]). (Default: 8/255)
        norm (str): ``'Linf'`` or ``'L2'``, the ball's norm. (Default: ``'Linf'``)
        steps (int): iterations N per restart (N gradient evaluations). (Default: 100)
        restarts (int): random restarts, each on the samples no earlier one broke. (Default: 1)
        loss (str): ``'ce'`` or ``'dlr'``, as in :class:`~.apgd.APGD`. (Default: ``'ce'``)
        targeted (bool): ``y`` holds target labels; the attack descends the loss towards them. (Default: False)
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
        >>> attack = sj_rga.attacks.SAPGD(classifier, eps=8 / 255, steps=50)
        >>> x_adv = attack(images, labels)
    """

    def __init__(self, classifier: SNNClassifier, eps: float = 8 / 255, norm: str = "Linf", steps: int = 100,
                 restarts: int = 1, loss: str = "ce", targeted: bool = False, seed: int = 0,
                 ensemble: Sequence[SNNClassifier] = ()):
        super().__init__(classifier, eps, norm, steps, restarts, loss, targeted, seed, ensemble)

    def step_sizes(self) -> list[float]:
        """The step size s of each of the ``steps`` iterations."""
        points, size, sizes = halving_points(self.steps), self.eps, []
        for k in range(self.steps):
            sizes.append(size)
            if k + 1 in points:
                size /= 2
        return sizes

    def run(self, x: torch.Tensor, objective: Objective, streams: SampleStreams
            ) -> tuple[torch.Tensor, torch.Tensor]:
        x_adv = self.random_start(x, streams)
        answer, broken = x_adv.clone(), torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        m, v = torch.zeros_like(x), torch.zeros_like(x)
        for s in self.step_sizes():
            logits, _, g = self.loss_and_grad(x_adv, objective)
            fooled = objective.success(logits)
            answer[fooled], broken = x_adv[fooled], broken | fooled
            m = 0.5 * m + g / mean_abs(g).clamp_min(TINY)
            v = 0.8 * v + g * g / mean_abs(g * g).clamp_min(TINY)
            u = torch.where(v > 0, m / v.sqrt().clamp_min(TINY), torch.zeros_like(m))
            step = (s * u).clamp(-s, s) if self.norm == "Linf" else s * u / l2_norm(u).clamp_min(TINY)
            x_adv = self.project(x, x_adv + step)
        with torch.no_grad():
            fooled = objective.success(self.classifier(x_adv))
        answer[fooled], broken = x_adv[fooled], broken | fooled
        answer[~broken] = x_adv[~broken]
        return answer, broken
