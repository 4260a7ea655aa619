"""What every attack shares: argument checks, the loss, projection onto the ε-ball and the bounds."""
from __future__ import annotations

import abc
import math
import numbers

import torch
import torch.nn.functional as F

from ..classifier import SNNClassifier


def check_eps(eps: object, name: str = "eps") -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"{name} must be a real number (in input units, e.g. 8/255), got {type(eps).__name__}")
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"{name} must be finite and >= 0 (in input units, e.g. 8/255), got {eps}")
    return float(eps)


def check_steps(steps: object) -> int:
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    return int(steps)


class Attack(abc.ABC):
    """Base of the package's attacks: ``atk(x, y)`` -> adversarial inputs in pixel space.

    ``x`` is a batch the classifier accepts; ``y`` holds class indices ``[B]`` (the true labels, or the
    target labels when ``targeted``). The classifier's model is left exactly as it was.
    """

    def __init__(self, classifier: SNNClassifier, targeted: bool = False):
        if not isinstance(classifier, SNNClassifier):
            raise TypeError(f"attacks take an sj_rga.SNNClassifier, got {type(classifier).__name__}")
        if not isinstance(targeted, bool):
            raise TypeError(f"targeted must be True or False, got {targeted!r}")
        self.classifier, self.targeted = classifier, targeted

    def check_labels(self, x: torch.Tensor, y: object) -> torch.Tensor:
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"labels must be a torch.Tensor of class indices, got {type(y).__name__}")
        if y.dtype in (torch.bool,) or y.is_floating_point() or y.is_complex():
            raise TypeError(f"labels must be integer class indices, got dtype {y.dtype}")
        if y.shape != (x.shape[0],):
            raise ValueError(f"labels must have shape [B] = ({x.shape[0]},), got {tuple(y.shape)}")
        return y.to(x.device)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy to ascend (untargeted) or its negative (targeted), summed over the batch."""
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= logits.shape[-1]):
            raise ValueError(f"labels must lie in [0, {logits.shape[-1]}) for this {logits.shape[-1]}-class model")
        ce = F.cross_entropy(logits, y, reduction="sum")
        return -ce if self.targeted else ce

    def input_gradient(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dLoss/dx for the current point, in pixel space (zero for a model whose output does not depend on x
        through autograd)."""
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = self.loss(self.classifier(x), y)
            grad = torch.autograd.grad(loss, x, allow_unused=True)[0] if loss.requires_grad else None
        return torch.zeros_like(x) if grad is None else grad

    def clip_to_bounds(self, x: torch.Tensor) -> torch.Tensor:
        low, high = self.classifier.bounds
        return x.clamp(min=low, max=high) if (low is not None or high is not None) else x

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.classifier.check_input(x)
        y = self.check_labels(x, y)
        self.classifier.restart()
        return self.forward(x.detach(), y).detach()

    @abc.abstractmethod
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial inputs for a checked batch ``x`` and labels ``y``."""
