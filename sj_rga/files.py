"""Files that are never seen half-written, and strict JSON: what every results file, checkpoint and run
folder of sj-rga is written with."""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Union

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: Union[str, Path]) -> Iterator[Path]:
    """A temporary path beside ``path`` (with the permissions ``open()`` would give) that is moved onto
    ``path`` (``os.replace``) when the block succeeds and removed when it fails or is interrupted: readers
    never see a half-written file. The parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes it private
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomically(path: Union[str, Path], text: str) -> Path:
    """Write ``text`` to ``path`` through :func:`atomic_path`, flushed to disk before it is moved in."""
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    return Path(path)


def json_ready(value: Any) -> Any:
    """Plain JSON values: tuples as lists, keys as strings, NaN and ±inf as None (JSON null: e.g. an ASR
    with no sample to measure on), so that ``allow_nan=False`` holds and a value read back compares equal."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(document: Any) -> str:
    """Strict JSON (``allow_nan=False``), indented: NaN and infinities are written as null."""
    return json.dumps(json_ready(document), indent=2, allow_nan=False)


def write_json(path: Union[str, Path], value: Any) -> Path:
    """:func:`write_atomically` of :func:`to_json` ``(value)``."""
    return write_atomically(path, to_json(value) + "\n")
