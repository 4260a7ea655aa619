"""One row of the paper's results table: an attack, white-box and black-box, with each input gradient asked for
(all six of :data:`GRADIENTS` by default)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from .attacks import FGSM, PGD
from .classifier import SNNClassifier
from .gradients import NAMES
from .metrics import Data, evaluate

#: The estimators' names (``sj_rga.gradients.NAMES``): stbp, rga, bptr, hart, pdsg, assg.
GRADIENTS = NAMES
ATTACKS = ("fgsm", "pgd")


@dataclass(frozen=True)
class AttackSpec:
    """An attack's settings in input units: ``eps`` and PGD's ``steps`` and step ``alpha`` (default
    2.5·ε/steps, Madry et al.'s choice: the steps can cross the ball and come back)."""

    name: str
    eps: float
    steps: int = 10
    alpha: Optional[float] = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in ATTACKS:
            raise ValueError(f"attack must be one of {ATTACKS}, got {self.name!r}")

    @property
    def step_size(self) -> Optional[float]:
        """PGD's α in input units (the given one, else 2.5·ε/steps); None for FGSM (one step of ε)."""
        if self.name == "fgsm":
            return None
        return self.alpha if self.alpha is not None else 2.5 * self.eps / self.steps

    def build(self, classifier: SNNClassifier):
        if self.name == "fgsm":
            return FGSM(classifier, self.eps)
        return PGD(classifier, self.eps, self.step_size, self.steps, seed=self.seed)


@dataclass
class ResultRow:
    """A row shaped like the paper's table; ASRs are fractions in [0, 1] (None where not run, NaN where the
    target classifies no sample correctly).

    ``white_box_robust_accuracy``: per gradient, the target's accuracy on the examples of the white-box attack
    with that gradient alone (the worst case of that one attack, not over gradients: ``sj-rga evaluate`` reports
    that). ``steps``/``alpha``: PGD's steps and step size (None for FGSM); ``source``: what the black-box attacks
    were crafted on; ``samples``: test samples; ``clean_correct``: those the target classifies correctly,
    the samples each ASR is measured on (its binomial standard error is ``sqrt(ASR (1 - ASR) / clean_correct)``).
    """

    architecture: str
    dataset: str
    input: str
    T: int
    lam: float
    time_extension: int
    attack: str
    eps: float
    clean_accuracy: float
    white_box: dict[str, Optional[float]] = field(default_factory=dict)
    black_box: dict[str, Optional[float]] = field(default_factory=dict)
    white_box_robust_accuracy: dict[str, Optional[float]] = field(default_factory=dict)
    steps: Optional[int] = None
    alpha: Optional[float] = None
    source: Optional[str] = None
    samples: int = 0
    clean_correct: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def attack_row(target: SNNClassifier, source: Optional[SNNClassifier], spec: AttackSpec, data: Data, *,
               architecture: str, dataset: str, lam: float, time_extension: int = 1,
               gradients: tuple[str, ...] = GRADIENTS, batch_size: int = 256, device=None,
               progress: Optional[bool] = None, source_name: Optional[str] = None) -> ResultRow:
    """ASR on ``target`` of ``spec`` crafted on the target (white-box) and on ``source`` (black-box, skipped
    when None), for each gradient; crafting uses ``time_extension``·T steps, evaluation T. ``source_name``
    says what the source model is (recorded in the row)."""
    row = ResultRow(architecture, dataset, target.encoding, target.T, lam, time_extension, spec.name, spec.eps,
                    clean_accuracy=float("nan"), steps=spec.steps if spec.name == "pgd" else None,
                    alpha=spec.step_size, source=None if source is None else (source_name or "a source model"))
    for box, crafter in (("white_box", target), ("black_box", source)):
        for gradient in gradients:
            if crafter is None:
                getattr(row, box)[gradient] = None
                continue
            crafting = crafter.with_gradient(gradient).with_time_steps(crafter.T * time_extension)
            report = evaluate(target, spec.build(crafting), data, batch_size=batch_size, device=device,
                              progress=progress, description=f"{spec.name} {box} {gradient}")
            getattr(row, box)[gradient] = report.attack_success_rate
            if box == "white_box":
                row.white_box_robust_accuracy[gradient] = report.robust_accuracy
            row.clean_accuracy, row.samples, row.clean_correct = (report.clean_accuracy, report.samples,
                                                                  report.clean_correct)
    return row
