"""Progress that a person can read wherever stderr goes.

On a terminal, a tqdm bar (redrawn in place with carriage returns). Anywhere else (a log file, a pipe, a
notebook, CI) a bar's redraws pile up as thousands of carriage-return fragments, and tqdm's notebook bar
needs ipywidgets; there :class:`LineProgress` writes whole lines instead, ``desc: k/n units (p %), t s``,
at most one every :data:`LINE_INTERVAL` seconds, and a last line with the total time when ``leave``.
Every loop of sj-rga that shows progress goes through :func:`progress_bar`.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Iterable, Iterator, Optional, TextIO

#: Seconds between two progress lines when stderr is not a terminal.
LINE_INTERVAL = 30.0


class LineProgress:
    """tqdm's interface (iteration, ``update``, ``set_postfix``, ``close``, a context manager) writing whole
    lines: one when at least ``interval`` seconds passed since the last, and one at the end (``leave``)."""

    def __init__(self, iterable: Optional[Iterable] = None, total: Optional[int] = None, desc: str = "",
                 unit: str = "it", initial: int = 0, leave: bool = True, disable: bool = False,
                 interval: float = LINE_INTERVAL, file: Optional[TextIO] = None, **_: Any):
        self.iterable, self.desc, self.unit, self.leave, self.disable = iterable, desc, unit, leave, disable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n, self.initial, self.interval = total, initial, initial, interval
        self.file = file
        self.postfix = ""
        self.started = self.last = time.monotonic()
        self.closed = False

    def _line(self, final: bool = False) -> str:
        units = self.unit if self.unit in ("it", "") or self.unit.endswith("s") else f"{self.unit}s"
        count = f"{self.n}/{self.total} {units}" if self.total else f"{self.n} {units}"
        if self.total and not final:
            count += f" ({100 * self.n / self.total:.0f} %)"
        elapsed = time.monotonic() - self.started
        timing = f"done in {elapsed:.0f} s" if final else f"{elapsed:.0f} s"
        return f"{self.desc}: {count}, {timing}{f'; {self.postfix}' if self.postfix else ''}\n"

    def _write(self, final: bool = False) -> None:
        stream = self.file or sys.stderr
        stream.write(self._line(final))
        stream.flush()
        self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.disable and time.monotonic() - self.last >= self.interval:
            self._write()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if not self.closed and not self.disable and self.leave and self.n > self.initial:
            self._write(final=True)
        self.closed = True

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_terminal(stream: Optional[TextIO] = None) -> bool:
    """Whether ``stream`` (default stderr) is an interactive terminal."""
    stream = stream or sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_bar(iterable: Optional[Iterable] = None, **options: Any):
    """A tqdm bar on a terminal, a :class:`LineProgress` elsewhere; ``options`` as tqdm's (``total``, ``desc``,
    ``unit``, ``initial``, ``leave``, ``disable``)."""
    if is_terminal():
        from tqdm.std import tqdm  # the plain bar: tqdm.auto's notebook bar needs ipywidgets

        return tqdm(iterable, **options)
    return LineProgress(iterable, **options)
