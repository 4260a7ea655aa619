"""Robust accuracy over ε from one run: each sample's smallest breaking ε, by bisection over ε with a suite.

For every sample the suite (:class:`~sj_rga.attacks.AutoAttack`, any version) is run at ε_max, then
``bisections`` times at the middle of the interval [lo, hi] that still brackets the sample's smallest breaking
ε (broken at the middle: hi ← middle; not broken: lo ← middle). The sample's value is hi: the smallest ε at
which the suite broke it, within (ε_max / 2^bisections) of the true bracket's lower end; 0 for a sample
misclassified clean; ``inf`` for one the suite cannot break at ε_max. Robust accuracy at any ε ≤ ε_max is
the share of samples whose value exceeds ε (method §3). Chosen over a minimum-norm attack (FMN, Pintor et al.
NeurIPS 2021) because it reuses the suite, so the curve at the reported ε is the fixed-ε suite's own verdict
whenever that run's per-sample results are passed in (``known``), and elsewhere agrees with it within the
noise (``benchmarks/bench_masking.py curve``). It costs (bisections + 1) suite runs per sample.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import torch

from .attacks.autoattack import AutoAttack, SuiteAttack
from .classifier import SNNClassifier
from .files import write_atomically
from .seeding import current_indices, sample_indices
from .validation import check_count, check_eps


@dataclass
class RobustnessCurve:
    """Per sample: the smallest breaking ε found (``eps``, a tensor ``[N]``: 0 = misclassified clean, inf =
    not broken at ``eps_max``); and the settings of the search."""

    eps: torch.Tensor
    eps_max: float
    norm: str
    version: str
    bisections: int
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)

    def robust_accuracy(self, eps: float) -> float:
        """The share of samples whose smallest breaking ε exceeds ``eps`` (``0 ≤ eps ≤ eps_max``)."""
        if not 0 <= eps <= self.eps_max * (1 + 1e-9):
            raise ValueError(f"the curve covers ε in [0, {self.eps_max}], got {eps}")
        return float((self.eps > eps).float().mean())

    def points(self, count: int = 101) -> list[tuple[float, float]]:
        """(ε, robust accuracy) at ``count`` evenly spaced ε from 0 to ``eps_max``."""
        grid = torch.linspace(0, self.eps_max, count, dtype=torch.float64).tolist()
        return [(e, self.robust_accuracy(e)) for e in grid]

    def as_dict(self) -> dict[str, Any]:
        """Plain values (``inf`` written as None)."""
        return {"eps_max": self.eps_max, "norm": self.norm, "suite": self.version, "bisections": self.bisections,
                "seed": self.seed, "resolution": self.eps_max / 2 ** self.bisections, **self.settings,
                "per_sample_eps": [None if math.isinf(v) else v for v in self.eps.tolist()],
                "points": [{"eps": e, "robust_accuracy": a} for e, a in self.points(21)]}

    def plot(self, path: Union[str, Path], reported: Optional[tuple[float, float]] = None,
             title: str = "") -> Path:
        """A PNG of robust accuracy (%) against ε with the settings in the caption; ``reported``: the fixed-ε
        run's (ε, robust accuracy), marked."""
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure state is touched

        fig = Figure(figsize=(5.6, 4.2))
        ax = fig.subplots()
        xs, ys = zip(*self.points(201))
        ax.plot(xs, [100 * v for v in ys], color="tab:blue", drawstyle="steps-post",
                label="smallest breaking ε per sample (bisection)")
        if reported is not None:
            ax.plot([reported[0]], [100 * reported[1]], "s", color="tab:red", label="fixed-ε run")
        ax.set_xlabel(f"ε ({self.norm}, input units)")
        ax.set_ylabel("robust accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_xlim(0, self.eps_max)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
        ax.set_title(title or "Robust accuracy against ε", fontsize=10)
        fig.text(0.01, 0.01, f"AutoAttack {self.version}, {len(self.eps)} samples, {self.bisections} bisections "
                 f"(resolution {self.eps_max / 2 ** self.bisections:.3g}), seed {self.seed}", fontsize=7)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        path = Path(path)
        fig.savefig(path, dpi=120)
        return path


def _broken(target: SNNClassifier, eps: float, norm: str, version: str, seed: int,
            attacks: Optional[Sequence[SuiteAttack]], x: torch.Tensor, y: torch.Tensor,
            indices: torch.Tensor) -> torch.Tensor:
    """Per sample: the suite at ``eps`` broke it (each sample with its own data-set index)."""
    suite = AutoAttack(target, eps, norm, version, seed, attacks)
    with sample_indices(indices):
        suite(x, y)
    return ~suite.last_result.robust_ok.cpu()


def robustness_curve(target: SNNClassifier, x: torch.Tensor, y: torch.Tensor, eps_max: float, norm: str = "Linf",
                     version: str = "standard", bisections: int = 6, seed: int = 0,
                     attacks: Optional[Sequence[SuiteAttack]] = None,
                     known: Optional[tuple[float, torch.Tensor]] = None) -> RobustnessCurve:
    """Each sample's smallest breaking ε in [0, ``eps_max``] by bisection with ``AutoAttack(target, ε, norm,
    version, seed, attacks)`` (``x`` ``[N, ...]`` pixel space, ``y`` ``[N]``).

    ``known``: ``(ε, robust_ok [N])`` of a fixed-ε run of the same suite on these samples (0 < ε < eps_max): its
    verdicts replace the first test of each sample, so the curve at ε is that run's robust accuracy. The
    samples' data-set indices are those declared with :func:`sj_rga.seeding.sample_indices` (default 0 … N−1).

    Example::

        >>> curve = robustness_curve(clf, x, y, eps_max=16 / 255, version="fast")
        >>> curve.robust_accuracy(8 / 255), curve.plot("curve.png")
    """
    eps_max, bisections = check_eps(eps_max, "eps_max"), check_count(bisections, "bisections")
    if eps_max == 0:
        raise ValueError("eps_max must be > 0")
    AutoAttack(target, eps_max, norm, version, seed, attacks)  # a clear error now for bad settings
    indices = current_indices(x.shape[0])
    with torch.no_grad():
        clean_ok = (target(x).argmax(1) == y).cpu()
    n = x.shape[0]
    lo, hi = torch.zeros(n, dtype=torch.float64), torch.full((n,), math.inf, dtype=torch.float64)
    hi[~clean_ok] = 0.0
    open_ = clean_ok.clone()  # samples whose bracket is still searched
    top = clean_ok.clone()     # samples still to be tested at eps_max
    if known is not None:
        eps, robust_ok = known
        if not 0 < eps < eps_max:
            raise ValueError(f"the known run's ε must lie in (0, eps_max = {eps_max}), got {eps}")
        robust_ok = torch.as_tensor(robust_ok, dtype=torch.bool).cpu()
        lo[clean_ok & robust_ok] = eps
        hi[clean_ok & ~robust_ok] = eps
        top = clean_ok & robust_ok
    rows = top.nonzero()[:, 0]
    if rows.numel():
        broken = _broken(target, eps_max, norm, version, seed, attacks, x[rows], y[rows], indices[rows])
        hi[rows[broken]] = eps_max
        open_[rows[~broken]] = False  # robust at eps_max: inf
    for _ in range(bisections):
        middle = (lo + hi) / 2
        for value in torch.unique(middle[open_]).tolist():
            rows = (open_ & (middle == value)).nonzero()[:, 0]
            broken = _broken(target, value, norm, version, seed, attacks, x[rows], y[rows], indices[rows])
            hi[rows[broken]], lo[rows[~broken]] = value, value
    return RobustnessCurve(hi, eps_max, norm, version, bisections, seed)


def curve_of_run(target: SNNClassifier, data: Iterable[tuple[torch.Tensor, torch.Tensor]], result: dict[str, Any],
                 eps_max: float, bisections: int, folder: Union[str, Path],
                 device: Union[None, str, torch.device] = None) -> dict[str, Any]:
    """The curve of an ``sj-rga evaluate`` run (``result``: its report, with per-sample results in data order):
    every sample of ``data`` bisected with the run's suite, the run's verdicts at its ε as the first test;
    ``eps_curve.csv`` (index, label, smallest breaking ε; empty for none up to ``eps_max``) and
    ``eps_curve.png`` written to ``folder``. Returns the curve's plain values for results.json."""
    xs, ys = zip(*data)
    x, y = torch.cat(xs), torch.cat(ys)
    if device is not None:
        x, y = x.to(device), y.to(device)
    per_sample = result["per_sample"]
    with sample_indices(per_sample["index"]):
        curve = robustness_curve(target, x, y, eps_max, result["norm"], result["suite"], bisections, result["seed"],
                                 known=(result["eps"], torch.tensor(per_sample["robust_ok"])))
    folder = Path(folder)
    rows = ["index,label,smallest_eps"] + [f"{i},{label},{'' if math.isinf(e) else e}" for i, label, e in
                                           zip(per_sample["index"], per_sample["label"], curve.eps.tolist())]
    write_atomically(folder / "eps_curve.csv", "\n".join(rows) + "\n")
    model = result.get("model", {})
    name = model.get("name") or model.get("factory") or "model"
    curve.plot(folder / "eps_curve.png", (result["eps"], result["robust_accuracy"]),
               title=f"{name} on {result.get('data', 'data')}: robust accuracy against ε")
    return curve.as_dict()
