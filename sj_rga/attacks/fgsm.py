"""FGSM (Goodfellow et al., 2015): one signed-gradient step of size ε."""
from __future__ import annotations

import torch

from ..classifier import SNNClassifier
from ..validation import check_eps
from .base import Attack


class FGSM(Attack):
    r"""FGSM of Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples" (ICLR 2015):
    one signed-gradient step of size ε::

        x_adv = clip(x + ε · sign(∇x loss(f(x), y)))

    with ``loss`` the cross-entropy of the logits (its negative when ``targeted``), ∇x the classifier's input
    gradient in pixel space, and clip to the classifier's bounds.

    Distance measure: L∞.

    Arguments:
        classifier (SNNClassifier): the model to attack, as :class:`sj_rga.SNNClassifier` feeds it (T, encoding,
            normalisation, bounds) with its input-gradient estimator (``gradient=``).
        eps (float): radius ε of the ball, in input units (pixel space: 8/255 for images in [0, 1]). (Default: 8/255)
        targeted (bool): ``y`` holds target labels; the attack descends the loss towards them. (Default: False)

    Shape:
        - x: a batch the classifier accepts, in pixel space: images ``[B, C, H, W]`` within the classifier's
          ``bounds`` (e.g. [0, 1]), or event frames ``[B, T, C, H, W]``; the classifier encodes it to the
          time-major network input ``[T, B, ...]``.
        - y: ``[B]`` integer class indices in [0, classes): the true labels, or the targets when ``targeted``.
        - output: the adversarial inputs, shaped like ``x``, inside the ε-ball around ``x`` and the bounds.

    Examples::

        >>> classifier = sj_rga.SNNClassifier(model, T=8, gradient="rga")
        >>> attack = sj_rga.attacks.FGSM(classifier, eps=8 / 255)
        >>> x_adv = attack(images, labels)
    """

    def __init__(self, classifier: SNNClassifier, eps: float = 8 / 255, targeted: bool = False):
        super().__init__(classifier, targeted)
        self.eps = check_eps(eps)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.clip_to_bounds(x + self.eps * self.input_gradient(x, y).sign())
