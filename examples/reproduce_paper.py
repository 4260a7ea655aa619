"""Rerun the rows of the RGA paper's results table and print the measured ASRs beside the poster's.

Each row of ``paper_rows.json`` names an architecture, data set, input encoding, T, leak λ, time
extension and attack; the poster's clean accuracy and white-/black-box ASRs (STBP and RGA, in %) are
copied into it, with the attack budgets this script assumes (the poster does not give them).

Every row needs a target and a source checkpoint (written by ``sj-rga train``) in ``--checkpoint-dir``,
named ``<architecture>-<dataset>-<input>-T<T>-lam<λ>.pt`` and ``...-source.pt``, and a data root per data
set (``--data-root cifar10=~/data``). A missing one ends the script with a message that names it and the
``sj-rga train`` command that writes it.

    python examples/reproduce_paper.py --checkpoint-dir ckpt --data-root cifar10=~/data --rows 1,3
    python examples/reproduce_paper.py --check      # end to end on synthetic files and tiny models
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from sj_rga.checkpoints import classifier_from_meta, load_checkpoint
from sj_rga.cli import parse_eps
from sj_rga.data import load_dataset
from sj_rga.data.synthetic import write_cifar, write_cifar10_dvs
from sj_rga.experiment import AttackSpec, ResultRow, attack_row
from sj_rga.metrics import ASR_DEFINITION
from sj_rga.training import TrainConfig, train_model

CONFIG = Path(__file__).with_name("paper_rows.json")

#: What a data root holds, for error messages.
ROOT_CONTENTS = {"cifar10": "cifar-10-batches-py/", "cifar100": "cifar-100-python/",
                 "cifar10dvs": "SpikingJelly's events_np/ or download/"}

#: The source model of a black-box attack is trained like the target, with this seed (the target: 0).
SOURCE_SEED = 1

#: The poster's table compares these two gradients (sj_rga.experiment.GRADIENTS has every estimator).
PAPER_GRADIENTS = ("stbp", "rga")


class SetupError(Exception):
    """Something the user passes is missing or does not fit; the message says what to pass."""


@dataclass(frozen=True)
class ModelKey:
    """What identifies a trained model of the table: one target and one source checkpoint each."""

    architecture: str
    dataset: str
    input: str
    T: int
    lam: float

    def file_name(self, source: bool = False) -> str:
        suffix = "-source" if source else ""
        return f"{self.architecture}-{self.dataset}-{self.input}-T{self.T}-lam{self.lam:g}{suffix}.pt"

    def train_command(self, checkpoint_dir: str, source: bool) -> str:
        return (f"sj-rga train --data {self.dataset} --data-root <{self.dataset} root> --model {self.architecture} "
                f"--lam {self.lam:g} -T {self.T} --encoding {self.input} --seed {SOURCE_SEED if source else 0} "
                f"--out {Path(checkpoint_dir) / self.file_name(source)}")


def model_key(row: dict[str, Any]) -> ModelKey:
    return ModelKey(row["architecture"], row["dataset"], row["input"], int(row["T"]), float(row["lam"]))


def load_config(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SetupError(f"cannot read the row config {path}: {err}") from err


def select_rows(rows: list[dict[str, Any]], spec: Optional[str]) -> list[tuple[int, dict[str, Any]]]:
    """``(1-based number, row)`` pairs for ``spec`` (``"1,3,5"``; None: all rows)."""
    if spec is None:
        return list(enumerate(rows, 1))
    try:
        numbers = [int(part) for part in spec.split(",")]
    except ValueError as err:
        raise SetupError(f"--rows takes 1-based row numbers like 1,3,5, got {spec!r}") from err
    bad = [n for n in numbers if not 1 <= n <= len(rows)]
    if bad:
        raise SetupError(f"--rows {bad} outside 1..{len(rows)}")
    return [(n, rows[n - 1]) for n in numbers]


def parse_roots(pairs: Sequence[str]) -> dict[str, Path]:
    """``["cifar10=~/data", ...]`` -> ``{"cifar10": Path}``."""
    roots = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or name not in ROOT_CONTENTS:
            raise SetupError(f"--data-root takes NAME=PATH with NAME one of {', '.join(ROOT_CONTENTS)}, got {pair!r}")
        roots[name] = Path(path).expanduser()
    return roots


def check_inputs(selected: list[tuple[int, dict[str, Any]]], roots: dict[str, Path],
                 checkpoint_dir: Optional[Path]) -> None:
    """Raise :class:`SetupError` naming every data root and checkpoint the selected rows lack."""
    problems = [f"--data-root {name}=PATH (the folder holding {ROOT_CONTENTS[name]})"
                for name in sorted({row["dataset"] for _, row in selected}) if name not in roots]
    keys = list(dict.fromkeys(model_key(row) for _, row in selected))
    if checkpoint_dir is None:
        names = ", ".join(k.file_name(s) for k in keys for s in (False, True))
        problems.append(f"--checkpoint-dir DIR holding {names}")
    else:
        problems += [f"checkpoint {checkpoint_dir / k.file_name(s)} "
                     f"(write it with: {k.train_command(str(checkpoint_dir), s)})"
                     for k in keys for s in (False, True) if not (checkpoint_dir / k.file_name(s)).is_file()]
    if problems:
        raise SetupError("missing " + "; ".join(problems))


def load_model(path: Path, key: ModelKey, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A checkpoint's model and meta; :class:`SetupError` when it was trained for another row."""
    try:
        model, meta = load_checkpoint(path, map_location=device)
    except (ValueError, FileNotFoundError) as err:
        raise SetupError(str(err)) from err
    found = ModelKey(meta["model"]["name"], meta["dataset"], meta["input"]["encoding"], int(meta["input"]["T"]),
                     float(meta["model"].get("lam", 1.0)))
    if found != key:
        raise SetupError(f"checkpoint {path} holds {found}, but its row needs {key}")
    return model.to(device), meta


def test_data(dataset: str, root: Path, meta: dict[str, Any], limit: Optional[int], batch_size: int) -> DataLoader:
    """The test split the checkpoint's model reads (DVS: its frame count and size), first ``limit`` samples."""
    options: dict[str, Any] = {}
    if dataset == "cifar10dvs":
        options = {"frames": int(meta["input"]["T"]), "size": int(meta["model"].get("image_size", 48))}
    elif dataset.startswith("cifar"):
        options = {"augment": False}
    try:
        _, test, _ = load_dataset(dataset, root, **options)
    except FileNotFoundError as err:
        raise SetupError(str(err)) from err
    subset: Dataset = test if limit is None else Subset(test, range(min(limit, len(test))))
    return DataLoader(subset, batch_size=batch_size)


def run_rows(config: dict[str, Any], selected: list[tuple[int, dict[str, Any]]], roots: dict[str, Path],
             checkpoint_dir: Path, limit: Optional[int], batch_size: int, device: torch.device,
             pgd_steps: Optional[int] = None, progress: bool = True) -> list[tuple[int, dict[str, Any], ResultRow]]:
    """Measure every selected row: ``(number, config row, measured ResultRow)``. ASRs are fractions in [0, 1]."""
    check_inputs(selected, roots, checkpoint_dir)
    models: dict[tuple[ModelKey, bool], tuple[torch.nn.Module, dict[str, Any]]] = {}
    results = []
    for number, row in selected:
        key = model_key(row)
        for source in (False, True):
            if (key, source) not in models:
                models[key, source] = load_model(checkpoint_dir / key.file_name(source), key, device)
        eot = int(config.get("eot", 1)) if key.input == "poisson" else 1
        (target_model, meta), (source_model, source_meta) = models[key, False], models[key, True]
        target = classifier_from_meta(target_model, meta, gradient="stbp", eot=eot, seed=0)
        source = classifier_from_meta(source_model, source_meta, gradient="stbp", eot=eot, seed=SOURCE_SEED)
        settings = config["attack_settings"][key.dataset]
        spec = AttackSpec(row["attack"], parse_eps(settings["eps"]), pgd_steps or int(settings["pgd_steps"]),
                          parse_eps(settings["pgd_alpha"]))
        if progress:
            print(f"row {number}: {key} TE {row['time_extension']}x {spec.name.upper()}", file=sys.stderr)
        data = test_data(key.dataset, roots[key.dataset], meta, limit, batch_size)
        measured = attack_row(target, source, spec, data, architecture=key.architecture, dataset=key.dataset,
                              lam=key.lam, time_extension=int(row["time_extension"]), batch_size=batch_size,
                              gradients=PAPER_GRADIENTS, device=device, progress=progress)
        results.append((number, row, measured))
    return results


def _pair(measured: Optional[float], poster: float) -> str:
    return f"{'-' if measured is None else f'{100 * measured:.2f}'} / {poster:.2f}"


def format_comparison(results: list[tuple[int, dict[str, Any], ResultRow]]) -> str:
    """A fixed-width table: each accuracy and ASR as ``measured / poster`` in %."""
    header = ["#", "Arch", "Dataset", "Input", "T", "λ", "TE", "Attack", "ε", "Clean Acc.",
              "WB STBP", "WB RGA", "BB STBP", "BB RGA"]
    lines = [header]
    for number, row, measured in results:
        poster = row["poster"]
        lines.append([str(number), measured.architecture, measured.dataset, measured.input, str(measured.T),
                      f"{measured.lam:g}", "-" if measured.time_extension == 1 else f"{measured.time_extension}x",
                      measured.attack.upper(), f"{measured.eps:.4g}",
                      _pair(measured.clean_accuracy, poster["clean_accuracy"])]
                     + [_pair(getattr(measured, box)[g], poster[box][g])
                        for box in ("white_box", "black_box") for g in ("stbp", "rga")])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)) for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text) + f"\nmeasured / poster, in %. {ASR_DEFINITION}."


def write_check_setup(workdir: Path, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Path], Path]:
    """The ``--check`` setting: synthetic data files in the real formats under ``workdir``, the rows shrunk to
    the small ``digits_snn`` at T // 4, and their target and source checkpoints trained for one batch.

    Returns ``(rows, data roots, checkpoint folder)`` for :func:`run_rows`.
    """
    roots = {"cifar10": workdir / "cifar", "cifar100": workdir / "cifar", "cifar10dvs": workdir / "cifar10dvs"}
    write_cifar(roots["cifar10"], "cifar10", per_batch=4)
    write_cifar(roots["cifar100"], "cifar100", per_batch=4)
    write_cifar10_dvs(roots["cifar10dvs"], per_class=1, events=2000)
    small = [{**row, "architecture": "digits_snn", "T": max(1, int(row["T"]) // 4)} for row in rows]
    checkpoints = workdir / "checkpoints"
    config = TrainConfig(epochs=1, batch_size=4, max_batches=1, progress=False)
    for key in dict.fromkeys(model_key(row) for row in small):
        for source in (False, True):
            options = {"size": 16} if key.dataset == "cifar10dvs" else {"augment": False}
            train_model(key.architecture, key.dataset, roots[key.dataset], T=key.T, encoding=key.input, lam=key.lam,
                        config=replace(config, seed=SOURCE_SEED if source else 0),
                        checkpoint=checkpoints / key.file_name(source), dataset_options=options)
    return small, roots, checkpoints


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--config", type=Path, default=CONFIG, help="row config (default: paper_rows.json here)")
    parser.add_argument("--checkpoint-dir", type=Path, help="folder holding every row's target and source checkpoint")
    parser.add_argument("--data-root", action="append", default=[], metavar="NAME=PATH",
                        help="data root per data set: cifar10=..., cifar100=..., cifar10dvs=... (repeat)")
    parser.add_argument("--rows", help="1-based row numbers to run, e.g. 1,3,5 (default: all)")
    parser.add_argument("--limit", type=int, help="attack only the first N test samples of each row")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--check", action="store_true",
                        help="end to end on synthetic data with tiny briefly trained models (numbers mean nothing)")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
        selected = select_rows(config["rows"], args.rows)
        device = torch.device(args.device)
        progress = not args.no_progress
        with tempfile.TemporaryDirectory(prefix="sj-rga-check-") as workdir:
            if args.check:
                rows, roots, checkpoint_dir = write_check_setup(Path(workdir), [row for _, row in selected])
                selected = [(number, row) for (number, _), row in zip(selected, rows)]
                results = run_rows(config, selected, roots, checkpoint_dir, args.limit or 4, args.batch_size, device,
                                   pgd_steps=2, progress=progress)
            else:
                results = run_rows(config, selected, parse_roots(args.data_root), args.checkpoint_dir, args.limit,
                                   args.batch_size, device, progress=progress)
    except SetupError as err:
        print(f"reproduce_paper: error: {err}", file=sys.stderr)
        return 2
    print(format_comparison(results))
    if args.check:
        print("--check: synthetic data and tiny untrained models; the measured numbers mean nothing.")
    if args.out:
        args.out.write_text(json.dumps({"asr_definition": ASR_DEFINITION, "assumptions": config.get("assumptions"),
                                        "rows": [{"number": n, "poster": row["poster"], "measured": m.as_dict()}
                                                 for n, row, m in results]}, indent=2, allow_nan=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
