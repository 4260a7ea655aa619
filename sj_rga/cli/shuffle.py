"""``sj-rga shuffle``: the spike shuffle test (is the model rate coded?)."""
from __future__ import annotations

import argparse
import sys

from ..distributed import world
from .common import add_common, check_data_root, device_arg, load_model, positive_int, test_data
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
    result = shuffle_test(classifier, test_data(args, frames=classifier.T), batch_size=args.batch_size,
                          seed=args.seed, device=device)
    if not world().main:  # torchrun: every rank runs its batches (shuffle_test gathers); rank 0 prints
        return 0
    report = {"model": meta["model"]["name"], "dataset": args.data, "T": classifier.T,
              "input": classifier.encoding, **result.as_dict()}
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
