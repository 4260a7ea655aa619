"""``sj-rga train``: train a reference model with the paper's recipe and write a checkpoint."""
from __future__ import annotations

import argparse

from .common import (
    add_common,
    check_data_root,
    check_encoding,
    check_model_fits,
    dataset_info,
    device_arg,
    leak,
    output_file,
    positive_float,
    positive_int,
)
from .errors import HelpFormatter


def check_train_args(args: argparse.Namespace) -> None:
    """Everything that can be checked before the data are read and training starts."""
    check_encoding(args.encoding, args.data)
    check_data_root(args.data, args.data_root, args.download)
    check_model_fits(args.model or dataset_info(args.data).default_model, args.data)


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..report import atomic_path
    from ..training import DIGITS_PRESET, TrainConfig, train_model

    check_train_args(args)
    device = device_arg(args.device)
    base = DIGITS_PRESET if args.data == "digits" else TrainConfig()
    overrides = {k: v for k, v in dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                       max_batches=args.max_batches).items() if v is not None}
    config = replace(base, seed=args.seed, progress=not args.no_progress, device=str(device), **overrides)
    with atomic_path(args.out) as partial:  # an interrupted run leaves no half-written checkpoint
        _, meta = train_model(args.model, args.data, args.data_root, args.download, T=args.T, encoding=args.encoding,
                              lam=args.lam, config=config, checkpoint=partial)
    print(f"test accuracy {100 * meta['accuracy']:.2f} %; checkpoint written to {args.out.resolve()}")
    return 0


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``sj-rga train`` and its options to the sub-command parsers ``sub``."""
    train = sub.add_parser(
        "train", formatter_class=HelpFormatter, help="train a reference model (the paper's recipe)",
        epilog="examples:\n"
               "  sj-rga train --data digits --out digits.pt                  # a target model (seconds)\n"
               "  sj-rga train --data digits --seed 1 --out digits_seed1.pt   # its black-box source\n"
               "  sj-rga train --data cifar10 --data-root ~/data --model vgg11 --lam 0.9 --epochs 200 --out vgg11.pt")
    add_common(train, checkpoint=False)
    train.add_argument("--out", required=True, type=output_file, help="checkpoint file to write")
    train.add_argument("--lam", type=leak, default=1.0, help="leak λ of the paper's neuron, in (0, 1] (1 = IF)")
    train.add_argument("-T", "--T", type=positive_int, help="time steps (default: the data set's)")
    train.add_argument("--encoding", choices=("direct", "poisson", "frames"))
    train.add_argument("--epochs", type=positive_int)
    train.add_argument("--lr", type=positive_float)
    train.add_argument("--max-batches", type=positive_int, help="cap batches per epoch (a quick run)")
    train.add_argument("--download", action="store_true", help="download CIFAR/CIFAR10-DVS into --data-root")
    train.set_defaults(run=cmd_train, batch_size=None)
