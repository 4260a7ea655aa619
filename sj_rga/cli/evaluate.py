"""``sj-rga evaluate``: the standard robustness evaluation (AutoAttack over gradients), resumable.

Under ``torchrun --nproc_per_node=N -m sj_rga evaluate ...`` the batches are dealt over the N ranks
(:func:`sj_rga.robustness.run_batches`); rank 0 alone keeps the run's folder, so a stopped run resumes with
any number of processes."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..distributed import world
from .common import (
    add_common,
    check_encoding,
    check_eps_in_range,
    device_arg,
    load_model,
    output_dir,
    parse_eps,
    positive_int,
    test_data,
)
from .errors import EXIT_INTERRUPTED, HelpFormatter, UsageError, user_mistakes
from .user_model import file_digest


def _arguments(args: argparse.Namespace, meta: dict) -> dict:
    """What determines the results: a folder holding a run with other values is refused."""
    checkpoint = args.checkpoint and str(Path(args.checkpoint).resolve())
    return {
        "command": "evaluate", "checkpoint": checkpoint,
        "checkpoint_sha256": file_digest(args.checkpoint) if args.checkpoint else None,
        "model": meta["model"], "input": meta["input"], "data": args.data, "limit": args.limit,
        "batch_size": args.batch_size, "eps": args.eps, "norm": args.norm, "suite": args.suite, "seed": args.seed,
        "eot": args.eot, "device": args.device,
    }


def _checks(target, suite, data, result: dict, device) -> list:
    """The gradient-masking checks (:mod:`sj_rga.masking`) of the run, on its first samples."""
    import torch

    from ..masking import evaluation_checks, first_samples

    x, y = first_samples(data)
    robust = torch.tensor(result["per_sample"]["robust_ok"][:len(y)])
    tallies = [(row["attacked"], row["broken"]) for row in result["rows"]]
    return evaluation_checks(target, suite, x.to(device), y.to(device), robust, tallies)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..attacks.autoattack import AutoAttack
    from ..experiment import classifier_from_meta
    from ..masking import format_checks
    from ..report import versions
    from ..robustness import SEEDS, format_rows, report, run_batches, write_report
    from ..runs import RunFolder

    check_eps_in_range("--eps", [args.eps], args.data)
    if args.eps_curve not in (None, "auto") and not args.eps_curve > args.eps:
        raise UsageError(f"--eps-curve {args.eps_curve}: the largest ε of the curve must exceed --eps {args.eps}")
    if args.eps_curve not in (None, "auto"):
        check_eps_in_range("--eps-curve", [args.eps_curve], args.data)
    check_encoding(args.encoding, args.data)
    device = device_arg(args.device)
    model, meta = load_model(args.checkpoint, args.model, args.data, device, args)
    if args.T is not None or args.encoding:
        meta = {**meta, "input": {**meta["input"], "T": args.T or meta["input"]["T"],
                                  "encoding": args.encoding or meta["input"]["encoding"]}}
    with user_mistakes(f"--suite {args.suite}", ValueError):
        target = classifier_from_meta(model, meta, eot=args.eot, seed=args.seed)
        suite = AutoAttack(target, args.eps, args.norm, args.suite, args.seed)
    data = test_data(args, frames=target.T)
    folder = None
    if world().main:  # torchrun: rank 0 alone reads and writes the run's folder
        with user_mistakes(f"--out {args.out}", ValueError):
            folder = RunFolder(args.out, _arguments(args, meta))
    try:
        records = run_batches(target, data, args.eps, args.norm, args.suite, args.seed, folder, total=len(data),
                              device=device, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"sj-rga evaluate: interrupted; the finished batches are kept in {args.out}: run the same command "
              "again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not world().main:
        return 0
    result = {
        "format": "sj-rga-evaluation-1", "eps": args.eps, "norm": args.norm, "suite": args.suite,
        "composition": [a.as_dict() for a in suite.attacks], "seed": args.seed, "seeds": SEEDS,
        "model": meta["model"], "input": meta["input"], "data": args.data, "checkpoint": args.checkpoint,
        "versions": versions(), **report(records, [a.as_dict() for a in suite.attacks]),
    }
    result["checks"] = _checks(target, suite, data, result, device)
    if args.eps_curve is not None:
        from ..curve import curve_of_run

        eps_max = 2 * args.eps if args.eps_curve == "auto" else args.eps_curve
        result["eps_curve"] = curve_of_run(target, data, result, eps_max, args.bisections, args.out, device)
    json_path, _ = write_report(args.out, result)
    print(f"AutoAttack ({args.suite}) at ε = {args.eps:.6g} ({args.norm}) on {result['samples']} samples")
    print(format_checks(result["checks"]))
    print(format_rows(result))
    if args.eps_curve is not None:
        points = ", ".join(f"ε = {p['eps']:.4g}: {100 * p['robust_accuracy']:.1f} %"
                           for p in result["eps_curve"]["points"][::5])
        print(f"Robust accuracy over ε (bisection; per sample in eps_curve.csv, plot eps_curve.png): {points}")
    print(f"Results written to {json_path.parent.resolve()} (results.json, results.csv)")
    return 0


def _eps_or_auto(text: str):
    """``--eps-curve``'s value: ε, or ``auto`` (2 × ``--eps``)."""
    return "auto" if text == "auto" else parse_eps(text)


def add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``sj-rga evaluate`` and its options to the sub-command parsers ``sub``."""
    evaluate = sub.add_parser(
        "evaluate", formatter_class=HelpFormatter,
        help="report a model's robustness: the worst case over a suite of gradients and optimisers",
        epilog="examples:\n"
               "  sj-rga evaluate --checkpoint vgg11.pt --data cifar10 --data-root ~/data --eps 8/255 --norm Linf "
               "--suite standard --out results/vgg11\n"
               "  sj-rga evaluate --model my_models.snn:build --model-args '{\"num_classes\": 10}' --weights w.pth "
               "-T 8 \\\n      --mean 0.4914 0.4822 0.4465 --std 0.2470 0.2435 0.2616 --data cifar10 "
               "--data-root ~/data "
               "--eps 8/255 --out results/mine\n"
               "A run stopped for any reason resumes when started again with the same arguments and --out.")
    add_common(evaluate, user_model=True)
    evaluate.add_argument("--eps", type=parse_eps, required=True, help="ε in input units: 8/255 or 0.03")
    evaluate.add_argument("--norm", default="Linf", choices=("Linf", "L2"))
    evaluate.add_argument("--suite", default="standard", choices=("standard", "full", "fast", "rand"),
                          help="standard: the report; full: with AutoAttack's 5000 Square queries; fast: a cheap "
                               "screen; rand: Poisson input (EOT)")
    evaluate.add_argument("--out", type=output_dir, required=True, help="output folder; a stopped run resumes from it")
    evaluate.add_argument("-T", "--T", type=positive_int, help="time steps (default: the checkpoint's)")
    evaluate.add_argument("--encoding", choices=("direct", "poisson", "frames"), help="default: the checkpoint's")
    evaluate.add_argument("--eot", type=positive_int, default=1,
                          help="Poisson samples averaged per gradient (the rand suite sets its own)")
    evaluate.add_argument("--limit", type=positive_int, help="evaluate only the first N test samples")
    evaluate.add_argument("--eps-curve", type=_eps_or_auto, nargs="?", const="auto", metavar="EPS_MAX",
                          help="also each sample's smallest breaking ε up to EPS_MAX (default 2 × --eps), by "
                               "bisection with the suite: robust accuracy over ε (eps_curve.csv, eps_curve.png)")
    evaluate.add_argument("--bisections", type=positive_int, default=5,
                          help="--eps-curve: bisection steps per sample (each one suite run)")
    evaluate.set_defaults(run=cmd_evaluate)
