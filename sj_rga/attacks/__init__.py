"""Attacks on an :class:`sj_rga.SNNClassifier`, in pixel space: ``atk(x, y)`` -> adversarial inputs.

The gradient they follow is the classifier's estimator. For black-box attacks, build the attack on a
source classifier and evaluate its examples on the target (:func:`sj_rga.evaluate`). torchattacks'
attacks take an ``SNNClassifier`` directly, as they take any ``nn.Module``. :class:`AutoAttack` is the
standard robustness evaluation: the per-sample worst case over a fixed suite of gradients and optimisers,
and the gradient-free :class:`Square`.
"""
from .apgd import APGD, APGDT
from .autoattack import SUITES, AttackBreakdown, AutoAttack, SuiteAttack, SuiteResult
from .base import Attack
from .fgsm import FGSM
from .pgd import PGD
from .sapgd import SAPGD
from .square import Square

__all__ = ["Attack", "FGSM", "PGD", "APGD", "APGDT", "SAPGD", "AutoAttack", "SuiteAttack", "SuiteResult",
           "AttackBreakdown", "SUITES", "Square"]
