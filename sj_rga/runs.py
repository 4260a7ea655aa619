"""Resumable runs: per-batch results under one folder, written atomically, bound to the run's arguments.

A run folder holds ``run.json`` (the arguments that determine the results) and ``batches/NNNNNN.json``
(one file per finished batch, with explicit per-sample records). Every file is written to a temporary
file in the same folder and moved into place with ``os.replace``, so a file is either complete or absent:
a run killed at any moment (SIGINT, kill -9) loses at most the batch it was working on, and started again
with the same arguments it skips the finished batches. The folder is claimed (``run.json`` written) with
its first finished batch: a run that failed or was stopped before it finished one leaves nothing that binds
the folder, and any later run takes it. A folder holding finished batches of a run with other arguments is
refused. Every random draw is seeded per sample (:mod:`sj_rga.seeding`), so a resumed run gives the same
results as an uninterrupted one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Union

from .files import json_ready, write_json

RUN_FORMAT = "sj-rga-run-1"
RUN_FILE = "run.json"
BATCH_FOLDER = "batches"


def _differences(stored: dict, wanted: dict) -> list[str]:
    keys = sorted(set(stored) | set(wanted))
    return [f"{k}: {stored.get(k)!r} there, {wanted.get(k)!r} now" for k in keys if stored.get(k) != wanted.get(k)]


class RunFolder:
    """A run's folder: ``RunFolder(folder, arguments)`` opens it for a run with ``arguments`` (a dict of plain
    values) and raises ValueError when it holds finished batches of a run with other arguments, or files
    sj-rga did not write. Nothing is written before :meth:`save_batch`: the first one claims the folder."""

    def __init__(self, folder: Union[str, Path], arguments: dict[str, Any]):
        self.folder = Path(folder)
        self.arguments = json_ready(arguments)
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"{self.folder} is a file, not a folder for the run's results")
        run_file = self.folder / RUN_FILE
        self.claimed = False
        if run_file.is_file():
            try:
                stored = json.loads(run_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise ValueError(f"{run_file} is not readable ({err}); use another output folder") from err
            if not isinstance(stored, dict) or stored.get("format") != RUN_FORMAT:
                raise ValueError(f"{self.folder} holds a {RUN_FILE} that sj-rga did not write; use another "
                                 "output folder")
            self.claimed = stored.get("arguments") == self.arguments
            if not self.claimed and self._batch_files():
                changed = "; ".join(_differences(stored.get("arguments") or {}, self.arguments))
                raise ValueError(f"{self.folder} holds the results of a run with other arguments ({changed}); "
                                 "use another output folder, or the same arguments to resume that run")
        elif self._batch_files():
            raise ValueError(f"{self.folder} holds batch results without {RUN_FILE}; use another output folder")

    def _batch_files(self) -> list[Path]:
        return sorted((self.folder / BATCH_FOLDER).glob("[0-9]*.json"))

    def _batch_path(self, index: int) -> Path:
        return self.folder / BATCH_FOLDER / f"{index:06d}.json"

    def finished(self) -> dict[int, dict[str, Any]]:
        """The records of the finished batches, by batch index (none unless the folder is this run's)."""
        records = {}
        for path in self._batch_files() if self.claimed else []:
            record = json.loads(path.read_text(encoding="utf-8"))
            records[int(record["batch"])] = record
        return records

    def save_batch(self, index: int, record: dict[str, Any]) -> Path:
        """Write one batch's record (a dict of plain values) atomically; the first claims the folder
        (``run.json``)."""
        if not self.claimed:
            write_json(self.folder / RUN_FILE, {"format": RUN_FORMAT, "arguments": self.arguments})
            self.claimed = True
        return write_json(self._batch_path(index), {"batch": int(index), **record})
