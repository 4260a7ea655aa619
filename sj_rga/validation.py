"""Argument and label checks, in one place: each returns the checked value or raises an error that names the
argument, says what was wrong and what is expected (a TypeError for a wrong type, a ValueError for a wrong
value).

Attacks, estimators, adversarial training and the encodings import them from here. ε and α are in input
units (pixel space, e.g. 8/255 for images in [0, 1]); labels are class indices ``[B]``.
"""
from __future__ import annotations

import math
import numbers

import torch


def check_real(value: object, name: str) -> float:
    """``value`` as a float, or a TypeError naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def check_finite(value: object, name: str) -> float:
    """``value`` as a finite float (a TypeError for a non-number, a ValueError for ±∞ and NaN)."""
    number = check_real(value, name)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value}")
    return number


def check_range(value: object, name: str, low: float, high: float, *, low_open: bool, high_open: bool) -> float:
    """``value`` as a float inside the interval, or a ValueError that names the parameter and the interval."""
    number = check_real(value, name)
    above = number > low if low_open else number >= low
    below = number < high if high_open else number <= high
    if not (math.isfinite(number) and above and below):
        interval = f"{'(' if low_open else '['}{low:g}, {'∞' if math.isinf(high) else f'{high:g}'}" \
                   f"{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return number


def check_eps(eps: object, name: str = "eps") -> float:
    """A radius or step size in input units: a finite real number >= 0."""
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"{name} must be a real number (in input units, e.g. 8/255), got {type(eps).__name__}")
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"{name} must be finite and >= 0 (in input units, e.g. 8/255), got {eps}")
    return float(eps)


def check_count(value: object, name: str) -> int:
    """A count (steps, restarts, batch size, ...): an integer >= 1 (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_steps(steps: object) -> int:
    """An attack's iterations: :func:`check_count` named ``steps``."""
    return check_count(steps, "steps")


def check_seed(seed: object) -> int:
    """A random seed: an integer >= 0 (``bool`` is refused)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def check_labels(x: torch.Tensor, y: object) -> torch.Tensor:
    """Class indices ``[B]`` for the batch ``x`` (``B = x.shape[0]``), moved to ``x``'s device."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor of class indices, got {type(y).__name__}")
    if y.dtype in (torch.bool,) or y.is_floating_point() or y.is_complex():
        raise TypeError(f"labels must be integer class indices, got dtype {y.dtype}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape [B] = ({x.shape[0]},), got {tuple(y.shape)}")
    return y.to(x.device)


def check_label_range(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """``labels`` unchanged when every one lies in ``[0, classes)`` (the model's outputs), else a ValueError."""
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise ValueError(f"labels must lie in [0, {classes}) for this {classes}-class model")
    return labels
