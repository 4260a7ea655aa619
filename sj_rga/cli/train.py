"""``sj-rga train``: train a reference model with the paper's recipe, clean or adversarially, and write a checkpoint.

Under ``torchrun --nproc_per_node=N -m sj_rga train ...`` it trains with DistributedDataParallel over the N
ranks (global batch ``--batch-size``, BatchNorm on global-batch statistics: see :func:`sj_rga.training.train`);
rank 0 alone writes the checkpoint and prints.
"""
from __future__ import annotations

import argparse

from ..adversarial import ADVERSARIAL_METHODS, AdversarialConfig
from ..distributed import local_device, world
from ..gradients import NAMES
from .common import (
    add_common,
    check_data_root,
    check_encoding,
    check_eps_in_range,
    check_model_fits,
    dataset_info,
    device_arg,
    leak,
    output_file,
    parse_eps,
    parse_step,
    positive_float,
    positive_int,
    work_starts,
)
from .errors import HelpFormatter, UsageError


def adversarial_config(args: argparse.Namespace) -> AdversarialConfig:
    """The :class:`~sj_rga.adversarial.AdversarialConfig` of ``--adversarial`` and the ``--adv-*`` options,
    checked before any work (a :class:`UsageError` naming the option otherwise)."""
    options = {"eps": args.adv_eps, "steps": args.adv_steps, "alpha": args.adv_alpha}
    if args.adversarial == "none":
        given = [f"--adv-{name}" for name, value in (*options.items(), ("gradient", args.adv_gradient),
                                                     ("beta", args.adv_beta)) if value is not None]
        if given:
            raise UsageError(f"{', '.join(given)} given without --adversarial: "
                             "choose --adversarial fgsm, pgd or trades")
        return AdversarialConfig()
    if args.adversarial != "trades" and args.adv_beta is not None:
        raise UsageError(f"--adv-beta is TRADES' KL weight, but --adversarial is {args.adversarial}")
    if args.adv_eps is None:
        raise UsageError(f"--adversarial {args.adversarial} needs --adv-eps, the L∞ radius in input units "
                         "(e.g. 8/255 for CIFAR, 0.1 for digits)")
    check_eps_in_range("--adv-eps", [args.adv_eps], args.data)
    if args.adv_alpha is not None:
        check_eps_in_range("--adv-alpha", [args.adv_alpha], args.data)
    extra = {name: value for name, value in (("gradient", args.adv_gradient), ("beta", args.adv_beta))
             if value is not None}
    try:
        return AdversarialConfig(args.adversarial, **options, **extra)
    except (TypeError, ValueError) as err:
        raise UsageError(f"--adversarial {args.adversarial}: {err}") from err


def check_train_args(args: argparse.Namespace) -> AdversarialConfig:
    """Everything that can be checked before the data are read and training starts; returns the adversarial
    training settings."""
    adversarial = adversarial_config(args)
    check_encoding(args.encoding, args.data)
    check_data_root(args.data, args.data_root, args.download)
    check_model_fits(args.model or dataset_info(args.data).default_model, args.data)
    return adversarial


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..files import atomic_path
    from ..training import DIGITS_PRESET, TrainConfig, train_model

    adversarial = check_train_args(args)
    device = device_arg(args.device)
    work_starts(args)
    base = DIGITS_PRESET if args.data == "digits" else TrainConfig()
    overrides = {k: v for k, v in dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                       max_batches=args.max_batches).items() if v is not None}
    config = replace(base, seed=args.seed, progress=not args.no_progress, device=str(local_device(device)),
                     adversarial=adversarial, **overrides)
    if not world().main:  # torchrun: every rank trains (DistributedDataParallel), rank 0 alone writes and prints
        train_model(args.model, args.data, args.data_root, args.download, T=args.T, encoding=args.encoding,
                    lam=args.lam, config=config)
        return 0
    with atomic_path(args.out) as partial:  # an interrupted run leaves no half-written checkpoint
        _, meta = train_model(args.model, args.data, args.data_root, args.download, T=args.T, encoding=args.encoding,
                              lam=args.lam, config=config, checkpoint=partial)
    kind = "clean training" if not adversarial.active else (
        f"{adversarial.method} adversarial training (ε={adversarial.eps:.4g}, {adversarial.steps} step(s) of "
        f"{adversarial.alpha:.4g}, {adversarial.gradient} gradient)")
    print(f"{kind}: clean test accuracy {100 * meta['accuracy']:.2f} %; checkpoint written to {args.out.resolve()}")
    return 0


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``sj-rga train`` and its options to the sub-command parsers ``sub``."""
    train = sub.add_parser(
        "train", formatter_class=HelpFormatter, help="train a reference model (the paper's recipe)",
        epilog="examples:\n"
               "  sj-rga train --data digits --out digits.pt                  # a target model (seconds)\n"
               "  sj-rga train --data digits --seed 1 --out digits_seed1.pt   # its black-box source\n"
               "  sj-rga train --data cifar10 --data-root ~/data --model vgg11 --lam 0.9 --epochs 200 --out vgg11.pt\n"
               "  sj-rga train --data digits --adversarial pgd --adv-eps 0.1 --adv-steps 10 --epochs 20 "
               "--out digits_at.pt   # PGD-AT, RGA inner gradient")
    add_common(train, checkpoint=False)
    train.add_argument("--out", required=True, type=output_file, help="checkpoint file to write")
    train.add_argument("--lam", type=leak, default=1.0, help="leak λ of the paper's neuron, in (0, 1] (1 = IF)")
    train.add_argument("-T", "--T", type=positive_int, help="time steps (default: the data set's)")
    train.add_argument("--encoding", choices=("direct", "poisson", "frames"))
    train.add_argument("--epochs", type=positive_int)
    train.add_argument("--lr", type=positive_float)
    train.add_argument("--max-batches", type=positive_int, help="cap batches per epoch (a quick run)")
    train.add_argument("--download", action="store_true", help="download CIFAR/CIFAR10-DVS into --data-root")
    adv = train.add_argument_group("adversarial training (method §4)")
    adv.add_argument("--adversarial", default="none", choices=ADVERSARIAL_METHODS,
                     help="fgsm: FGSM-AT with a random start (Wong et al. 2020); pgd: PGD-AT (Madry et al. 2018); "
                          "trades: TRADES (Zhang et al. 2019); default none (clean training)")
    adv.add_argument("--adv-eps", type=parse_eps, help="L∞ radius in input units: 8/255, 0.1, ...")
    adv.add_argument("--adv-steps", type=positive_int, help="inner PGD steps (fgsm: 1; pgd, trades: default 10)")
    adv.add_argument("--adv-alpha", type=parse_step,
                     help="inner step size (default 1.25·ε for fgsm, 2.5·ε/steps otherwise)")
    adv.add_argument("--adv-gradient", choices=NAMES, help="gradient of the inner maximisation (default rga)")
    adv.add_argument("--adv-beta", type=float, help="TRADES' weight of the KL term (default 6)")
    train.set_defaults(run=cmd_train, batch_size=None)
