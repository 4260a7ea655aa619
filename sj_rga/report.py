"""Results as the paper shows them: a printed table, JSON, CSV and PNG plots, written all at once.

Everything here reads the gradient names from the rows, so any set of estimators (STBP, RGA, ...) is
reported. Every ASR is measured on the ``n`` test samples the target classifies correctly, so its binomial
standard error is ``sqrt(ASR (1 - ASR) / n)``; the stronger gradient of a pair is marked only where the
difference exceeds the standard error of the difference.
"""
from __future__ import annotations

import csv
import datetime
import io
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
#: Key columns named once under the table when every row has the same value.
SHARED_COLUMNS = ("Architecture", "Dataset", "Input", "T", "λ", "TE")
#: Tables and footnotes fit a terminal of this many columns (a wider table is split into blocks of columns).
TEXT_WIDTH = 100


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


def chance_warning(clean_accuracy: Optional[float], classes: int, samples: int) -> Optional[str]:
    """A warning when the clean accuracy on ``samples`` samples is within two binomial standard errors of
    guessing (``1/classes``): such a model has not learnt the task, and its ASR or robust accuracy say nothing.
    None otherwise."""
    if not _finite(clean_accuracy) or classes < 2 or samples < 1:
        return None
    chance = 1.0 / classes
    if clean_accuracy > chance + 2 * standard_error(chance, samples):
        return None
    return (f"the model's clean accuracy ({100 * clean_accuracy:.2f} % on {samples} samples) is at chance for "
            f"{classes} classes ({100 * chance:.0f} %): it has not learnt the task, so its ASR and robust accuracy "
            "mean nothing; check the checkpoint or weights, the data and how the model is fed (-T, --encoding, "
            "--mean/--std)")


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


def render_table(header: Sequence[str], lines: Sequence[Sequence[str]], keys: int = 1, rule_before_last: bool = False,
                 width: int = TEXT_WIDTH) -> str:
    """Fixed-width columns, a rule under the header (and above the last line with ``rule_before_last``),
    at most ``width`` characters a line: a wider table is split into blocks of columns, each repeating the
    first ``keys`` columns, one blank line apart. Every table sj-rga prints goes through here."""
    cells = [list(header)] + [list(line) for line in lines]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    blocks: list[list[int]] = []
    for column in range(keys, len(header)):
        used = sum(widths[i] + 2 for i in range(keys)) + sum(widths[i] + 2 for i in (blocks[-1] if blocks else []))
        if not blocks or used + widths[column] > width:
            blocks.append([])
        blocks[-1].append(column)
    text = []
    for block in blocks or [[]]:
        columns = list(range(keys)) + block
        rendered = ["  ".join(line[i].ljust(widths[i]) for i in columns).rstrip() for line in cells]
        rule = "  ".join("-" * widths[i] for i in columns)
        rendered.insert(1, rule)
        if rule_before_last:
            rendered.insert(len(rendered) - 1, rule)
        text.append("\n".join(rendered))
    return "\n\n".join(text)


def wrap_notes(notes: Sequence[str], width: int = TEXT_WIDTH) -> str:
    """Footnotes, each wrapped to ``width`` columns with its continuation lines indented."""
    return "\n".join(textwrap.fill(note, width=width, subsequent_indent="  ") for note in notes)


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
    return wrap_notes(notes)


def format_table(rows: Sequence[ResultRow]) -> str:
    """A fixed-width text table like the paper's, one ASR column per gradient and box, and its footnote.

    Settings shared by every row (:data:`SHARED_COLUMNS`: the model, data, input, T, λ, TE) are named once
    under the table instead of in a column. A table still wider than :data:`TEXT_WIDTH` becomes a numbered
    table of the settings and one table of ASRs per box (white-box, black-box) that refers to the rows by
    number.
    """
    gradients = gradients_of(rows)
    cells = [_key_cells(r) for r in rows]
    shared = [i for i, name in enumerate(KEY_COLUMNS) if name in SHARED_COLUMNS and len({c[i] for c in cells}) == 1]
    kept = [i for i in range(len(KEY_COLUMNS)) if i not in shared]
    key_names = [KEY_COLUMNS[i] for i in kept]
    keys = [[c[i] for i in kept] for c in cells]
    asr = {box: ([f"{BOXES[box]} ASR {g.upper()}" for g in gradients], [_box_cells(r, box, gradients) for r in rows])
           for box in BOXES}
    header = key_names + [name for box in BOXES for name in asr[box][0]]
    lines = [key + [cell for box in BOXES for cell in asr[box][1][i]] for i, key in enumerate(keys)]
    body = render_table(header, lines, keys=len(header), width=10**9)
    if max(len(line) for line in body.splitlines()) > TEXT_WIDTH:
        numbers = [str(i + 1) for i in range(len(rows))]
        blocks = [render_table(["#", *key_names], [[n, *key] for n, key in zip(numbers, keys)])]
        for box in BOXES:
            names, values = asr[box]
            blocks.append(f"{BOX_NAMES[box]} ASR (%), by row number\n"
                          + render_table(["#", *names], [[n, *v] for n, v in zip(numbers, values)]))
        body = "\n\n".join(blocks)
    every = wrap_notes(["Every row: " + ", ".join(f"{KEY_COLUMNS[i]} {cells[0][i]}" for i in shared) + "."]) \
        if shared and rows else ""
    return body + "\n" + "\n".join(part for part in (every, footnote(rows)) if part)


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


# ---------------------------------------------------------------------------- the robustness evaluation


def _cell_percent(value: Optional[float]) -> str:
    return "-" if not _finite(value) else f"{100 * value:.2f}"


def format_evaluation(result: dict[str, Any]) -> str:
    """The evaluation's table (``sj-rga evaluate``): one row per attack of the suite (cumulative) and the worst
    case; accuracies and ASR in %; the footnote wrapped to :data:`TEXT_WIDTH`."""
    header = ["Attack", "Attacked", "Broken", "Clean Acc.", "Robust Acc.", "ASR", "Time (s)"]
    lines = [[r["attack"], "-" if r["attacked"] is None else str(r["attacked"]), str(r["broken"]),
              _cell_percent(r["clean_accuracy"]), _cell_percent(r["robust_accuracy"]),
              _cell_percent(r["attack_success_rate"]), f"{r['seconds']:.1f}"]
             for r in result["rows"] + [result["worst_case"]]]
    notes = ["Broken: samples that attack broke (it runs only on those every earlier attack left robust). Robust "
             "accuracy and ASR: after that attack and every one before it; the worst case: after all of them.",
             f"{ASR_DEFINITION}."]
    return render_table(header, lines, rule_before_last=True) + "\n" + wrap_notes(notes)


#: The columns of an evaluation's results.csv: the setting, then one row per attack and the worst case, with
#: percentages in ``_pct`` columns as in the attack tables' CSV.
EVALUATION_CSV_COLUMNS = ("architecture", "dataset", "input", "T", "eps", "norm", "suite", "attack", "attacked",
                          "broken", "samples", "clean_accuracy_pct", "robust_accuracy_pct",
                          "attack_success_rate_pct", "seconds")


def evaluation_csv(result: dict[str, Any]) -> str:
    """``results.csv`` of an evaluation (:data:`EVALUATION_CSV_COLUMNS`; empty cells where there is no value)."""
    model, inputs = result.get("model") or {}, result.get("input") or {}
    setting = [model.get("name", ""), result.get("data", ""), inputs.get("encoding", ""), inputs.get("T", ""),
               result.get("eps", ""), result.get("norm", ""), result.get("suite", "")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EVALUATION_CSV_COLUMNS)
    for r in result["rows"] + [result["worst_case"]]:
        writer.writerow(setting + [r["attack"], "" if r["attacked"] is None else r["attacked"], r["broken"],
                                   result.get("samples", ""), _number(r["clean_accuracy"]),
                                   _number(r["robust_accuracy"]), _number(r["attack_success_rate"]),
                                   round(r["seconds"], 3)])
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------- the header


def run_header(command: Optional[str], device: Union[None, str, torch.device], *, seeds: dict[str, Any],
               batch_size: Optional[int], gradients: Sequence[str] = (),
               threads: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """What every results file of sj-rga starts with (``attack``, ``evaluate``, ``shuffle``, ``demo``): the
    command line; the environment (:func:`environment`: versions, device, machine, date; the threads and the
    load when the run started, :func:`sj_rga.threads.threads_record`; the number of processes of a torchrun
    job); the seeds; the batch size; and the parameters of each gradient estimator used (RGA's β and γ, HART's
    γ, ASSG's A, ...)."""
    from .distributed import world
    from .gradients import estimator
    from .threads import threads_record

    return {"command": command,
            "environment": {**environment(device), "threads": threads or threads_record(), "processes": world().size},
            "seeds": seeds, "batch_size": batch_size,
            "estimators": {name: estimator(name).hyperparameters() for name in gradients}}


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
    n = _constant(rows, "clean_correct")
    details.append(f"n={n}" if n else "n per point in results.csv")
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


#: Per gradient (in the order of :data:`sj_rga.gradients.NAMES`, then any other): a colour and a marker.
SERIES_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
                  "tab:gray", "tab:olive", "tab:cyan")
SERIES_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def series_styles(labels: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Matplotlib styles, one per series label (``"white-box RGA"``, ``"black-box STBP"``, ``"RGA"``), unique
    in colour, marker and line style together: a gradient keeps its colour and marker in every box; white-box
    series are solid lines with filled markers, black-box ones dashed with hollow markers."""
    from .gradients import NAMES

    gradients = list(NAMES) + [g for g in dict.fromkeys(label.split()[-1].lower() for label in labels)
                               if g not in NAMES]
    styles = {}
    for label in labels:
        index = gradients.index(label.split()[-1].lower())
        black = label.startswith(BOX_NAMES["black_box"])
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        styles[label] = {"color": colour, "marker": SERIES_MARKERS[index % len(SERIES_MARKERS)],
                         "linestyle": "--" if black else "-", "markerfacecolor": "white" if black else colour}
    return styles


def sweep_figure(sweep: dict[str, Any]):
    """A matplotlib Figure of ASR (%) against x with ± one standard error; the y-axis starts at 0; each
    series in its own colour, marker and line style (:func:`series_styles`); the settings in the title."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state is touched

    join, count = sweep.get("join", True), len(sweep["series"])
    fig = Figure(figsize=(7.8, 4.2) if count > 4 else (5.4, 3.9), layout="constrained")
    ax = fig.subplots()
    errors = sweep.get("standard_error", {})
    span = (max(sweep["x"]) - min(sweep["x"])) or 1.0
    styles = series_styles(list(sweep["series"]))
    for index, (label, points) in enumerate(sweep["series"].items()):
        y = [float("nan") if p is None else 100 * p for p in points]
        yerr = [0.0 if e is None or not math.isfinite(e) else 100 * e for e in errors.get(label, [0.0] * len(y))]
        shift = 0.0 if join else (index - (count - 1) / 2) * 0.015 * span  # separate points side by side
        style = {**styles[label], **({} if join else {"linestyle": "none"})}
        ax.errorbar([x + shift for x in sweep["x"]], y, yerr=yerr, capsize=3, label=label, **style)
    ax.set_xlabel(sweep["x_label"])
    ax.set_ylabel("attack success rate (%, ± 1 SE)")
    ax.set_ylim(0, 102)
    ax.set_title(sweep["title"], fontsize=9)
    ax.grid(alpha=0.3)
    if count > 4:  # beside the axes, where it hides no point
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    else:
        ax.legend(fontsize=7)
    return fig


def _plot_sweep(path: Path, sweep: dict[str, Any]) -> None:
    sweep_figure(sweep).savefig(path, dpi=120)


# ----------------------------------------------------------------------------------------------- files


def write_results(out_dir: Path, rows: Sequence[ResultRow], sweeps: dict[str, dict[str, Any]],
                  extra: Optional[dict[str, Any]] = None, device: Union[None, str, torch.device] = None,
                  header: Optional[dict[str, Any]] = None) -> list[Path]:
    """Write ``results.json``, ``results.csv`` and one ``<sweep>.png`` per sweep into ``out_dir``.

    Every file is made in a temporary folder first and moved in at the end, so a failure or Ctrl-C leaves
    nothing half-written in ``out_dir``. ``results.json`` holds ``header`` (:func:`run_header`; default
    :func:`environment` of ``device`` alone), the rows, the sweeps and ``extra`` (settings); it is strict JSON
    (NaN as null).
    A sweep is what :func:`sweep` returns.
    """
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".sj-rga-", dir=out_dir))
    gradients = gradients_of(rows)
    try:
        document = {**(header or {"environment": environment(device)}), "asr_definition": ASR_DEFINITION,
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
