"""``sj-rga shuffle``: the spike shuffle test (is the model rate coded?)."""
from __future__ import annotations

import argparse
import json

from .common import add_common, device_arg, load_model, test_data
from .errors import HelpFormatter


def cmd_shuffle(args: argparse.Namespace) -> int:
    from ..experiment import classifier_from_meta
    from ..shuffle import shuffle_test

    device = device_arg(args.device)
    model, meta = load_model(args.checkpoint, args.model, args.data, device)
    report = shuffle_test(classifier_from_meta(model, meta, seed=args.seed), test_data(args, meta),
                          batch_size=args.batch_size, seed=args.seed, device=device)
    print(json.dumps(report.as_dict(), indent=2))
    return 0


def add_shuffle_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``sj-rga shuffle`` and its options to the sub-command parsers ``sub``."""
    shuffle = sub.add_parser("shuffle", formatter_class=HelpFormatter, help="the spike shuffle test (is it rate coded?)",
                             epilog="example:\n  sj-rga shuffle --checkpoint model.pt --data digits")
    add_common(shuffle)
    shuffle.add_argument("--limit", type=int, help="use only the first N test samples")
    shuffle.set_defaults(run=cmd_shuffle)
