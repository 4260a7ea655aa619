"""The ``sj-rga`` command: ``demo``, ``attack``, ``shuffle``, ``train`` and ``evaluate``.

Errors a user can fix (a bad argument, a missing data root, an unknown model, a checkpoint that does not
fit, an unwritable ``--out``, an unavailable device) end with one line on stderr and exit status 2,
before any work starts where they can be seen then. Ctrl-C ends with one line and exit status 130.
Anything else is a bug: a short traceback and exit status 1 (``SJ_RGA_DEBUG=1``: the full traceback).
One module per sub-command; the parser and the error handling live here.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from typing import Optional, Sequence

import torch

from ..distributed import launched_size, session
from ..errors import UserModelError
from ..version import __version__
from .attack import add_attack_parser
from .common import configure_threads, parse_eps, parse_eps_list
from .demo import add_demo_parser
from .errors import (
    DEBUG_VARIABLE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    HelpFormatter,
    UsageError,
    _Parser,
    debug_enabled,
    report_internal_error,
    report_interrupt,
    report_usage_error,
    report_user_model_error,
)
from .evaluate import add_evaluate_parser
from .shuffle import add_shuffle_parser
from .train import add_train_parser

__all__ = ["main", "build_parser", "parse_eps", "parse_eps_list", "UsageError", "EXIT_USAGE", "EXIT_INTERNAL",
           "EXIT_INTERRUPTED"]

PROG = "sj-rga"

#: The sub-commands that split their work over the ranks of a ``torchrun`` job (see :mod:`sj_rga.distributed`).
DISTRIBUTED_COMMANDS = ("train", "attack", "evaluate", "shuffle")

EPILOG = f"""\
a digits workflow (no network; seconds to minutes on a CPU):
  sj-rga demo                                            # everything below at once: table + plots
  sj-rga train --data digits --out digits.pt             # the target model
  sj-rga train --data digits --seed 1 --out digits_seed1.pt   # an independently trained black-box source
  sj-rga attack --checkpoint digits.pt --source digits_seed1.pt --attack pgd --eps 0.1 --steps 10
  sj-rga shuffle --checkpoint digits.pt                  # is it rate coded?

Each sub-command's --help has its own examples.

environment:
  {DEBUG_VARIABLE}=1     show the full Python traceback of any error (for bug reports)
  SJ_RGA_CACHE=DIR   where `sj-rga demo` keeps its trained models (default ~/.cache/sj-rga)

exit status: 0 done, 1 internal error (a bug: please report it), 2 a mistake in the command line or its
files (one line on stderr), 130 interrupted (Ctrl-C; nothing half-written is left)."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, formatter_class=HelpFormatter, epilog=EPILOG,
                     description="Rate Gradient Approximation (RGA) attacks on SpikingJelly SNNs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_demo_parser(sub)
    add_attack_parser(sub)
    add_shuffle_parser(sub)
    add_train_parser(sub)
    add_evaluate_parser(sub)
    return parser


def overview(parser: argparse.ArgumentParser) -> str:
    """What bare ``sj-rga`` prints: the usage, the sub-commands with one line each, and where to start."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    width = max(len(choice.dest) for choice in commands._choices_actions)
    lines = [f"  {choice.dest.ljust(width)}  {choice.help}" for choice in commands._choices_actions]
    return (parser.format_usage() + "\nsub-commands:\n" + "\n".join(lines) + "\n\n"
            f"Start with `{PROG} demo` (the paper's experiments on digits, no network); `{PROG} <sub-command> --help` "
            "shows its options and examples.\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``sj-rga`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    prog = PROG
    threads = torch.get_num_threads()  # main() called in-process (tests, notebooks) leaves torch's threads as found
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser()
        if not argv:  # no sub-command: what there is and where to start, not only "arguments are required"
            sys.stderr.write(overview(parser))
            return EXIT_USAGE
        args = parser.parse_args(argv)
        args.command_line = shlex.join([PROG, *argv])  # recorded beside the results
        prog = f"{PROG} {args.command}"
        if launched_size() > 1 and args.command not in DISTRIBUTED_COMMANDS:
            raise UsageError(f"{prog} does not run under torchrun (WORLD_SIZE={launched_size()}): run it as one "
                             f"process; {', '.join(DISTRIBUTED_COMMANDS)} split their work over the ranks")
        configure_threads(args, prog)
        with session(getattr(args, "device", "cpu")):  # torchrun: join the job (gloo on CPUs, nccl on GPUs)
            return args.run(args)
    except UsageError as error:
        if debug_enabled():
            raise
        return report_usage_error(prog, error)
    except UserModelError as error:  # the user's model raised on the input it was given: theirs to fix
        if debug_enabled():
            raise
        return report_user_model_error(prog, error)
    except KeyboardInterrupt:
        return report_interrupt(prog)
    except Exception as error:
        if debug_enabled():
            raise
        return report_internal_error(prog, error, __version__)
    finally:
        torch.set_num_threads(threads)
