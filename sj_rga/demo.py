"""``sj-rga demo``: the paper's experiments on scikit-learn's digits, in minutes on a CPU.

Trains (or reuses from a cache) reference SNNs with the paper's settings (direct input, T = 8, triangle
surrogate, IF and a λ = 0.9 LIF, a Poisson-input model, each with an independently trained source model
for black-box attacks), then runs the spike shuffle test, FGSM and PGD with each of the six input gradients
(STBP, RGA, BPTR, HART, PDSG, ASSG: :mod:`sj_rga.gradients`), white-box and black-box, the 2× time-extended
attack, Poisson input with EOT, and sweeps of ε and λ.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch

from .checkpoints import classifier_from_meta, load_checkpoint
from .data.digits import digits
from .experiment import GRADIENTS, AttackSpec, ResultRow, attack_row
from .files import atomic_path
from .report import sweep
from .shuffle import shuffle_test
from .training import DIGITS_PRESET, TrainConfig, train_model

#: Training seeds of the targets and of their black-box sources (trained the same way, separately).
TARGET_SEED, SOURCE_SEED = 0, 1
#: Test digits per batch of every attack and of the shuffle test (recorded in results.json).
BATCH_SIZE = 256
SOURCE_NAME = (f"a separately trained digits_snn (training seed {SOURCE_SEED}, the target's {TARGET_SEED}; same λ, "
               "input and recipe)")


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo. ``quick()`` is the small setting used in CI.

    ``eot``: Poisson samples averaged per forward of a Poisson-input model (its predictions and each attack
    step's gradient, EOT). The paper attacks Poisson input with one straight-through sample per step; 2 keeps
    the PGD row on Poisson input, the demo's costliest, at about a quarter of the demo's CPU time (with 4 it
    took two fifths, `benchmarks/RESULTS.md`).
    """

    samples: int = 360
    eps: float = 0.1
    eps_sweep: tuple[float, ...] = (0.02, 0.05, 0.1, 0.15, 0.2)
    lam_sweep: tuple[float, ...] = (1.0, 0.9, 0.5)
    pgd_steps: int = 10
    eot: int = 2
    train: TrainConfig = field(default_factory=lambda: replace(DIGITS_PRESET))

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(samples=32, eps_sweep=(0.05,), lam_sweep=(1.0, 0.9), pgd_steps=2, eot=2,
                   train=replace(DIGITS_PRESET, epochs=2, max_batches=20))


def default_cache_dir() -> Path:
    """``$SJ_RGA_CACHE``, else ``$XDG_CACHE_HOME/sj-rga``, else ``~/.cache/sj-rga``."""
    if os.environ.get("SJ_RGA_CACHE"):
        return Path(os.environ["SJ_RGA_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sj-rga"


def cached_digits_model(cache: Path, lam: float, encoding: str, seed: int, config: TrainConfig,
                        progress: bool) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A trained ``digits_snn`` (T = 8) from ``cache``, trained and saved there on first use."""
    cap = "" if config.max_batches is None else f"-mb{config.max_batches}"
    name = f"digits_snn-T8-lam{lam:g}-{encoding}-seed{seed}-ep{config.epochs}-b{config.batch_size}{cap}.pt"
    path = cache / name
    if path.is_file():
        try:
            return load_checkpoint(path)
        except ValueError:
            path.unlink()  # a stale or broken cache entry: train again
    train_config = replace(config, seed=seed, progress=progress)
    with atomic_path(path) as partial:  # an interrupted run leaves no broken cache entry
        model, meta = train_model("digits_snn", "digits", T=8, encoding=encoding, lam=lam, config=train_config,
                                  checkpoint=partial)
    return model.eval(), meta


def run_demo(settings: DemoSettings, cache: Path, progress: bool = True,
             log: Callable[[str], None] = print) -> tuple[list[ResultRow], dict[str, Any], dict[str, Any]]:
    """Run every experiment; returns (table rows, sweeps for plots, extra JSON fields). ``log`` gets a line
    before each stage (``model: ...``, ``model ready: ...``, ``spike shuffle test``, ``attack: ... (row k of
    n ...)``)."""
    started = time.perf_counter()
    x, y = digits()[1].tensors
    data = (x[:settings.samples], y[:settings.samples])
    models: dict[tuple[float, str, int], tuple[torch.nn.Module, dict[str, Any]]] = {}
    extra_eps = [e for e in settings.eps_sweep if e != settings.eps]
    extra_lam = [lam for lam in settings.lam_sweep if lam not in (1.0, 0.9)]
    rows_done = {"count": 0, "total": 7 + len(extra_eps) + len(extra_lam)}  # the table's rows

    def model(lam: float, encoding: str = "direct", seed: int = TARGET_SEED):
        key = (lam, encoding, seed)
        if key not in models:
            log(f"model: digits_snn λ={lam:g} {encoding} input, seed {seed}")
            models[key] = cached_digits_model(cache, lam, encoding, seed, settings.train, progress)
            log(f"model ready: test accuracy {100 * models[key][1]['accuracy']:.1f} %")
        return models[key]

    def classifier(lam: float, encoding: str = "direct", seed: int = TARGET_SEED, **kwargs):
        net, meta = model(lam, encoding, seed)
        eot = settings.eot if encoding == "poisson" else 1
        return classifier_from_meta(net, meta, eot=eot, seed=seed if encoding == "poisson" else None, **kwargs)

    def row(lam: float, spec: AttackSpec, encoding: str = "direct", te: int = 1) -> ResultRow:
        rows_done["count"] += 1
        log(f"attack: {spec.name.upper()} ε={spec.eps:g} λ={lam:g} {encoding}{' TE 2x' if te > 1 else ''} (row "
            f"{rows_done['count']} of {rows_done['total']}: white-box and black-box, {len(GRADIENTS)} gradients)")
        return attack_row(classifier(lam, encoding, seed=TARGET_SEED), classifier(lam, encoding, seed=SOURCE_SEED),
                          spec, data, architecture="digits_snn", dataset="digits", lam=lam, time_extension=te,
                          batch_size=BATCH_SIZE, progress=None if progress else False, source_name=SOURCE_NAME)

    fgsm = AttackSpec("fgsm", settings.eps)
    pgd = AttackSpec("pgd", settings.eps, steps=settings.pgd_steps)
    log("spike shuffle test")
    shuffle = shuffle_test(classifier(1.0), data, batch_size=BATCH_SIZE).as_dict()
    rows = [row(1.0, fgsm), row(1.0, fgsm, te=2), row(1.0, pgd), row(0.9, fgsm), row(0.9, pgd),
            row(1.0, fgsm, encoding="poisson"), row(1.0, pgd, encoding="poisson")]
    eps_rows = [r for r in rows
                if r.attack == "fgsm" and r.lam == 1.0 and r.input == "direct" and r.time_extension == 1]
    for eps in extra_eps:
        eps_rows.append(row(1.0, AttackSpec("fgsm", eps)))
    eps_rows.sort(key=lambda r: r.eps)
    lam_rows = [next((r for r in rows if r.lam == lam and r.attack == "fgsm" and r.input == "direct"
                      and r.time_extension == 1), None) or row(lam, fgsm) for lam in settings.lam_sweep]
    sweeps = {  # one model under growing ε: joined; separately trained models (λ): separate points
        "asr_vs_eps": sweep(eps_rows, "eps", "ε (pixel space, images in [0, 1])"),
        "asr_vs_lambda": sweep(lam_rows, "lam", "leak λ (1 = IF; each λ a separately trained model)",
                               boxes=("white_box",), join=False),
    }
    extra = {"shuffle_test": shuffle, "settings": {**asdict(settings), "train": asdict(settings.train)},
             "seeds": {"digits_split": 0, "targets": TARGET_SEED, "black_box_sources": SOURCE_SEED,
                       "poisson_input": "the model's training seed", "pgd_random_start": pgd.seed},
             "seconds": round(time.perf_counter() - started, 1)}
    return rows + [r for r in eps_rows + lam_rows if r not in rows], sweeps, extra
