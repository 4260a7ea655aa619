"""``sj-rga evaluate``: the standard robustness evaluation (AutoAttack over gradients), resumable.

The batch loop is :func:`sj_rga.evaluate`'s (:func:`sj_rga.metrics.attack_records`): under ``torchrun
--nproc_per_node=N -m sj_rga evaluate ...`` the batches are dealt over the N ranks in rounds; rank 0 alone keeps
the run's folder, so a stopped run resumes with any number of processes."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..distributed import world
from .checks import check_model_takes_sample, check_normalisation, first_sample, model_label
from .common import (
    add_common,
    chance_warnings,
    check_encoding,
    check_eps_in_range,
    dataset_info,
    device_arg,
    load_model,
    output_dir,
    parse_eps,
    positive_int,
    results_header,
    test_data,
    work_starts,
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


def _stderr(line: str) -> None:
    print(f"sj-rga evaluate: {line}", file=sys.stderr, flush=True)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..attacks.autoattack import AutoAttack
    from ..checkpoints import classifier_from_meta
    from ..masking import format_checks
    from ..metrics import attack_records, masking_checks_of, report_of
    from ..report import format_evaluation
    from ..robustness import SEEDS, report, write_report
    from ..runs import RunFolder

    check_eps_in_range("--eps", [args.eps], args.data, args.norm, args.bounds)
    if args.eps_curve not in (None, "auto") and not args.eps_curve > args.eps:
        raise UsageError(f"--eps-curve {args.eps_curve}: the largest ε of the curve must exceed --eps {args.eps}")
    if args.eps_curve not in (None, "auto"):
        check_eps_in_range("--eps-curve", [args.eps_curve], args.data, args.norm, args.bounds)
    check_encoding(args.encoding, args.data)
    check_normalisation(args, dataset_info(args.data).in_channels)
    device = device_arg(args.device)
    model, meta = load_model(args.checkpoint, args.model, args.data, device, args)
    if args.T is not None or args.encoding:
        meta = {**meta, "input": {**meta["input"], "T": args.T or meta["input"]["T"],
                                  "encoding": args.encoding or meta["input"]["encoding"]}}
    with user_mistakes(model_label(args), ValueError):  # e.g. a model with no spiking neuron
        target = classifier_from_meta(model, meta, eot=args.eot, seed=args.seed)
    with user_mistakes(f"--suite {args.suite}", ValueError):
        suite = AutoAttack(target, args.eps, args.norm, args.suite, args.seed)
    data = test_data(args, frames=target.T)
    check_model_takes_sample(target, first_sample(data), args, dataset_info(args.data).num_classes, device)
    folder = None
    if world().main:  # torchrun: rank 0 alone reads and writes the run's folder
        with user_mistakes(f"--out {args.out}", ValueError):
            folder = RunFolder(args.out, _arguments(args, meta))
    work_starts(args)
    try:
        records = attack_records(target, suite, data, args.batch_size, device, not args.no_progress,
                                 f"AutoAttack ({args.suite})", folder, log=_stderr)
    except KeyboardInterrupt:
        kept = folder is not None and folder.finished()
        print("sj-rga evaluate: interrupted; " + (f"the finished batches are kept in {args.out}: run the same command "
                                                   "again to resume" if kept else "no batch had finished"),
              file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    checks = masking_checks_of(target, suite, data, args.batch_size, records, report_of(records, suite), device)
    if not world().main:
        return 0
    result = {
        "format": "sj-rga-evaluation-1", "eps": args.eps, "norm": args.norm, "suite": args.suite,
        "composition": [a.as_dict() for a in suite.attacks], "seed": args.seed,
        "model": meta["model"], "input": meta["input"], "data": args.data, "checkpoint": args.checkpoint,
        **report(records, [a.as_dict() for a in suite.attacks], args.batch_size),
        "robust_accuracy_is_worst_case_of": [a.name for a in suite.attacks],
    }
    result["checks"] = checks
    result["warnings"] = chance_warnings(args, [(result["clean_accuracy"], result["samples"])])
    if args.eps_curve is not None:
        from ..curve import curve_of_run

        eps_max = 2 * args.eps if args.eps_curve == "auto" else args.eps_curve
        result["eps_curve"] = curve_of_run(target, data, result, eps_max, args.bisections, args.out, device)
    gradients = list(dict.fromkeys(g for a in suite.attacks for g in a.gradients))
    result = {**results_header(args, device, {"seed": args.seed, **SEEDS}, args.batch_size, gradients), **result}
    json_path, _ = write_report(args.out, result)
    print(f"AutoAttack ({args.suite}) at ε = {args.eps:.6g} ({args.norm}) on {result['samples']} samples")
    print(format_checks(result["checks"]))
    print(format_evaluation(result))
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
