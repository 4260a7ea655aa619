"""The one 2-rank torchrun job of the test suite, and the checkpoints it works on.

torchrun's start-up (two processes importing torch and sj_rga, a gloo group) costs several seconds: the 2-rank
checks of tests/test_distributed.py, tests/test_engine.py and tests/test_layouts_cli.py therefore run in one job
(tests/distributed_worker.py's "shared" task: library calls and ``sj-rga`` commands by the CLI's own entry point),
started once per test session by the first test that needs it (the session fixtures ``two_rank_job``,
``poisson_checkpoint`` and ``digits_checkpoint_t4`` of tests/conftest.py); each test then compares its part of the
job's outputs with one process's results. What the launcher itself does (``torchrun -m sj_rga``, a failing rank, an
error on every rank) is tested by real launches in tests/test_distributed.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
from distributed_worker import STYLES_MODULE

WORKER = Path(__file__).with_name("distributed_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
#: The factories of tests/test_layouts_cli.py's user models (a static-input model and a batch-first model
#: returning ``(logits, hook)``), written as a module of the user's.
USER_MODULE = textwrap.dedent('''
    import torch
    from model_styles import BatchFirstSNN, StaticInputSNN


    def static(T=3):
        torch.manual_seed(0)
        return StaticInputSNN(T).double().float()


    def batch_first():
        torch.manual_seed(0)
        return BatchFirstSNN()
''')

def torchrun(*args, nproc=2, timeout=240) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=nproc ...`` (as ``python -m torch.distributed.run``)."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={nproc}", *map(str, args)],
                          capture_output=True, text=True, env=ENV, timeout=timeout)


def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory, name: str, encoding: Optional[str]) -> Path:
    """digits_snn trained for two epochs (T = 4; about 80 % test accuracy) on ``encoding`` input (None: the default,
    direct), as a checkpoint."""
    from sj_rga.training import TrainConfig, train_model

    path = tmp_path_factory.mktemp(name) / f"{name}.pt"
    train_model("digits_snn", "digits", T=4, encoding=encoding,
                config=TrainConfig(epochs=2, batch_size=32, progress=False, device="cpu"), checkpoint=path)
    return path


@dataclass(frozen=True)
class Job:
    """The shared job: ``folder`` holds each part's outputs (see tests/distributed_worker.py's ``shared``),
    ``styles`` the folder of its user-model module (distributed_worker.STYLES_MODULE)."""

    folder: Path
    styles: Path
    returncode: int
    stderr: str

    def printed(self, name: str) -> str:
        """What command ``name`` printed on stdout, rank 0's then rank 1's (torchrun's stdout of the command)."""
        return "".join((self.folder / "printed" / f"{name}.rank{rank}.out").read_text() for rank in (0, 1))


def launch(tmp_path_factory: pytest.TempPathFactory, poisson: Path, digits: Path) -> Job:
    """Run the shared job on the two checkpoints; fails, with the ranks' errors, if the job failed."""
    folder = tmp_path_factory.mktemp("shared_job")
    styles = tmp_path_factory.mktemp("styles")
    (styles / f"{STYLES_MODULE}.py").write_text(USER_MODULE)
    try:
        done = torchrun(WORKER, "shared", folder, poisson, digits, styles, timeout=600)
        job = Job(folder, styles, done.returncode, done.stderr)
    except subprocess.TimeoutExpired as expired:
        tail = expired.stderr.decode() if isinstance(expired.stderr, bytes) else expired.stderr or ""
        job = Job(folder, styles, -1, f"the job ran past {expired.timeout} s\n{tail}")
    failed = "".join(f"{path.name}:\n{path.read_text()}" for path in sorted(folder.glob("failed.rank*.txt")))
    assert job.returncode == 0, f"the shared 2-rank job failed:\n{failed}\n{job.stderr[-3000:]}"
    return job
