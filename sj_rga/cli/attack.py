"""``sj-rga attack``: FGSM or PGD on a checkpoint, white-box and black-box, per gradient."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    add_common,
    default_out,
    device_arg,
    load_model,
    parse_eps,
    parse_eps_list,
    test_data,
)
from .errors import HelpFormatter


def cmd_attack(args: argparse.Namespace) -> int:
    from ..experiment import AttackSpec, attack_row, classifier_from_meta
    from ..report import format_table, write_results

    device = device_arg(args.device)
    model, meta = load_model(args.checkpoint, args.model, args.data, device)
    source = None
    if args.source:
        source_model, source_meta = load_model(args.source, None, args.data, device)
        source = classifier_from_meta(source_model, source_meta, T=args.T, eot=args.eot, seed=args.seed)
    if args.encoding and args.encoding != meta["input"]["encoding"]:
        meta = {**meta, "input": {**meta["input"], "encoding": args.encoding}}
    target = classifier_from_meta(model, meta, T=args.T, eot=args.eot, seed=args.seed)
    data = test_data(args, meta)
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
    out = Path(args.out) if args.out else default_out("attack")
    write_results(out, rows, sweeps, {"checkpoint": args.checkpoint, "source": args.source})
    print(f"Results written to {out.resolve()}")
    return 0


def add_attack_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``sj-rga attack`` and its options to the sub-command parsers ``sub``."""
    attack = sub.add_parser("attack", formatter_class=HelpFormatter, help="attack a checkpoint or reference model",
                            epilog="example:\n  sj-rga attack --checkpoint vgg11.pt --data cifar10 --data-root ~/data "
                                   "--attack pgd --eps 8/255 --steps 10 --gradient stbp rga --source vgg11_b.pt")
    add_common(attack)
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
