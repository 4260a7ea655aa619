"""Results as the paper shows them: a printed table, JSON, CSV and PNG plots, written all at once."""
from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

from .experiment import ResultRow
from .metrics import ASR_DEFINITION

COLUMNS = ("Architecture", "Dataset", "Input", "T", "λ", "TE", "Attack", "ε", "Clean Acc.",
           "WB ASR STBP", "WB ASR RGA", "BB ASR STBP", "BB ASR RGA")


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _pair(values: dict[str, Optional[float]]) -> list[str]:
    """STBP and RGA ASR as percentages, the stronger of the two marked with ``*``."""
    stbp, rga = values.get("stbp"), values.get("rga")
    cells = [_percent(stbp), _percent(rga)]
    if stbp is not None and rga is not None and math.isfinite(stbp) and math.isfinite(rga) and stbp != rga:
        cells[int(rga > stbp)] += "*"
    return cells


def table_cells(row: ResultRow) -> list[str]:
    return [row.architecture, row.dataset, row.input, str(row.T), f"{row.lam:g}",
            "-" if row.time_extension == 1 else f"{row.time_extension}x", row.attack.upper(), f"{row.eps:.4g}",
            _percent(row.clean_accuracy), *_pair(row.white_box), *_pair(row.black_box)]


def format_table(rows: Sequence[ResultRow]) -> str:
    """A fixed-width text table like the paper's; ``*`` marks the stronger gradient of each pair."""
    cells = [list(COLUMNS)] + [table_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + f"\nASR in %: {ASR_DEFINITION}. WB/BB: white-box/black-box; * = stronger."


@contextlib.contextmanager
def atomic_path(path: Union[str, Path]) -> Iterator[Path]:
    """A temporary path beside ``path`` that is moved onto ``path`` (``os.replace``) when the block succeeds
    and removed when it fails or is interrupted: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN: no sample to measure on) replaced by None (JSON null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def to_json(document: Any) -> str:
    """Strict JSON (``allow_nan=False``): NaN and infinities are written as null."""
    return json.dumps(_json_safe(document), indent=2, allow_nan=False)


def _plot_sweep(path: Path, sweep: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for label, points in sweep["series"].items():
        ax.plot(sweep["x"], [100 * p for p in points], marker="o", label=label)
    ax.set_xlabel(sweep["x_label"])
    ax.set_ylabel("attack success rate (%)")
    ax.set_title(sweep["title"], fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(out_dir: Path, rows: Sequence[ResultRow], sweeps: dict[str, dict[str, Any]],
                  extra: Optional[dict[str, Any]] = None) -> list[Path]:
    """Write ``results.json``, ``results.csv`` and one ``<sweep>.png`` per sweep into ``out_dir``.

    Every file is made in a temporary folder first and moved in at the end, so a failure leaves
    nothing half-written in ``out_dir``. A sweep is ``{"x", "x_label", "title", "series": {label: ASRs}}``.
    """
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".sj-rga-", dir=out_dir))
    try:
        document = {"asr_definition": ASR_DEFINITION, "rows": [r.as_dict() for r in rows], "sweeps": sweeps,
                    **(extra or {})}
        (staging / "results.json").write_text(to_json(document))
        with open(staging / "results.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(table_cells(r) for r in rows)
        for name, sweep in sweeps.items():
            _plot_sweep(staging / f"{name}.png", sweep)
        written = []
        for item in sorted(staging.iterdir()):
            os.replace(item, out_dir / item.name)
            written.append(out_dir / item.name)
        return written
    except BaseException:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
