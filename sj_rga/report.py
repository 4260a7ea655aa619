"""Results as the paper shows them: a printed table, JSON, CSV and PNG plots, written all at once.

Everything here reads the gradient names from the rows, so any set of estimators (STBP, RGA, ...) is
reported. Every ASR is measured on the ``n`` test samples the target classifies correctly, so its binomial
standard error is ``sqrt(ASR (1 - ASR) / n)``; the stronger gradient of a pair is marked only where the
difference exceeds the standard error of the difference.
"""
from __future__ import annotations

import csv
import datetime
import math
import os
import platform
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch

from .experiment import ResultRow
from .files import to_json
from .metrics import ASR_DEFINITION
from .version import __version__

BOXES = {"white_box": "WB", "black_box": "BB"}
BOX_NAMES = {"white_box": "white-box", "black_box": "black-box"}
KEY_COLUMNS = ("Architecture", "Dataset", "Input", "T", "λ", "TE", "Attack", "ε", "α", "Clean Acc.", "n", "±")
#: More gradients than this and the white-box and black-box ASRs go into two tables.
GRADIENTS_PER_TABLE = 3
FOOTNOTE_WIDTH = 110


# ------------------------------------------------------------------------------------------ statistics


def gradients_of(rows: Sequence[ResultRow]) -> list[str]:
    """The gradient names in the rows, in the order they first appear."""
    names: dict[str, None] = {}
    for row in rows:
        for box in BOXES:
            names.update(dict.fromkeys(getattr(row, box)))
    return list(names)


def _finite(value: Optional[float]) -> bool:
    return value is not None and math.isfinite(value)


def standard_error(asr: Optional[float], n: int) -> float:
    """Binomial standard error ``sqrt(p (1 - p) / n)`` of a rate ``p`` measured on ``n`` samples (NaN if none)."""
    if not _finite(asr) or n <= 0:
        return float("nan")
    return math.sqrt(asr * (1.0 - asr) / n)


def stronger(values: dict[str, Optional[float]], n: int) -> Optional[str]:
    """The gradient with the highest ASR, if it leads the next by more than the standard error of the
    difference ``sqrt(se_1² + se_2²)`` (``n`` samples each); None when the lead is within the noise."""
    ranked = sorted(((v, g) for g, v in values.items() if _finite(v)), reverse=True)
    if len(ranked) < 2 or n <= 0:
        return None
    (best, name), (second, _) = ranked[0], ranked[1]
    noise = math.hypot(standard_error(best, n), standard_error(second, n))
    return name if best - second > noise else None


def row_standard_error(row: ResultRow) -> float:
    """The largest standard error among the row's ASRs (the ± printed beside it)."""
    errors = [standard_error(v, row.clean_correct) for box in BOXES for v in getattr(row, box).values()]
    errors = [e for e in errors if math.isfinite(e)]
    return max(errors) if errors else float("nan")


# ------------------------------------------------------------------------------------------------ text


def _percent(value: Optional[float]) -> str:
    return "-" if not _finite(value) else f"{100 * value:.2f}"


def attack_label(row: ResultRow) -> str:
    """``FGSM`` or ``PGD-<steps>``."""
    return row.attack.upper() if row.steps is None else f"{row.attack.upper()}-{row.steps}"


def _units(rows: Sequence[ResultRow]) -> str:
    kinds = {"event counts per frame" if r.input == "frames" else "pixel space, images in [0, 1]" for r in rows}
    return " or ".join(sorted(kinds))


def _key_cells(row: ResultRow) -> list[str]:
    return [row.architecture, row.dataset, row.input, str(row.T), f"{row.lam:g}",
            "-" if row.time_extension == 1 else f"{row.time_extension}x", attack_label(row), f"{row.eps:.4g}",
            "-" if row.alpha is None else f"{row.alpha:.4g}", _percent(row.clean_accuracy), str(row.clean_correct),
            _percent(row_standard_error(row))]


def _box_cells(row: ResultRow, box: str, gradients: Sequence[str]) -> list[str]:
    values = getattr(row, box)
    mark = stronger(values, row.clean_correct)
    return [_percent(values.get(g)) + ("*" if g == mark else "") for g in gradients]


def _render(header: list[str], lines: list[list[str]]) -> list[str]:
    cells = [header] + lines
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    text.insert(1, "  ".join("-" * w for w in widths))
    return text


def footnote(rows: Sequence[ResultRow]) -> str:
    """What the table's columns mean: units, TE, the attacks' steps and α, the black-box source, n, ±, *."""
    sources = sorted({r.source for r in rows if r.source is not None})
    if not sources:
        black_box = "BB (black-box): not run (no source model)."
    elif len(sources) == 1:
        black_box = f"BB (black-box): crafted on {sources[0]}, scored on the target."
    else:
        black_box = "BB (black-box): crafted on each row's source model (results.csv, column source)."
    notes = [
        f"ASR and accuracy in %. {ASR_DEFINITION}.",
        f"WB (white-box): crafted on the target itself. {black_box}",
        f"ε: the L∞ budget; α: PGD's step size; both in input units ({_units(rows)}).",
    ]
    attacks = []
    if any(r.steps is None for r in rows):
        attacks.append("FGSM: one step of size ε")
    if any(r.steps is not None for r in rows):
        attacks.append("PGD-k: k steps of size α from a random start in the ε-ball")
    notes.append("; ".join(attacks) + ".")
    notes.append("TE kx: crafted with k·T time steps (time extension), scored with T; -: crafted with T.")
    poisson = (" With Poisson input the clean predictions are random: n is that of the row's last evaluation."
               if any(r.input == "poisson" for r in rows) else "")
    notes.append("n: test samples the target classifies correctly, on which each ASR is measured; ±: the largest "
                 f"binomial standard error sqrt(p(1-p)/n) of the row's ASRs, in points.{poisson}")
    notes.append("*: the strongest gradient of WB or BB, marked only where it leads the next by more than the "
                 "standard error of the difference.")
    return "\n".join(textwrap.fill(note, width=FOOTNOTE_WIDTH, subsequent_indent="  ") for note in notes)


def format_table(rows: Sequence[ResultRow]) -> str:
    """A fixed-width text table like the paper's, one ASR column per gradient and box, and its footnote.

    With more than :data:`GRADIENTS_PER_TABLE` gradients the white-box and black-box ASRs are two tables.
    """
    gradients = gradients_of(rows)
    groups = [tuple(BOXES)] if len(gradients) <= GRADIENTS_PER_TABLE else [(box,) for box in BOXES]
    blocks = []
    for boxes in groups:
        header = list(KEY_COLUMNS) + [f"{BOXES[b]} ASR {g.upper()}" for b in boxes for g in gradients]
        lines = [_key_cells(r) + [c for b in boxes for c in _box_cells(r, b, gradients)] for r in rows]
        title = [] if len(groups) == 1 else [f"{BOX_NAMES[boxes[0]]} ASR (%)"]
        blocks.append("\n".join(title + _render(header, lines)))
    return "\n\n".join(blocks) + "\n" + footnote(rows)


# ------------------------------------------------------------------------------------------ JSON, CSV


def _number(value: Optional[float], scale: float = 100.0) -> Union[str, float]:
    """A CSV cell: the value scaled (to %), rounded, or empty where there is none."""
    return "" if not _finite(value) else round(scale * value, 4)


def csv_header(gradients: Sequence[str]) -> list[str]:
    header = ["architecture", "dataset", "input", "T", "lam", "time_extension", "attack", "steps", "eps", "alpha",
              "clean_accuracy_pct", "samples", "clean_correct"]
    for short in BOXES.values():
        for g in gradients:
            header += [f"{short.lower()}_asr_{g}_pct", f"{short.lower()}_asr_{g}_se_pct"]
        header.append(f"{short.lower()}_stronger")
    return header + ["source"]


def csv_cells(row: ResultRow, gradients: Sequence[str]) -> list[Any]:
    """Numbers in numeric columns (empty where none), marks in their own columns."""
    cells: list[Any] = [row.architecture, row.dataset, row.input, row.T, row.lam, row.time_extension, row.attack,
                        "" if row.steps is None else row.steps, row.eps, "" if row.alpha is None else row.alpha,
                        _number(row.clean_accuracy), row.samples, row.clean_correct]
    for box in BOXES:
        values = getattr(row, box)
        for g in gradients:
            cells += [_number(values.get(g)), _number(standard_error(values.get(g), row.clean_correct))]
        cells.append(stronger(values, row.clean_correct) or "")
    return cells + [row.source or ""]


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def spikingjelly_version() -> str:
    """The installed SpikingJelly release, e.g. ``2.0.0`` or ``0.0.0.0.14``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spikingjelly")
    except PackageNotFoundError:  # a source checkout on sys.path
        import spikingjelly

        return getattr(spikingjelly, "__version__", "unknown")


def versions() -> dict[str, str]:
    """The versions of Python, torch, SpikingJelly and sj-rga."""
    return {"python": platform.python_version(), "torch": str(torch.__version__),
            "spikingjelly": spikingjelly_version(), "sj_rga": __version__}


def environment(device: Union[None, str, torch.device] = None) -> dict[str, Any]:
    """What produced a result: :func:`versions`, the device, the machine, the time."""
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        compute = {"device": str(device), "gpu": torch.cuda.get_device_name(device), "cuda": torch.version.cuda}
    else:
        compute = {"device": str(device), "cuda": None}
    return {
        "versions": versions(),
        **compute,
        "machine": {"platform": platform.platform(), "cpu": _cpu_name(), "cpu_cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads()},
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


# ----------------------------------------------------------------------------------------------- plots


def _constant(rows: Sequence[ResultRow], name: str) -> Optional[Any]:
    values = {getattr(r, name) for r in rows}
    return values.pop() if len(values) == 1 else None


def sweep(rows: Sequence[ResultRow], x: str, x_label: str, boxes: Sequence[str] = tuple(BOXES),
          join: bool = True) -> dict[str, Any]:
    """A plot of ASR against the row attribute ``x`` (``"eps"``, ``"lam"``), one series per box and gradient.

    ``join``: draw lines between the points (only where they are one model under a varying attack; models
    trained separately, as in a λ sweep, are separate points). The title names everything the rows share:
    the attack with its steps, the model, the data, the input, T, λ or ε, the time extension.
    """
    attack = " / ".join(dict.fromkeys(f"{r.attack.upper()} ({r.steps or 1} step{'s' if r.steps else ''})"
                                      for r in rows))
    heading = f"{attack} on {_constant(rows, 'architecture') or 'several models'}"
    if len(boxes) == 1:
        heading = f"{BOX_NAMES[boxes[0]]} {heading}"
    details = [f"{_constant(rows, 'dataset')}", f"{_constant(rows, 'input')} input"]
    T = _constant(rows, "T")
    details.append(f"T={T}" if T is not None else "T varies")
    for name, label in (("lam", "λ"), ("eps", "ε")):
        value = _constant(rows, name)
        if name != x and value is not None:
            details.append(f"{label}={value:g}")
    alphas = {r.alpha for r in rows if r.alpha is not None}
    if len(alphas) == 1:
        details.append(f"α={alphas.pop():g}")
    elif alphas:
        details.append("α=2.5·ε/steps" if all(math.isclose(r.alpha, 2.5 * r.eps / r.steps) for r in rows
                                               if r.alpha is not None) else "α varies")
    te = _constant(rows, "time_extension")
    if te and te > 1:
        details.append(f"TE {te}x")
    series, errors = {}, {}
    for box in boxes:
        for g in gradients_of(rows):
            values = [getattr(r, box).get(g) for r in rows]
            if all(v is None for v in values):
                continue
            label = f"{BOX_NAMES[box]} {g.upper()}" if len(boxes) > 1 else g.upper()
            series[label] = values
            errors[label] = [standard_error(v, r.clean_correct) for v, r in zip(values, rows)]
    return {"x": [getattr(r, x) for r in rows], "x_label": x_label, "join": join,
            "title": f"{heading}\n{', '.join(details)}", "series": series, "standard_error": errors}


def sweep_figure(sweep: dict[str, Any]):
    """A matplotlib Figure of ASR (%) against x with ± one standard error; the y-axis starts at 0."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state is touched

    fig = Figure(figsize=(5.4, 3.9))
    ax = fig.subplots()
    errors = sweep.get("standard_error", {})
    join, count = sweep.get("join", True), len(sweep["series"])
    span = (max(sweep["x"]) - min(sweep["x"])) or 1.0
    for index, (label, points) in enumerate(sweep["series"].items()):
        y = [float("nan") if p is None else 100 * p for p in points]
        yerr = [0.0 if e is None or not math.isfinite(e) else 100 * e for e in errors.get(label, [0.0] * len(y))]
        shift = 0.0 if join else (index - (count - 1) / 2) * 0.015 * span  # separate points side by side
        ax.errorbar([x + shift for x in sweep["x"]], y, yerr=yerr, marker="o", capsize=3, label=label,
                    linestyle="-" if join else "none")
    ax.set_xlabel(sweep["x_label"])
    ax.set_ylabel("attack success rate (%, ± 1 SE)")
    ax.set_ylim(0, 102)
    ax.set_title(sweep["title"], fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if count > 4 else 1)
    fig.tight_layout()
    return fig


def _plot_sweep(path: Path, sweep: dict[str, Any]) -> None:
    sweep_figure(sweep).savefig(path, dpi=120)


# ----------------------------------------------------------------------------------------------- files


def write_results(out_dir: Path, rows: Sequence[ResultRow], sweeps: dict[str, dict[str, Any]],
                  extra: Optional[dict[str, Any]] = None, device: Union[None, str, torch.device] = None) -> list[Path]:
    """Write ``results.json``, ``results.csv`` and one ``<sweep>.png`` per sweep into ``out_dir``.

    Every file is made in a temporary folder first and moved in at the end, so a failure or Ctrl-C leaves
    nothing half-written in ``out_dir``. ``results.json`` holds the rows, the sweeps, ``extra`` (seeds,
    settings) and :func:`environment` (versions, ``device``, machine); it is strict JSON (NaN as null).
    A sweep is what :func:`sweep` returns.
    """
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".sj-rga-", dir=out_dir))
    gradients = gradients_of(rows)
    try:
        document = {"asr_definition": ASR_DEFINITION, "environment": environment(device),
                    "rows": [r.as_dict() for r in rows], "sweeps": sweeps, **(extra or {})}
        (staging / "results.json").write_text(to_json(document))
        with open(staging / "results.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(csv_header(gradients))
            writer.writerows(csv_cells(r, gradients) for r in rows)
        for name, spec in sweeps.items():
            _plot_sweep(staging / f"{name}.png", spec)
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
