"""The standard robustness evaluation of a model as one resumable run: AutoAttack batch by batch, per-sample
results, the report (one row per attack of the suite plus the worst case), JSON and CSV.

The batches run through the evaluation engine (:func:`sj_rga.metrics.attack_records`, the loop of
:func:`sj_rga.evaluate`): with a run folder (:mod:`sj_rga.runs`) the finished batches are kept, and every
random draw comes from its sample's stream (:data:`SEEDS`), so a resumed run, a run with another batch size
or another number of ranks ends with the per-sample results of one uninterrupted process (method §3). Per
sample the run keeps its index in the data, label, ``clean_ok``, ``robust_ok`` and ``broken_by`` (the suite
attack that broke it, or -1).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

from .files import write_atomically, write_json
from .metrics import ASR_DEFINITION

RESULTS_FORMAT = "sj-rga-evaluation-1"
SEEDS = {"random_start": "per sample: derive_seed(seed + position in the suite, data-set index, 2) (sj_rga.seeding)",
         "poisson": "per sample: derive_seed(seed, data-set index, 1), for the classifier's Poisson spikes"}


def report(records: Sequence[dict[str, Any]], composition: Sequence[dict[str, Any]],
           batch_size: Optional[int] = None) -> dict[str, Any]:
    """From per-batch records: one row per attack of the suite (the samples it ran on and broke; robust
    accuracy and ASR after it and every earlier one: the worst case so far), the worst case (scored on
    the returned examples), the per-sample results, and the ``batch_size`` the data was cut into."""
    per_sample = {key: [v for r in records for v in r[source]] for key, source in
                  (("index", "indices"), ("label", "labels"), ("clean_ok", "clean_ok"), ("robust_ok", "robust_ok"),
                   ("broken_by", "broken_by"))}
    samples = len(per_sample["index"])
    clean_correct = sum(per_sample["clean_ok"])

    def row(name: str, broken: int, broken_so_far: int, robust: int, seconds: float,
            attacked: Optional[int]) -> dict[str, Any]:
        return {"attack": name, "attacked": attacked, "broken": broken, "clean_accuracy": clean_correct / samples,
                "robust_accuracy": robust / samples,
                "attack_success_rate": broken_so_far / clean_correct if clean_correct else float("nan"),
                "seconds": seconds}

    rows, broken_so_far = [], 0
    for i, entry in enumerate(composition):
        broken_here = sum(1 for b in per_sample["broken_by"] if b == i)
        broken_so_far += broken_here
        rows.append(row(entry["name"], broken_here, broken_so_far, clean_correct - broken_so_far,
                        sum(r["attack_seconds"][i] for r in records), sum(r["attacked"][i] for r in records)))
    robust = sum(per_sample["robust_ok"])
    broken = sum(1 for c, r in zip(per_sample["clean_ok"], per_sample["robust_ok"]) if c and not r)
    worst = row("worst case", broken, broken, robust, sum(r["seconds"] for r in records), None)
    return {"samples": samples, "clean_accuracy": worst["clean_accuracy"], "robust_accuracy": worst["robust_accuracy"],
            "attack_success_rate": worst["attack_success_rate"], "asr_definition": ASR_DEFINITION,
            "batch_size": batch_size, "rows": rows, "worst_case": worst, "per_sample": per_sample}


def write_report(folder: Union[str, Path], result: dict[str, Any]) -> tuple[Path, Path]:
    """``results.json`` (everything, NaN as null) and ``results.csv`` (:func:`sj_rga.report.evaluation_csv`),
    each written atomically."""
    from .report import evaluation_csv

    folder = Path(folder)
    return write_json(folder / "results.json", result), write_atomically(folder / "results.csv", evaluation_csv(result))
