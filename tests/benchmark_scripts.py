"""Run a script of ``benchmarks/`` as a user runs it (``python benchmarks/<name> ...``) for its smoke test."""
import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, *args: str, timeout: int = 600, **env: str) -> str:
    """stdout of ``python benchmarks/<name> args...``, which must exit 0 (else its stderr's tail is shown);
    ``env`` is added to the environment (one torch thread unless it says otherwise)."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / name), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1", **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
