"""The estimators by name, in the order reports list them."""
from __future__ import annotations

from typing import Union

from .assg import ASSG
from .base import GradientEstimator
from .bptr import BPTR
from .hart import HART
from .pdsg import PDSG
from .rga import RGA
from .stbp import STBP

#: Name -> estimator class, with its defaults as published (method §2).
ESTIMATORS: dict[str, type[GradientEstimator]] = {cls.name: cls for cls in (STBP, RGA, BPTR, HART, PDSG, ASSG)}

#: The estimators' names: stbp, rga, bptr, hart, pdsg, assg.
NAMES: tuple[str, ...] = tuple(ESTIMATORS)


def estimator(gradient: Union[str, GradientEstimator]) -> GradientEstimator:
    """An estimator object from itself or its name (with the published defaults)."""
    if isinstance(gradient, GradientEstimator):
        return gradient
    if isinstance(gradient, str):
        cls = ESTIMATORS.get(gradient)
        if cls is None:
            raise ValueError(f"unknown gradient {gradient!r}: use one of {', '.join(NAMES)} or an estimator object "
                             "such as sj_rga.gradients.HART(gamma=0.5)")
        return cls()
    raise TypeError(f"gradient must be a name ({', '.join(NAMES)}) or an sj_rga.gradients estimator, "
                    f"got {type(gradient).__name__}")
