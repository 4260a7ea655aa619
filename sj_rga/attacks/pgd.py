"""PGD (Madry et al., 2018) under the L∞ or L2 norm, with an optional random start."""
from __future__ import annotations

from typing import Optional

import torch

from ..classifier import SNNClassifier
from ..seeding import SampleStreams
from ..validation import check_eps, check_steps
from .ball import TINY, ascent_direction, check_norm, into_ball, l2_norm, per_sample
from .base import Attack
from .iterative import START_PART


class PGD(Attack):
    r"""PGD of Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks" (ICLR 2018):
    ``steps`` projected steps of size ``alpha`` inside the ε-ball around x and the classifier's bounds::

        x⁽ᵏ⁺¹⁾ = P(x⁽ᵏ⁾ + α · d(∇x loss(f(x⁽ᵏ⁾), y)))

    L∞: d = sign(∇), projection P by clamping. L2: d = ∇/‖∇‖₂ per sample, projection by rescaling. With
    ``random_start`` the start x⁽⁰⁾ is drawn uniformly in the ε-ball, then clipped to the bounds: under L∞
    each coordinate uniform in [-ε, ε]; under L2 a uniform direction (a normalised Gaussian) at radius
    ε·U^(1/d), U uniform in [0, 1] and d the number of input elements per sample, so that the density is
    uniform over the ball's volume. ``loss`` is the cross-entropy (its negative when ``targeted``).

    Distance measure: L∞ or L2.

    Arguments:
        classifier (SNNClassifier): the model to attack, as :class:`sj_rga.SNNClassifier` feeds it (T, encoding,
            normalisation, bounds) with its input-gradient estimator (``gradient=``).
        eps (float): radius ε of the ball, in input units (pixel space: 8/255 for images in [0, 1]). (Default: 8/255)
        alpha (float): step size α, in input units (2/255 for images in [0, 1] under L∞). (Default: 2/255)
        steps (int): number of steps. (Default: 10)
        random_start (bool): start from a uniform random point of the ε-ball instead of x. (Default: True)
        norm (str): ``'Linf'`` or ``'L2'``, the ball's norm. (Default: ``'Linf'``)
        targeted (bool): ``y`` holds target labels; the attack descends the loss towards them. (Default: False)
        seed (int or None): seeds the random start: row i from its sample's own stream, ``derive_seed(seed,
            sample index, START_PART)`` of :mod:`sj_rga.seeding`, so that it does not depend on the batch (None: a
            seed drawn from torch's global generator). (Default: None)

    Shape:
        - x: a batch the classifier accepts, in pixel space: images ``[B, C, H, W]`` within the classifier's
          ``bounds`` (e.g. [0, 1]), or event frames ``[B, T, C, H, W]``; the classifier encodes it to the
          time-major network input ``[T, B, ...]``.
        - y: ``[B]`` integer class indices in [0, classes): the true labels, or the targets when ``targeted``.
        - output: the adversarial inputs, shaped like ``x``, inside the ε-ball around ``x`` and the bounds.

    Examples::

        >>> classifier = sj_rga.SNNClassifier(model, T=8, gradient="rga")
        >>> attack = sj_rga.attacks.PGD(classifier, eps=8 / 255, alpha=2 / 255, steps=10, seed=0)
        >>> x_adv = attack(images, labels)

    """

    def __init__(self, classifier: SNNClassifier, eps: float = 8 / 255, alpha: float = 2 / 255, steps: int = 10,
                 random_start: bool = True, norm: str = "Linf", targeted: bool = False, seed: Optional[int] = None):
        super().__init__(classifier, targeted)
        self.eps, self.alpha, self.steps = check_eps(eps), check_eps(alpha, "alpha"), check_steps(steps)
        if self.alpha == 0 and self.eps > 0:
            raise ValueError("alpha (the step size) must be > 0")
        if not isinstance(random_start, bool):
            raise TypeError(f"random_start must be True or False, got {random_start!r}")
        self.norm, self.random_start, self.seed = check_norm(norm), random_start, seed

    def _random_delta(self, x: torch.Tensor) -> torch.Tensor:
        seed = int(torch.randint(2 ** 62, ())) if self.seed is None else self.seed  # no seed: torch's generator
        streams = SampleStreams(seed, x.shape[0], (START_PART,), device=x.device)
        if self.norm == "Linf":
            return (streams.rand(x.shape[1:], x.dtype, x.device) * 2 - 1) * self.eps
        direction = streams.randn(x.shape[1:], x.dtype, x.device)
        uniform = streams.rand((), x.dtype, x.device).reshape(per_sample(x))
        radius = uniform ** (1.0 / x[0].numel())  # P(radius <= r) = r^d: uniform in the ball's volume
        return direction / l2_norm(direction).clamp_min(TINY) * radius * self.eps

    def project(self, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        """Back into the ε-ball around ``x`` and the bounds."""
        return self.clip_to_bounds(into_ball(x, x_adv, self.eps, self.norm))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x_adv = self.project(x, x + self._random_delta(x)) if self.random_start else x.clone()
        for _ in range(self.steps):
            grad = self.input_gradient(x_adv, y)
            x_adv = self.project(x, x_adv + self.alpha * ascent_direction(grad, self.norm))
        return x_adv
