"""Adversarial training's inner maximisation and losses (method §4): PGD-AT, FGSM-AT, TRADES.

- **PGD-AT** (Madry et al., ICLR 2018): minimise ``CE(f(x'), y)`` at the point ``x'`` found by L∞ PGD with a
  uniform random start in the ε-ball, ``steps`` steps of size ``alpha`` (default 2.5·ε/steps).
- **FGSM-AT with a random start** (Wong, Rice & Kolter, ICLR 2020): the same with one step of size
  ``alpha`` = 1.25·ε from a uniform random start, projected back onto the ε-ball ("fast is better than free").
- **TRADES** (Zhang et al., ICML 2019): minimise ``CE(f(x), y) + β·KL(p(x) ‖ p(x'))`` per sample, where ``x'``
  maximises ``KL(p(x) ‖ p(x'))`` by L∞ PGD from ``x + 0.001·N(0, 1)``; β = 6 by default (the paper's choice
  for CIFAR-10), ``alpha`` 2.5·ε/steps.

``f`` is the network's output averaged over T (logits ``[B, classes]``), ``p`` its softmax; ε and α are in
input units (pixel space [0, 1] for images: 8/255 on CIFAR, about 0.1 on digits). The inner maximisation
runs on an :class:`sj_rga.SNNClassifier` around the model: any gradient it offers (``'rga'`` by default, on
the fast path of method §1.5 where the model allows it) and BatchNorm/Dropout in eval mode, i.e. the model
as it will be evaluated and attacked. Only input gradients are taken there; the parameter update that follows
is BPTT with the model's own surrogate, in training mode (see :func:`sj_rga.training.train`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from .attacks import PGD
from .classifier import SNNClassifier
from .gradients import NAMES
from .validation import check_count, check_finite

#: ``none`` (clean training), ``fgsm`` (FGSM-AT with a random start), ``pgd`` (PGD-AT), ``trades`` (TRADES).
ADVERSARIAL_METHODS = ("none", "fgsm", "pgd", "trades")

#: TRADES' start: ``x + TRADES_START_SCALE · N(0, 1)`` (Zhang et al.'s code), then clipped to the bounds.
TRADES_START_SCALE = 0.001


@dataclass(frozen=True)
class AdversarialConfig:
    """What adversarial training does at every step (see the module docstring for the formulas).

    ``method``: one of :data:`ADVERSARIAL_METHODS`. ``eps``: radius of the L∞ ball in input units (required
    unless ``method='none'``). ``steps``: inner PGD steps (FGSM-AT: 1; PGD-AT and TRADES: 10 by default).
    ``alpha``: step size in input units (default 1.25·ε for FGSM-AT, 2.5·ε/steps otherwise). ``gradient``:
    the :class:`~sj_rga.SNNClassifier` gradient of the inner maximisation, one of :data:`sj_rga.gradients.NAMES`
    (``'stbp'``, ``'rga'``, ``'bptr'``, ``'hart'``, ``'pdsg'``, ``'assg'``; default ``'rga'``).
    ``beta``: TRADES' weight of the KL term. Unset values are filled in, so the object (and a checkpoint's
    record of it) states exactly what ran.
    """

    method: str = "none"
    eps: Optional[float] = None
    steps: Optional[int] = None
    alpha: Optional[float] = None
    gradient: str = "rga"
    beta: float = 6.0

    def __post_init__(self) -> None:
        if self.method not in ADVERSARIAL_METHODS:
            raise ValueError(f"adversarial method must be one of {', '.join(ADVERSARIAL_METHODS)}, got {self.method!r}")
        if self.gradient not in NAMES:
            raise ValueError(f"the inner maximisation's gradient must be one of {', '.join(NAMES)}, "
                             f"got {self.gradient!r}")
        beta = check_finite(self.beta, "beta (TRADES' KL weight)")
        if beta < 0:
            raise ValueError(f"beta (TRADES' KL weight) must be >= 0, got {beta}")
        object.__setattr__(self, "beta", beta)
        if self.method == "none":
            given = [name for name in ("eps", "steps", "alpha") if getattr(self, name) is not None]
            if given:
                raise ValueError(f"{', '.join(given)} given but the adversarial method is 'none' (clean training): "
                                 "choose fgsm, pgd or trades, or drop them")
            return
        if self.eps is None:
            raise ValueError(f"{self.method} adversarial training needs eps, the L∞ radius in input units "
                             "(e.g. 8/255 for CIFAR images in [0, 1], 0.1 for digits)")
        eps = check_finite(self.eps, "eps")
        if not eps > 0:
            raise ValueError(f"eps (the L∞ radius in input units) must be > 0, got {eps}")
        steps = self.steps if self.steps is not None else (1 if self.method == "fgsm" else 10)
        steps = check_count(steps, "steps (inner PGD steps)")
        if self.method == "fgsm" and steps != 1:
            raise ValueError(f"FGSM adversarial training takes exactly one step, got steps={steps}: "
                             "use method 'pgd' for several")
        if self.alpha is None:
            alpha = 1.25 * eps if self.method == "fgsm" else 2.5 * eps / steps
        else:
            alpha = check_finite(self.alpha, "alpha")
            if not alpha > 0:
                raise ValueError(f"alpha (the inner step size in input units) must be > 0, got {alpha}")
        object.__setattr__(self, "eps", eps)
        object.__setattr__(self, "steps", int(steps))
        object.__setattr__(self, "alpha", alpha)

    @property
    def active(self) -> bool:
        """True unless the method is ``'none'``."""
        return self.method != "none"


class _StartedPGD(PGD):
    """L∞ PGD whose random start ``delta`` is drawn by the caller: for the whole global batch, so that the
    ranks of a distributed run start each sample where one process would."""

    def __init__(self, classifier: SNNClassifier, config: AdversarialConfig, delta: torch.Tensor):
        super().__init__(classifier, config.eps, config.alpha, config.steps, random_start=True, norm="Linf")
        self.delta = delta

    def _random_delta(self, x: torch.Tensor) -> torch.Tensor:
        if self.delta.shape != x.shape:
            raise ValueError(f"the random start has shape {tuple(self.delta.shape)}, the batch {tuple(x.shape)}")
        return self.delta.to(device=x.device, dtype=x.dtype)


class _TradesPGD(_StartedPGD):
    """TRADES' inner maximisation: L∞ PGD ascending ``KL(p(x) ‖ p(x'))`` summed over the batch."""

    def __init__(self, classifier: SNNClassifier, config: AdversarialConfig, delta: torch.Tensor,
                 clean_probabilities: torch.Tensor):
        super().__init__(classifier, config, delta)
        self.clean_probabilities = clean_probabilities

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.kl_div(F.log_softmax(logits, dim=-1), self.clean_probabilities, reduction="sum")


def random_start(config: AdversarialConfig, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """The inner maximisation's starting offsets ``[B, ...]`` for a batch of ``shape``, on the CPU: uniform in
    ``[-ε, ε]`` (PGD-AT, FGSM-AT) or ``0.001·N(0, 1)`` (TRADES)."""
    if config.method == "trades":
        return TRADES_START_SCALE * torch.randn(shape, generator=generator)
    return (torch.rand(shape, generator=generator) * 2 - 1) * config.eps


def adversarial_examples(classifier: SNNClassifier, config: AdversarialConfig, images: torch.Tensor,
                         labels: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """The inner maximisation: ``x'`` in the ε-ball around ``images`` (and the classifier's bounds), from
    ``images + delta`` (see :func:`random_start`), following ``classifier``'s gradient.

    PGD-AT and FGSM-AT ascend the cross-entropy with ``labels``; TRADES ascends ``KL(p(x) ‖ p(x'))`` with
    ``p(x)`` the classifier's clean prediction. The model is left in the mode it was in.
    """
    if not config.active:
        raise ValueError("adversarial_examples needs an adversarial method (fgsm, pgd or trades), got 'none'")
    if config.method == "trades":
        with torch.no_grad():
            clean = F.softmax(classifier(images), dim=-1)
        attack: PGD = _TradesPGD(classifier, config, delta, clean)
    else:
        attack = _StartedPGD(classifier, config, delta)
    return attack(images, labels)


def adversarial_loss(config: AdversarialConfig, clean_logits: Optional[torch.Tensor],
                     adversarial_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample training loss ``[B]`` at the inner maximisation's point.

    PGD-AT, FGSM-AT: ``CE(f(x'), y)`` (``clean_logits`` unused, may be None). TRADES:
    ``CE(f(x), y) + β·KL(p(x) ‖ p(x'))``, both terms differentiated (as in Zhang et al.'s code).
    """
    if config.method == "trades":
        if clean_logits is None:
            raise ValueError("TRADES' loss needs the clean logits")
        kl = F.kl_div(F.log_softmax(adversarial_logits, dim=-1), F.log_softmax(clean_logits, dim=-1),
                      reduction="none", log_target=True).sum(-1)
        return F.cross_entropy(clean_logits, labels, reduction="none") + config.beta * kl
    if config.method in ("fgsm", "pgd"):
        return F.cross_entropy(adversarial_logits, labels, reduction="none")
    raise ValueError("adversarial_loss needs an adversarial method (fgsm, pgd or trades), got 'none'")
