"""PGD (Madry et al., 2018) under the L∞ or L2 norm, with an optional random start."""
from __future__ import annotations

from typing import Optional

import torch

from ..classifier import SNNClassifier
from ..seeding import SampleStreams
from .ball import TINY, ascent_direction, check_norm, into_ball, l2_norm, per_sample
from .base import Attack, check_eps, check_steps
from .iterative import START_PART


class PGD(Attack):
    """``steps`` projected steps of size ``alpha`` inside the ε-ball around x and the classifier's bounds.

    L∞: steps along sign(∇), projection by clamping. L2: steps along ∇/‖∇‖₂ per sample, projection by
    rescaling. ``random_start`` draws the start uniformly in the ε-ball, then clips it to the bounds (with a
    ``seed``, row i from its sample's own stream, ``derive_seed(seed, sample index, START_PART)`` of
    :mod:`sj_rga.seeding`, so that it does not depend on the batch; without one, the seed is drawn from torch's
    global generator): under L∞ each coordinate uniform in [-ε, ε]; under L2 a uniform direction
    (a normalised Gaussian) at radius ε·U^(1/d), U uniform in [0, 1] and d the number of input elements
    per sample, so that the density is uniform over the ball's volume.
    ε and α are in input units (8/255 and 2/255 for images in [0, 1] under L∞).
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
