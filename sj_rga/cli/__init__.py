"""The ``sj-rga`` command: ``demo``, ``attack``, ``shuffle`` and ``train``.

Errors a user can fix (a missing data root, an unknown model, a malformed ε, a checkpoint that does not
fit, an unavailable device) end with one line on stderr and exit status 2, with no traceback.
One module per sub-command; the parser and the error handling live here.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from .attack import add_attack_parser
from .common import parse_eps, parse_eps_list
from .demo import add_demo_parser
from .errors import EXIT_USAGE, HelpFormatter, UsageError, _Parser
from .shuffle import add_shuffle_parser
from .train import add_train_parser

__all__ = ["main", "build_parser", "parse_eps", "parse_eps_list", "UsageError", "EXIT_USAGE"]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sj-rga", formatter_class=HelpFormatter,
                     description="Rate Gradient Approximation (RGA) attacks on SpikingJelly SNNs.",
                     epilog="example:\n  sj-rga demo                  # digits: shuffle test, STBP vs RGA, table + plots")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_demo_parser(sub)
    add_attack_parser(sub)
    add_shuffle_parser(sub)
    add_train_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except UsageError as err:
        print(f"sj-rga: error: {str(err).removeprefix('sj-rga: ')}", file=sys.stderr)
    except (ValueError, TypeError, FileNotFoundError, ImportError, RuntimeError) as err:
        if os.environ.get("SJ_RGA_DEBUG"):
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"sj-rga: error: {message}", file=sys.stderr)
    except KeyboardInterrupt:
        print("sj-rga: interrupted", file=sys.stderr)
    return EXIT_USAGE
