"""The ε-ball in pixel space (method §3), shared by PGD, APGD, SA-PGD and AutoAttack's final check: the norms,
per-sample sizes, the projection onto the ball and the steepest-ascent direction. Tensors are ``[B, ...]``."""
from __future__ import annotations

import torch

NORMS = ("Linf", "L2")
#: Floor of the per-sample normalisers, so that a zero vector gives a zero step instead of NaN.
TINY = 1e-12


def check_norm(norm: object) -> str:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return str(norm)


def per_sample(t: torch.Tensor) -> tuple[int, ...]:
    """The shape ``[B, 1, ..., 1]`` of a per-sample value that broadcasts against ``t``."""
    return (t.shape[0],) + (1,) * (t.dim() - 1)


def l2_norm(t: torch.Tensor) -> torch.Tensor:
    """‖t_b‖₂ per sample, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(dim=1).reshape(per_sample(t))


def mean_abs(t: torch.Tensor) -> torch.Tensor:
    """mean |t_b| per sample, shaped to broadcast against ``t``."""
    return t.flatten(1).abs().mean(dim=1).reshape(per_sample(t))


def into_ball(x: torch.Tensor, x_adv: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """``x_adv`` moved into the ε-ball around ``x``: δ clamped to [−ε, ε] per element (L∞), or rescaled to
    ‖δ‖₂ ≤ ε per sample (L2)."""
    delta = x_adv - x
    if norm == "Linf":
        return x + delta.clamp(-eps, eps)
    return x + delta * (eps / l2_norm(delta).clamp_min(TINY)).clamp(max=1.0)


def ascent_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """The steepest-ascent direction of unit norm: sign(∇) for L∞, ∇/‖∇‖₂ per sample for L2."""
    return grad.sign() if norm == "Linf" else grad / l2_norm(grad).clamp_min(TINY)
