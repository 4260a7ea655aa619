"""AutoAttack for SNNs: a fixed suite of (gradient, optimiser) attacks run in sequence, per-sample worst case.

Croce & Hein's discipline (ICML 2020; method §3): one parameter-free suite that everyone runs the same
way; each attack runs only on the samples that every earlier attack failed to break; a sample is robust
only if every attack fails on it; and the result is checked (every perturbation inside the ε-ball and
the bounds, no NaN). For SNNs the suite varies the input gradient (method §2) as well as the optimiser.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import torch

from ..classifier import SNNClassifier
from ..seeding import current_indices, sample_indices
from ..validation import check_count, check_eps, check_label_range, check_seed
from .apgd import APGD, APGDT
from .ball import check_norm, l2_norm
from .base import Attack
from .sapgd import SAPGD
from .square import Square

OPTIMISERS = ("apgd-ce", "apgd-dlr", "apgd-t", "sapgd", "square")
#: The optimisers that use no gradient (their entry's ``gradient`` is ``NO_GRADIENT``).
GRADIENT_FREE = ("square",)
NO_GRADIENT = "none"
VERSIONS = ("standard", "full", "fast", "rand", "custom")
#: Slack of the final check, for rounding in float32 pixel arithmetic.
CHECK_TOLERANCE = 1e-5


@dataclass(frozen=True)
class SuiteAttack:
    """One attack of a suite: an optimiser driven by one gradient estimator.

    ``optimiser``: ``'apgd-ce'``, ``'apgd-dlr'`` (:class:`~.apgd.APGD` with that loss), ``'apgd-t'``
    (:class:`~.apgd.APGDT` over ``target_classes`` classes), ``'sapgd'`` (:class:`~.sapgd.SAPGD`,
    cross-entropy) or ``'square'`` (:class:`~.square.Square`, margin loss, ``steps`` queries, no gradient).
    ``gradient``: an estimator name the classifier's ``with_gradient`` accepts (``'none'`` for Square).
    ``eot``: Poisson samples averaged per gradient, or per score for Square (only for Poisson input).
    """

    optimiser: str
    gradient: str
    steps: int
    restarts: int = 1
    eot: int = 1
    target_classes: int = 9

    def __post_init__(self) -> None:
        if self.optimiser not in OPTIMISERS:
            raise ValueError(f"optimiser must be one of {OPTIMISERS}, got {self.optimiser!r}")
        for name in ("steps", "restarts", "eot", "target_classes"):
            check_count(getattr(self, name), name)
        if (self.optimiser in GRADIENT_FREE) != (self.gradient == NO_GRADIENT):
            raise ValueError(f"gradient={NO_GRADIENT!r} goes with the gradient-free optimisers {GRADIENT_FREE} "
                             f"(and only with them), got {self.optimiser!r} with {self.gradient!r}")

    @property
    def name(self) -> str:
        if self.optimiser in GRADIENT_FREE:
            return f"{self.optimiser}[{self.steps}]"
        return f"{self.optimiser}[{self.gradient}]"

    @property
    def gradients(self) -> tuple[str, ...]:
        """The estimators: one, or several joined by '+' (an ensemble of normalised gradients); none for
        Square."""
        return () if self.optimiser in GRADIENT_FREE else tuple(self.gradient.split("+"))

    def build(self, classifier: SNNClassifier, eps: float, norm: str, seed: int,
              ensemble: Sequence[SNNClassifier] = ()) -> Attack:
        """The attack on ``classifier`` (already switched to this entry's first gradient and EOT), with the
        ``ensemble`` members (the other gradients) added."""
        if self.optimiser == "square":
            return Square(classifier, eps, norm, queries=self.steps, seed=seed)
        if self.optimiser == "apgd-t":
            return APGDT(classifier, eps, norm, self.steps, self.target_classes, self.restarts, seed=seed,
                         ensemble=ensemble)
        if self.optimiser == "sapgd":
            return SAPGD(classifier, eps, norm, self.steps, self.restarts, seed=seed, ensemble=ensemble)
        return APGD(classifier, eps, norm, self.steps, self.restarts, loss=self.optimiser[5:], seed=seed,
                    ensemble=ensemble)

    def as_dict(self) -> dict:
        return {"name": self.name, **asdict(self)}


#: Square's queries per sample: in the standard suite, a budget that keeps its cost per robust sample within
#: 1.5x the gradient attacks' (measured on VGG-11, ``benchmarks/bench_masking.py``); in the full suite,
#: AutoAttack's 5000.
SQUARE_QUERIES = {"standard": 800, "full": 5000}

#: The suites, chosen by measurement on held-out data (``benchmarks/bench_suite.py select``; the figures and
#: the reasons are in benchmarks/RESULTS.md, "The standard robustness evaluation"). ASSG's adaptive
#: gradient drives the strongest attacks; random restarts of APGD-CE add more than any other estimator;
#: APGD-CE with the model's own surrogate (STBP) closes the standard suite as insurance for models
#: where ASSG's surrogate does not fit.
SUITES: dict[str, tuple[SuiteAttack, ...]] = {
    "standard": (
        SuiteAttack("apgd-ce", "assg", 100, restarts=3),
        SuiteAttack("apgd-t", "assg", 100, target_classes=3),
        SuiteAttack("sapgd", "assg", 300),
        SuiteAttack("apgd-dlr", "assg", 100),
        SuiteAttack("apgd-ce", "stbp", 100),
        SuiteAttack("square", NO_GRADIENT, SQUARE_QUERIES["standard"]),
    ),
    "fast": (
        SuiteAttack("apgd-ce", "assg", 20),
        SuiteAttack("apgd-ce", "hart", 20),
    ),
    "rand": (
        SuiteAttack("apgd-ce", "assg", 50, eot=10),
        SuiteAttack("apgd-ce", "rga", 50, eot=10),
        SuiteAttack("apgd-dlr", "assg", 50, eot=10),
    ),
}
SUITES["full"] = SUITES["standard"][:-1] + (SuiteAttack("square", NO_GRADIENT, SQUARE_QUERIES["full"]),)


@dataclass
class SuiteResult:
    """Per sample of one ``atk(x, y)`` call: ``clean_ok`` (classified correctly without attack) and
    ``broken_by`` (index into the suite of the attack that first broke it; -1 if none did or the sample
    was misclassified clean). Per attack: ``attacked`` (samples it ran on) and ``seconds``."""

    clean_ok: torch.Tensor
    broken_by: torch.Tensor
    attacked: list[int]
    seconds: list[float]

    @property
    def robust_ok(self) -> torch.Tensor:
        return self.clean_ok & (self.broken_by < 0)


@dataclass
class AttackBreakdown:
    """What one attack of the suite did over the calls since the last reset."""

    name: str
    attacked: int = 0
    broken: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _twins(classifier: SNNClassifier, entry: SuiteAttack) -> list[SNNClassifier]:
    """The classifier with each of the entry's gradients (a gradient-free entry: the classifier's own); with the
    entry's EOT if it sets one (else the classifier's)."""
    eot = entry.eot if entry.eot > 1 else classifier.eot
    return [classifier.replace(gradient=gradient, eot=eot) for gradient in entry.gradients or (classifier.estimator,)]


class AutoAttack(Attack):
    """The standard SNN robustness evaluation: ``atk(x, y)`` -> the per-sample worst case over a suite
    (Croce & Hein's AutoAttack discipline, ICML 2020; method §3).

    ``version``: ``'standard'`` (the report, for deterministic input: gradient attacks, then Square),
    ``'full'`` (the same with AutoAttack's 5000 Square queries), ``'fast'`` (a cheap screen:
    an upper bound on robust accuracy, not a report), ``'rand'`` (for Poisson input: EOT over spike
    samples; refused on a deterministic classifier), or ``'custom'`` with ``attacks`` a sequence of
    :class:`SuiteAttack`. The suites are in :data:`SUITES`. Attack i runs with seed ``seed + i``, only on
    the samples still classified correctly after attacks 0 … i−1; a sample misclassified clean is not
    attacked. Returned per sample: the first adversarial example found, else the input itself. The
    classifier's model is left as it was. A sample is robust only if every attack fails on it::

        robust(x, y) = [f(x) = y] · Π_i [f(A_i(x, y)) = y]

    After a call, :attr:`last_result` holds the per-sample outcome (:class:`SuiteResult`) and
    :attr:`breakdown` each attack's count of broken samples and seconds, summed over the calls since
    construction or :meth:`reset_breakdown`. :func:`sj_rga.evaluate` with this attack gives the
    worst-case ASR and robust accuracy. Every call ends with AutoAttack's own check: each returned point
    lies inside the ε-ball (``norm``) and the classifier's bounds and holds no NaN (RuntimeError if not).

    Distance measure: L∞ or L2.

    Arguments:
        classifier (SNNClassifier): the model to attack, as :class:`sj_rga.SNNClassifier` feeds it (T, encoding,
            normalisation, bounds) with its input-gradient estimator (``gradient=``).
        eps (float): radius ε of the ball, in input units (pixel space: 8/255 for images in [0, 1]). (Default: 8/255)
        norm (str): ``'Linf'`` or ``'L2'``, the ball's norm. (Default: ``'Linf'``)
        version (str): ``'standard'``, ``'fast'``, ``'rand'`` or ``'custom'``. (Default: ``'standard'``)
        seed (int): attack i of the suite runs with seed ``seed + i``. (Default: 0)
        attacks (sequence of SuiteAttack or None): the suite, with ``version='custom'`` only. (Default: None)

    Shape:
        - x: a batch the classifier accepts, in pixel space: images ``[B, C, H, W]`` within the classifier's
          ``bounds`` (e.g. [0, 1]), or event frames ``[B, T, C, H, W]``; the classifier encodes it to the
          time-major network input ``[T, B, ...]``.
        - y: ``[B]`` integer class indices in [0, classes): the true labels.
        - output: the adversarial inputs, shaped like ``x``, inside the ε-ball around ``x`` and the bounds.

    Examples::

        >>> classifier = sj_rga.SNNClassifier(model, T=8)
        >>> attack = sj_rga.attacks.AutoAttack(classifier, eps=8 / 255, norm="Linf", version="standard")
        >>> x_adv = attack(images, labels)
        >>> robust = attack.last_result.robust_ok    # [B] bool: correct, and no attack broke it
    """

    def __init__(self, classifier: SNNClassifier, eps: float = 8 / 255, norm: str = "Linf",
                 version: str = "standard", seed: int = 0, attacks: Optional[Sequence[SuiteAttack]] = None):
        super().__init__(classifier, targeted=False)
        self.eps, self.norm, self.seed = check_eps(eps), check_norm(norm), check_seed(seed)
        if version not in VERSIONS:
            raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
        if (version == "custom") != (attacks is not None):
            raise ValueError("attacks=[SuiteAttack, ...] goes with version='custom' (and only with it)")
        suite = tuple(attacks) if attacks is not None else SUITES[version]
        if not suite or not all(isinstance(a, SuiteAttack) for a in suite):
            raise TypeError("attacks must be a non-empty sequence of sj_rga.attacks.SuiteAttack")
        random_input = classifier.encoding == "poisson"
        if version == "rand" and not random_input:
            raise ValueError(f"version='rand' is for random (Poisson) input; this classifier's "
                             f"{classifier.encoding!r} input is deterministic: use version='standard'")
        if random_input and version in ("standard", "full", "fast"):
            warnings.warn("the classifier's Poisson input is random: version='rand' averages gradients over "
                          "spike samples (EOT) and is the evaluation meant for it", stacklevel=2)
        if not random_input and any(a.eot > 1 for a in suite):
            raise ValueError("eot > 1 in a suite attack needs a classifier with Poisson input")
        self.version, self.attacks = version, suite
        self._crafters = [_twins(classifier, a) for a in suite]
        self.last_result: Optional[SuiteResult] = None
        self.breakdown: list[AttackBreakdown] = []
        self.reset_breakdown()

    def reset_breakdown(self) -> None:
        """Zero the per-attack counts and seconds."""
        self.breakdown = [AttackBreakdown(a.name) for a in self.attacks]

    def composition(self) -> list[dict]:
        """The suite in order, as plain values (for reports)."""
        return [{**a.as_dict(), "seed": self.seed + i} for i, a in enumerate(self.attacks)]

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.classifier(x).argmax(-1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            logits = self.classifier(x)
        check_label_range(y, logits.shape[-1])
        clean_ok = logits.argmax(-1) == y
        indices = current_indices(x.shape[0])
        broken_by = torch.full_like(y, -1)
        x_adv, robust = x.clone(), clean_ok.clone()
        attacked, seconds = [], []
        for i, (entry, crafter) in enumerate(zip(self.attacks, self._crafters)):
            todo = robust.nonzero()[:, 0]
            attacked.append(int(todo.numel()))
            start = time.perf_counter()
            if todo.numel():
                with sample_indices(indices[todo.cpu()]):  # the attacked rows keep their samples' streams
                    attack = entry.build(crafter[0], self.eps, self.norm, self.seed + i, crafter[1:])
                    candidate = attack(x[todo], y[todo])
                    self.check(x[todo], candidate, entry.name)
                    fooled = self._predict(candidate) != y[todo]
                hit = todo[fooled]
                x_adv[hit], broken_by[hit], robust[hit] = candidate[fooled], i, False
            seconds.append(time.perf_counter() - start)
            tally = self.breakdown[i]
            tally.attacked += attacked[-1]
            tally.broken += int((broken_by == i).sum())
            tally.seconds += seconds[-1]
        self.check(x, x_adv)
        self.last_result = SuiteResult(clean_ok, broken_by, attacked, seconds)
        return x_adv

    def check(self, x: torch.Tensor, x_adv: torch.Tensor, name: str = "AutoAttack") -> None:
        """AutoAttack's check: no NaN, every perturbation inside the ε-ball and the bounds (RuntimeError)."""
        if not bool(torch.isfinite(x_adv).all()):
            raise RuntimeError(f"{name} produced NaN or inf inputs; please report this as a bug")
        delta = (x_adv - x).flatten(1)
        size = delta.abs().amax(1) if self.norm == "Linf" else l2_norm(delta)[:, 0]
        if bool((size > self.eps * (1 + CHECK_TOLERANCE) + CHECK_TOLERANCE).any()):
            raise RuntimeError(f"{name} produced a perturbation of {self.norm} size {float(size.max()):.6g} "
                               f"> ε = {self.eps:.6g}; please report this as a bug")
        low, high = self.classifier.bounds
        if (low is not None and float(x_adv.min()) < low - CHECK_TOLERANCE) or \
                (high is not None and float(x_adv.max()) > high + CHECK_TOLERANCE):
            raise RuntimeError(f"{name} left the input bounds {self.classifier.bounds}; please report this as a bug")
