"""Attacks on an :class:`sj_rga.SNNClassifier`, in pixel space: ``atk(x, y)`` -> adversarial inputs.

The gradient they follow is the classifier's (``'stbp'`` or ``'rga'``). For black-box attacks, build
the attack on a source classifier and evaluate its examples on the target (:func:`sj_rga.evaluate`).
torchattacks' attacks take an ``SNNClassifier`` directly, as they take any ``nn.Module``.
"""
from .base import Attack
from .fgsm import FGSM
from .pgd import PGD

__all__ = ["Attack", "FGSM", "PGD"]
