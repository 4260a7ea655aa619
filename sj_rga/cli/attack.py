"""``sj-rga attack``: FGSM or PGD on a checkpoint, white-box and black-box, per gradient."""
from __future__ import annotations

import argparse

from ..distributed import world
from ..gradients import NAMES as GRADIENT_NAMES
from .checks import check_model_takes_sample, check_normalisation, first_sample, model_label
from .common import (
    add_common,
    add_output_dir,
    chance_warnings,
    check_data_root,
    check_encoding,
    check_eps_in_range,
    dataset_info,
    device_arg,
    load_model,
    parse_eps_list,
    parse_step,
    positive_int,
    results_header,
    test_data,
    work_starts,
)
from .errors import HelpFormatter, UsageError, user_mistakes


def check_attack_args(args: argparse.Namespace) -> None:
    """What the parser cannot see alone: ε against the input range, the encoding against the data."""
    check_eps_in_range("--eps", args.eps, args.data, "Linf", args.bounds)
    if args.alpha is not None:
        check_eps_in_range("--alpha", [args.alpha], args.data, "Linf", args.bounds)
    check_normalisation(args, dataset_info(args.data).in_channels)
    check_encoding(args.encoding, args.data)
    if args.time_extension > 1 and (args.encoding == "frames" or
                                    (args.encoding is None and args.data == "cifar10dvs")):
        raise UsageError(f"--time-extension {args.time_extension} needs image input: event frames have a fixed "
                         "number of time steps")
    check_data_root(args.data, args.data_root)


def cmd_attack(args: argparse.Namespace) -> int:
    from ..checkpoints import classifier_from_meta
    from ..experiment import AttackSpec, attack_row
    from ..report import format_table, sweep, write_results

    check_attack_args(args)
    device = device_arg(args.device)
    model, meta = load_model(args.checkpoint, args.model, args.data, device, args)
    source, source_name = None, None
    if args.source:
        source_model, source_meta = load_model(args.source, None, args.data, device)
        with user_mistakes(f"--source {args.source}", ValueError):
            source = classifier_from_meta(source_model, source_meta, T=args.T, eot=args.eot, seed=args.seed)
        source_name = f"{source_meta['model']['name']} from {args.source}"
    if args.encoding and args.encoding != meta["input"]["encoding"]:
        meta = {**meta, "input": {**meta["input"], "encoding": args.encoding}}
    with user_mistakes(model_label(args), ValueError):  # e.g. a model with no spiking neuron
        target = classifier_from_meta(model, meta, T=args.T, eot=args.eot, seed=args.seed)
    data = test_data(args, frames=target.T)
    sample, classes = first_sample(data), dataset_info(args.data).num_classes
    check_model_takes_sample(target, sample, args, classes, device)
    if source is not None:
        check_model_takes_sample(source, sample, argparse.Namespace(checkpoint=args.source, data=args.data),
                                 classes, device)
    work_starts(args)
    rows = [attack_row(target, source, AttackSpec(args.attack, eps, args.steps, args.alpha, args.seed), data,
                       architecture=meta["model"]["name"], dataset=args.data, lam=meta["model"].get("lam", 1.0),
                       time_extension=args.time_extension, gradients=tuple(args.gradient), device=device,
                       progress=not args.no_progress, source_name=source_name)
            for eps in args.eps]
    if not world().main:  # torchrun: every rank attacks its batches (sj_rga.evaluate gathers); rank 0 writes
        return 0
    print(format_table(rows))
    warnings = chance_warnings(args, [(r.clean_accuracy, r.samples) for r in rows])
    sweeps = {}
    if len(rows) > 1:
        units = "event counts" if target.encoding == "frames" else "pixel space, images in [0, 1]"
        sweeps["asr_vs_eps"] = sweep(sorted(rows, key=lambda r: r.eps), "eps", f"ε ({units})")
    header = results_header(args, device, {"poisson_input_and_pgd_start": args.seed}, args.batch_size, args.gradient)
    write_results(args.out, rows, sweeps, {"checkpoint": args.checkpoint, "source": args.source,
                                           "warnings": warnings}, header=header)
    print(f"Results written to {args.out.resolve()}")
    return 0


def add_attack_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``sj-rga attack`` and its options to the sub-command parsers ``sub``."""
    attack = sub.add_parser(
        "attack", formatter_class=HelpFormatter, help="attack a checkpoint or reference model",
        epilog="examples:\n"
               "  sj-rga attack --checkpoint digits.pt --source digits_seed1.pt --attack pgd --eps 0.1 --steps 10\n"
               "  sj-rga attack --checkpoint vgg11.pt --data cifar10 --data-root ~/data --attack pgd --eps 8/255 "
               "--steps 10 --gradient stbp rga --source vgg11_b.pt --time-extension 2")
    add_common(attack, user_model=True)
    attack.add_argument("--attack", default="fgsm", choices=("fgsm", "pgd"))
    attack.add_argument("--gradient", nargs="+", default=["stbp", "rga"], choices=GRADIENT_NAMES,
                        help="input-gradient estimators (method §2), each with its published defaults")
    attack.add_argument("--eps", type=parse_eps_list, default=[0.1],
                        help="ε in input units (pixel space: images in [0, 1]): 8/255, 0.03, or a list 2/255,4/255")
    attack.add_argument("--steps", type=positive_int, default=10, help="PGD steps")
    attack.add_argument("--alpha", type=parse_step, help="PGD step size in input units (default 2.5·ε/steps)")
    attack.add_argument("-T", "--T", type=positive_int, help="time steps (default: the checkpoint's)")
    attack.add_argument("--time-extension", type=positive_int, default=1,
                        help="craft with k·T steps, evaluate with T (the paper's TE 2x: 2)")
    attack.add_argument("--encoding", choices=("direct", "poisson", "frames"), help="default: the checkpoint's")
    attack.add_argument("--eot", type=positive_int, default=1, help="Poisson samples averaged per gradient")
    attack.add_argument("--source", help="checkpoint of a separately trained source model (black-box)")
    attack.add_argument("--limit", type=positive_int, help="attack only the first N test samples")
    add_output_dir(attack, "attack")
    attack.set_defaults(run=cmd_attack)
