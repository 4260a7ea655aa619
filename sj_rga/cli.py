"""The ``sj-rga`` command: ``demo``, ``attack``, ``shuffle`` and ``train``.

Errors a user can fix (a missing data root, an unknown model, a malformed ε, a checkpoint that does not
fit, an unavailable device) end with one line on stderr and exit status 2, with no traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import torch

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake in the command line or its files; reported in one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other usage error
        raise UsageError(f"{self.prog}: {message}")


class _Help(argparse.RawDescriptionHelpFormatter):
    pass


def parse_eps(text: str) -> float:
    """``'8/255'`` or ``'0.03'`` -> a float >= 0 (input units)."""
    try:
        value = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"malformed ε {text!r}: write a number such as 0.03 or a fraction such as 8/255")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"ε must be a finite number >= 0, got {text!r}")
    return value


def parse_eps_list(text: str) -> list[float]:
    """Comma-separated ε values, each as :func:`parse_eps`."""
    return [parse_eps(part) for part in text.split(",") if part.strip()] or [parse_eps(text)]


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}: use cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} is not available here (no CUDA GPU): use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"device {name!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    return device


def _default_out(kind: str) -> Path:
    return Path("sj_rga_out") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


# -- sub-commands -----------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import DemoSettings, default_cache_dir, run_demo
    from .report import format_table, write_results

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    rows, sweeps, extra = run_demo(settings, cache, progress=not args.no_progress,
                                   log=lambda m: print(f"[sj-rga] {m}", file=sys.stderr))
    shuffle = extra["shuffle_test"]
    print(f"Spike shuffle test (digits_snn, IF, T=8): clean accuracy {100 * shuffle['clean_accuracy']:.2f} %, "
          f"shuffled {100 * shuffle['shuffled_accuracy']:.2f} %")
    print(format_table(rows))
    out = Path(args.out) if args.out else _default_out("demo")
    write_results(out, rows, sweeps, extra)
    print(f"Results written to {out.resolve()} (results.json, results.csv, asr_vs_eps.png, asr_vs_lambda.png) "
          f"in {extra['seconds']:.0f} s")
    return 0


def _load(checkpoint: Optional[str], model_name: Optional[str], dataset: str, device: torch.device):
    """(model, meta) from a checkpoint, or a reference model trained on digits when none is given."""
    from .training import load_checkpoint, train_digits

    if checkpoint:
        model, meta = load_checkpoint(checkpoint)
        if model_name and meta["model"]["name"] != model_name:
            raise UsageError(f"checkpoint {checkpoint} holds {meta['model']['name']}, not --model {model_name}")
        if meta["dataset"] != dataset:
            raise UsageError(f"checkpoint {checkpoint} was trained on {meta['dataset']}, not --data {dataset}")
        return model.to(device), meta
    if dataset != "digits" or model_name not in (None, "digits_snn"):
        raise UsageError(f"--checkpoint is needed for {model_name or 'the model'} on {dataset}: "
                         "train one with `sj-rga train` first")
    model, meta = train_digits()
    return model.to(device), meta


def _test_data(args: argparse.Namespace, meta: dict):
    from .data.registry import load_dataset

    options = {"frames": meta["input"]["T"]} if args.data == "cifar10dvs" else {}
    _, test_set, _ = load_dataset(args.data, args.data_root, **options)
    count = len(test_set) if args.limit is None else min(args.limit, len(test_set))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(test_set, range(count)),
                                         batch_size=args.batch_size)
    return loader


def cmd_attack(args: argparse.Namespace) -> int:
    from .experiment import AttackSpec, attack_row, classifier_from_meta
    from .report import format_table, write_results

    device = _device(args.device)
    model, meta = _load(args.checkpoint, args.model, args.data, device)
    source = None
    if args.source:
        source_model, source_meta = _load(args.source, None, args.data, device)
        source = classifier_from_meta(source_model, source_meta, T=args.T, eot=args.eot, seed=args.seed)
    if args.encoding and args.encoding != meta["input"]["encoding"]:
        meta = {**meta, "input": {**meta["input"], "encoding": args.encoding}}
    target = classifier_from_meta(model, meta, T=args.T, eot=args.eot, seed=args.seed)
    data = _test_data(args, meta)
    rows = [attack_row(target, source, AttackSpec(args.attack, eps, args.steps, args.alpha, args.seed), data,
                       architecture=meta["model"]["name"], dataset=args.data, lam=meta["model"].get("lam", 1.0),
                       time_extension=args.time_extension, gradients=tuple(args.gradient), device=device,
                       progress=not args.no_progress)
            for eps in args.eps]
    print(format_table(rows))
    sweeps = {}
    if len(rows) > 1:
        sweeps["asr_vs_eps"] = {"x": [r.eps for r in rows], "x_label": "ε (input units)",
                                "title": f"{args.attack.upper()} on {meta['model']['name']} ({args.data})",
                                "series": {f"{box.replace('_', '-')} {g.upper()}": [getattr(r, box)[g] for r in rows]
                                           for box in ("white_box", "black_box") for g in args.gradient
                                           if all(getattr(r, box)[g] is not None for r in rows)}}
    out = Path(args.out) if args.out else _default_out("attack")
    write_results(out, rows, sweeps, {"checkpoint": args.checkpoint, "source": args.source})
    print(f"Results written to {out.resolve()}")
    return 0


def cmd_shuffle(args: argparse.Namespace) -> int:
    from .experiment import classifier_from_meta
    from .shuffle import shuffle_test

    device = _device(args.device)
    model, meta = _load(args.checkpoint, args.model, args.data, device)
    report = shuffle_test(classifier_from_meta(model, meta, seed=args.seed), _test_data(args, meta),
                          batch_size=args.batch_size, seed=args.seed, device=device)
    print(json.dumps(report.as_dict(), indent=2))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .training import DIGITS_PRESET, TrainConfig, train_model

    device = _device(args.device)
    base = DIGITS_PRESET if args.data == "digits" else TrainConfig()
    overrides = {k: v for k, v in dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                       max_batches=args.max_batches).items() if v is not None}
    config = replace(base, seed=args.seed, progress=not args.no_progress, device=str(device), **overrides)
    checkpoint = Path(args.out)
    _, meta = train_model(args.model, args.data, args.data_root, args.download, T=args.T, encoding=args.encoding,
                          lam=args.lam, config=config, checkpoint=checkpoint)
    print(f"test accuracy {100 * meta['accuracy']:.2f} %; checkpoint written to {checkpoint.resolve()}")
    return 0


# -- parser -----------------------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser, checkpoint: bool = True) -> None:
    if checkpoint:
        p.add_argument("--checkpoint", help="a checkpoint written by `sj-rga train` (default on digits: a quick model)")
    p.add_argument("--model", help="reference model name (digits_snn, vgg11, resnet17, dvs_vgg, or a SpikingJelly zoo name)")
    p.add_argument("--data", default="digits", choices=("digits", "cifar10", "cifar100", "cifar10dvs"))
    p.add_argument("--data-root", help="folder holding the data set (needed for cifar10, cifar100, cifar10dvs)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sj-rga", formatter_class=_Help,
                     description="Rate Gradient Approximation (RGA) attacks on SpikingJelly SNNs.",
                     epilog="example:\n  sj-rga demo                  # digits: shuffle test, STBP vs RGA, table + plots")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", formatter_class=_Help, help="the paper's experiments on digits, no network",
                          epilog="example:\n  sj-rga demo --out results/demo")
    demo.add_argument("--out", help="output directory (default sj_rga_out/demo-<time>)")
    demo.add_argument("--cache-dir", help="where trained models are kept (default ~/.cache/sj-rga or $SJ_RGA_CACHE)")
    demo.add_argument("--quick", action="store_true", help="a smaller, faster setting (used in CI)")
    demo.add_argument("--no-progress", action="store_true")
    demo.set_defaults(run=cmd_demo)

    attack = sub.add_parser("attack", formatter_class=_Help, help="attack a checkpoint or reference model",
                            epilog="example:\n  sj-rga attack --checkpoint vgg11.pt --data cifar10 --data-root ~/data "
                                   "--attack pgd --eps 8/255 --steps 10 --gradient stbp rga --source vgg11_b.pt")
    _common(attack)
    attack.add_argument("--attack", default="fgsm", choices=("fgsm", "pgd"))
    attack.add_argument("--gradient", nargs="+", default=["stbp", "rga"], choices=("stbp", "rga"))
    attack.add_argument("--eps", type=parse_eps_list, default=[0.1],
                        help="ε in input units: 8/255, 0.03, or a list 2/255,4/255,8/255")
    attack.add_argument("--steps", type=int, default=10, help="PGD steps")
    attack.add_argument("--alpha", type=parse_eps, help="PGD step size (default 2.5·ε/steps)")
    attack.add_argument("-T", "--T", type=int, help="time steps (default: the checkpoint's)")
    attack.add_argument("--time-extension", type=int, default=1, help="craft with k·T steps (the paper: 2)")
    attack.add_argument("--encoding", choices=("direct", "poisson", "frames"), help="default: the checkpoint's")
    attack.add_argument("--eot", type=int, default=1, help="Poisson samples averaged per gradient")
    attack.add_argument("--source", help="checkpoint of a separately trained source model (black-box)")
    attack.add_argument("--limit", type=int, help="attack only the first N test samples")
    attack.add_argument("--out", help="output directory (default sj_rga_out/attack-<time>)")
    attack.set_defaults(run=cmd_attack)

    shuffle = sub.add_parser("shuffle", formatter_class=_Help, help="the spike shuffle test (is it rate coded?)",
                             epilog="example:\n  sj-rga shuffle --checkpoint model.pt --data digits")
    _common(shuffle)
    shuffle.add_argument("--limit", type=int, help="use only the first N test samples")
    shuffle.set_defaults(run=cmd_shuffle)

    train = sub.add_parser("train", formatter_class=_Help, help="train a reference model (the paper's recipe)",
                           epilog="example:\n  sj-rga train --data cifar10 --data-root ~/data --model vgg11 --lam 0.9 "
                                  "--epochs 200 --out vgg11.pt")
    _common(train, checkpoint=False)
    train.add_argument("--out", required=True, help="checkpoint file to write")
    train.add_argument("--lam", type=float, default=1.0, help="leak λ of the paper's neuron (1 = IF)")
    train.add_argument("-T", "--T", type=int, help="time steps (default: the data set's)")
    train.add_argument("--encoding", choices=("direct", "poisson", "frames"))
    train.add_argument("--epochs", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--max-batches", type=int, help="cap batches per epoch (a quick run)")
    train.add_argument("--download", action="store_true", help="download CIFAR/CIFAR10-DVS into --data-root")
    train.set_defaults(run=cmd_train, batch_size=None)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except UsageError as err:
        print(f"sj-rga: error: {str(err).removeprefix('sj-rga: ')}", file=sys.stderr)
    except (ValueError, TypeError, FileNotFoundError, ImportError, RuntimeError) as err:
        if os.environ.get("SJ_RGA_DEBUG"):
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"sj-rga: error: {message}", file=sys.stderr)
    except KeyboardInterrupt:
        print("sj-rga: interrupted", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
