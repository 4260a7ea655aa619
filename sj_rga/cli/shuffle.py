"""``sj-rga shuffle``: the spike shuffle test (is the model rate coded?)."""
from __future__ import annotations

import argparse
import sys

from ..distributed import world
from .checks import check_model_takes_sample, first_sample
from .common import (
    add_common,
    chance_warnings,
    check_data_root,
    dataset_info,
    device_arg,
    load_model,
    positive_int,
    results_header,
    test_data,
    work_starts,
)
from .errors import HelpFormatter


def summary_line(report: dict) -> str:
    """One readable line: the model, T, its input, and the clean and shuffled accuracy."""
    return (f"Spike shuffle test, {report['model']} (T={report['T']}, {report['input']} input) on "
            f"{report['samples']} {report['dataset']} test samples: clean accuracy "
            f"{100 * report['clean_accuracy']:.2f} %, shuffled {100 * report['shuffled_accuracy']:.2f} %")


def cmd_shuffle(args: argparse.Namespace) -> int:
    from ..checkpoints import classifier_from_meta
    from ..files import to_json
    from ..shuffle import shuffle_test

    check_data_root(args.data, args.data_root)
    device = device_arg(args.device)
    model, meta = load_model(args.checkpoint, args.model, args.data, device)
    classifier = classifier_from_meta(model, meta, seed=args.seed)
    data = test_data(args, frames=classifier.T)
    check_model_takes_sample(classifier, first_sample(data), args, dataset_info(args.data).num_classes, device)
    work_starts(args)
    result = shuffle_test(classifier, data, batch_size=args.batch_size,
                          seed=args.seed, device=device)
    if not world().main:  # torchrun: every rank runs its batches (shuffle_test gathers); rank 0 prints
        return 0
    report = {**results_header(args, device, {"shuffle": args.seed}, args.batch_size),
              "model": meta["model"]["name"], "dataset": args.data, "T": classifier.T, "input": classifier.encoding,
              **result.as_dict()}
    report["warnings"] = chance_warnings(args, [(result.clean_accuracy, result.samples)])
    print(summary_line(report), file=sys.stderr)
    print(to_json(report))
    return 0


def add_shuffle_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``sj-rga shuffle`` and its options to the sub-command parsers ``sub``."""
    shuffle = sub.add_parser(
        "shuffle", formatter_class=HelpFormatter, help="the spike shuffle test (is it rate coded?)",
        description="Prints one readable line on stderr and the report as JSON on stdout.",
        epilog="example:\n  sj-rga shuffle --checkpoint digits.pt --data digits")
    add_common(shuffle)
    shuffle.add_argument("--limit", type=positive_int, help="use only the first N test samples")
    shuffle.set_defaults(run=cmd_shuffle)
