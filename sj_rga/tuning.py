"""``tune_gradient``: choose HART's γ or ASSG's A by attack success rate on held-out data (method §2).

The authors of both estimators pick their hyper-parameter by grid search. Done on the test set, that
search would overstate the attack; this function scores each grid value on a split the caller names,
refuses one named ``test``, and records the split, the grid, every score and the choice.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

from .classifier import SNNClassifier
from .gradients import GradientEstimator, estimator
from .metrics import Data, evaluate

#: Tunable estimators: name -> (parameter, default grid as the authors searched it).
TUNABLE: dict[str, tuple[str, tuple[float, ...]]] = {
    "hart": ("gamma", tuple(round(0.10 + 0.05 * i, 2) for i in range(48))),  # 0.10 ... 2.45
    "assg": ("A", tuple(round(0.35 + 0.01 * i, 2) for i in range(15))),      # 0.35 ... 0.49
}

#: An attack factory: ``attack(classifier)`` -> ``atk(x, y)``, or an object with ``build(classifier)``
#: (:class:`sj_rga.experiment.AttackSpec`).
AttackFactory = Union[Callable[[SNNClassifier], Callable], Any]


@dataclass(frozen=True)
class TuningResult:
    """What :func:`tune_gradient` chose and why. ``estimator``: the tuned estimator (e.g. ``HART(gamma=0.55)``;
    pass it to ``classifier.with_gradient``); ``value``: its ``parameter``, the first grid value with the
    highest score; ``scores``: grid value -> ASR in [0, 1] on ``samples`` samples of the split ``split``."""

    estimator: GradientEstimator
    parameter: str
    value: float
    split: str
    samples: int
    scores: dict[float, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for a results file (scores keyed by the grid value as text)."""
        return {"gradient": self.estimator.name, "parameters": self.estimator.hyperparameters(),
                "parameter": self.parameter, "value": self.value, "split": self.split, "samples": self.samples,
                "scores": {f"{k:g}": v for k, v in self.scores.items()}}


def _builder(attack: AttackFactory) -> Callable[[SNNClassifier], Callable]:
    build = getattr(attack, "build", None)
    if callable(build):
        return build
    if callable(attack):
        return attack
    raise TypeError("attack must build an attack from a classifier: a callable attack(classifier) -> atk(x, y), "
                    f"or an object with build(classifier) such as sj_rga.experiment.AttackSpec; got {attack!r}")


def tune_gradient(classifier: SNNClassifier, gradient: Union[str, GradientEstimator], held_out: Data, *,
                  attack: AttackFactory, split: str, grid: Optional[Sequence[float]] = None,
                  target: Optional[SNNClassifier] = None, batch_size: int = 256,
                  progress: Optional[bool] = None) -> TuningResult:
    """Pick HART's ``gamma`` or ASSG's ``A`` by the attack success rate on held-out data.

    ``gradient``: ``'hart'`` or ``'assg'``, or an estimator of either class whose other parameters are kept
    (e.g. ``ASSG(relax=1.0)``). For every value of ``grid`` (default: the authors' search, γ = 0.10 … 2.45
    in steps of 0.05, A = 0.35 … 0.49 in steps of 0.01) the attack ``attack(classifier with that
    estimator)`` runs on ``held_out`` (an ``(x, y)`` pair in pixel space or a DataLoader) and is scored on
    ``target`` (default: ``classifier``, a white-box attack; a separately trained model for black-box).
    ``split`` names the held-out split for the record (e.g. ``'train-holdout'``); ``'test'`` is refused:
    never tune on the data you report on. Equal scores keep the earlier grid value.
    """
    if not isinstance(classifier, SNNClassifier):
        raise TypeError(f"classifier must be an sj_rga.SNNClassifier, got {type(classifier).__name__}")
    build = _builder(attack)
    base = estimator(gradient)
    if base.name not in TUNABLE:
        raise ValueError(f"tune_gradient tunes {' and '.join(TUNABLE)} (γ and A); {base.name!r} has no "
                         "hyper-parameter to search")
    if not isinstance(split, str) or not split.strip():
        raise ValueError("split must name the held-out split the values are chosen on, e.g. 'train-holdout'")
    if split.strip().lower() == "test":
        raise ValueError("tune_gradient refuses split='test': choose hyper-parameters on held-out training data, "
                         "never on the test set you report")
    parameter, default_grid = TUNABLE[base.name]
    values = [float(v) for v in (default_grid if grid is None else grid)]
    if not values:
        raise ValueError(f"grid must hold at least one value of {parameter}")
    candidates = [dataclasses.replace(base, **{parameter: v}) for v in values]  # checks every value now
    scores: dict[float, float] = {}
    samples = 0
    for value, candidate in zip(values, candidates):
        report = evaluate(target or classifier, build(classifier.with_gradient(candidate)), held_out,
                          batch_size=batch_size, progress=progress, description=f"{base.name} {parameter}={value:g}")
        scores[value], samples = report.attack_success_rate, report.samples
    best = max(range(len(values)), key=lambda i: (-1.0 if math.isnan(scores[values[i]]) else scores[values[i]], -i))
    return TuningResult(candidates[best], parameter, values[best], split.strip(), samples, scores)
