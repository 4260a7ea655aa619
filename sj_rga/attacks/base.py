"""What every attack shares: argument checks, the loss, projection onto the ε-ball and the bounds."""
from __future__ import annotations

import abc

import torch
import torch.nn.functional as F

from ..classifier import SNNClassifier
from ..validation import check_label_range, check_labels


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

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy to ascend (untargeted) or its negative (targeted), summed over the batch."""
        ce = F.cross_entropy(logits, check_label_range(y, logits.shape[-1]), reduction="sum")
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
        y = check_labels(x, y)
        self.classifier.restart()
        return self.forward(x.detach(), y).detach()

    @abc.abstractmethod
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial inputs for a checked batch ``x`` and labels ``y``."""
