"""``sj-rga demo``: the paper's experiments on digits, no network."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .common import add_output_dir, add_threads, chance_warnings, output_dir, results_header, work_starts
from .errors import HelpFormatter, UsageError


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import BATCH_SIZE, DemoSettings, default_cache_dir, run_demo
    from ..experiment import GRADIENTS
    from ..report import format_table, write_results

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    cache = args.cache_dir
    if cache is None:
        try:
            cache = output_dir(str(default_cache_dir()))
        except argparse.ArgumentTypeError as error:
            raise UsageError(f"the model cache ($SJ_RGA_CACHE or ~/.cache/sj-rga): {error}; "
                             "set SJ_RGA_CACHE or pass --cache-dir") from None
    work_starts(args)
    started = time.perf_counter()
    rows, sweeps, extra = run_demo(settings, cache, progress=not args.no_progress,  # stage lines with the time
                                   log=lambda m: print(f"[sj-rga {time.perf_counter() - started:4.0f} s] {m}",
                                                       file=sys.stderr, flush=True))
    shuffle = extra["shuffle_test"]
    print(f"Spike shuffle test (digits_snn, IF, T=8): clean accuracy {100 * shuffle['clean_accuracy']:.2f} %, "
          f"shuffled {100 * shuffle['shuffled_accuracy']:.2f} %")
    print(format_table(rows))
    args.data = "digits"
    extra["warnings"] = chance_warnings(args, [(r.clean_accuracy, r.samples) for r in rows])
    header = results_header(args, None, extra.pop("seeds"), BATCH_SIZE, GRADIENTS)
    written = write_results(args.out, rows, sweeps, extra, header=header)
    print(f"Results written to {Path(args.out).resolve()} ({', '.join(p.name for p in written)}) "
          f"in {extra['seconds']:.0f} s")
    return 0


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``sj-rga demo`` and its options to the sub-command parsers ``sub``."""
    demo = sub.add_parser("demo", formatter_class=HelpFormatter, help="the paper's experiments on digits, no network",
                          epilog="example:\n  sj-rga demo --out results/demo")
    add_output_dir(demo, "demo")
    demo.add_argument("--cache-dir", type=output_dir,
                      help="where trained models are kept (default $SJ_RGA_CACHE, else ~/.cache/sj-rga)")
    demo.add_argument("--quick", action="store_true", help="a smaller, faster setting (used in CI)")
    demo.add_argument("--no-progress", action="store_true")
    add_threads(demo)
    demo.set_defaults(run=cmd_demo)
