"""How the ``sj-rga`` command ends: a user's mistake, an interruption, or a bug.

- A mistake in the command line or in the files it names (:class:`UsageError`): one line on stderr,
  ``sj-rga <command>: error: <what is wrong and what is expected>``, exit status 2.
- Ctrl-C: one line, exit status 130 (128 + SIGINT, as shells report it); results are written atomically,
  so nothing half-written is left behind.
- An exception raised inside the user's own model (:class:`sj_rga.errors.UserModelError`) is the user's
  mistake too: one line naming the model's file and line, exit status 2.
- Anything else is a bug in sj-rga: a short traceback, how to report it, exit status 1.

``SJ_RGA_DEBUG=1`` lets every error propagate with its full Python traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from typing import Iterator, Optional, TextIO

EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEBUG_VARIABLE = "SJ_RGA_DEBUG"

#: Frames of the traceback shown for an internal error (the innermost ones); SJ_RGA_DEBUG=1 shows all.
SHORT_TRACEBACK_FRAMES = 4


class UsageError(Exception):
    """A mistake in the command line or in the files it names; reported in one line with exit status 2.

    ``prog`` is the command it belongs to (``"sj-rga attack"``); ``None`` lets :func:`sj_rga.cli.main` fill it in.
    """

    def __init__(self, message: str, prog: Optional[str] = None):
        super().__init__(message)
        self.prog = prog


def one_line(error: BaseException) -> str:
    """The error's message with its whitespace (newlines included) collapsed, or its type name when empty."""
    return " ".join(str(error).split()) or type(error).__name__


def debug_enabled() -> bool:
    """Whether ``SJ_RGA_DEBUG`` asks for full tracebacks (any value but empty, ``0``, ``false`` or ``no``)."""
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def user_mistakes(what: str, *types: type[BaseException]) -> Iterator[None]:
    """Re-raise exceptions of ``types`` from the block as a :class:`UsageError` ``"<what>: <message>"``.

    Wrap only calls that read what the user named (a checkpoint, a data root, a model name), so that a
    bug elsewhere still surfaces as an internal error.
    """
    try:
        yield
    except types as error:
        raise UsageError(f"{what}: {one_line(error)}") from error


def _write_whole(stream: Optional[TextIO], text: str) -> None:
    """Write ``text`` in one call and flush: the ranks of a torchrun job share one stderr, and a line written in
    pieces (``print`` writes the text, then the newline) can be spliced with another rank's."""
    stream = stream or sys.stderr
    stream.write(text)
    stream.flush()


def report_usage_error(prog: str, error: UsageError, stream: Optional[TextIO] = None) -> int:
    _write_whole(stream, f"{error.prog or prog}: error: {one_line(error)}\n")
    return EXIT_USAGE


def report_user_model_error(prog: str, error: BaseException, stream: Optional[TextIO] = None) -> int:
    """An exception raised inside the user's own model (:class:`sj_rga.errors.UserModelError`: its message
    names the model's file and line) is the user's to fix, not a bug in sj-rga: one line, exit status 2."""
    return report_usage_error(prog, UsageError(f"{one_line(error)}; check how the model is fed (-T, --encoding, "
                                               "--mean/--std, --data) against what it was built for"), stream)


def report_interrupt(prog: str, stream: Optional[TextIO] = None) -> int:
    _write_whole(stream, f"{prog}: interrupted; no results were written\n")
    return EXIT_INTERRUPTED


def report_internal_error(prog: str, error: BaseException, version: str, stream: Optional[TextIO] = None) -> int:
    """A short traceback (the innermost frames) and how to report the bug."""
    frames = traceback.format_tb(error.__traceback__)[-SHORT_TRACEBACK_FRAMES:]
    _write_whole(stream, f"{prog}: internal error: {type(error).__name__}: {one_line(error)}\n"
                         "Traceback (innermost frames):\n"
                         f"{''.join(frames).rstrip()}\n"
                         f"This is a bug in sj-rga {version}, not a mistake in the command line. Please report it "
                         f"to the sj-rga maintainers with the command you ran and the full traceback "
                         f"({DEBUG_VARIABLE}=1 {prog} ...).\n")
    return EXIT_INTERNAL


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other usage error
        raise UsageError(message, prog=self.prog)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    pass
