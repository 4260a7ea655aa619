"""FGSM (Goodfellow et al., 2015): one signed-gradient step of size ε."""
from __future__ import annotations

import torch

from ..classifier import SNNClassifier
from ..validation import check_eps
from .base import Attack


class FGSM(Attack):
    """``x_adv = clip(x + ε · sign(∇x loss))``; ε in input units (8/255 for images in [0, 1])."""

    def __init__(self, classifier: SNNClassifier, eps: float = 8 / 255, targeted: bool = False):
        super().__init__(classifier, targeted)
        self.eps = check_eps(eps)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.clip_to_bounds(x + self.eps * self.input_gradient(x, y).sign())
