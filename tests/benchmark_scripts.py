"""Run a script of ``benchmarks/`` or ``examples/`` as a user runs it (``python benchmarks/<name> ...``) for its smoke
test."""
import contextlib
import io
import os
import runpy
import subprocess
import sys
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, *args: str, timeout: int = 600, **env: str) -> str:
    """stdout of ``python benchmarks/<name> args...``, which must exit 0.

    With ``env`` (settings a process reads when it starts, such as the allocator's), the script runs in a
    process of its own with ``env`` added to the environment and one torch thread, and its stderr's tail is
    shown on failure. Without, it runs in this process (:func:`run_in_process`), sparing the start-up of a new
    interpreter (importing torch and SpikingJelly, and SpikingJelly's registration of its operators on a
    neuron's first call: about 6 s on a 2-core machine)."""
    script = BENCHMARKS / name
    if env:
        done = subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1", **env})
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout
    return run_in_process(script, *args)


def run_in_process(script: Path, *args: str) -> str:
    """stdout of ``python script args...`` run in this process (``runpy``, as ``__main__``, the script's folder
    first on ``sys.path``, the same ``argv``), which must exit 0; ``argv``, ``sys.path`` and torch's thread count
    are restored afterwards."""
    argv, path, threads = sys.argv, list(sys.path), torch.get_num_threads()
    sys.argv, sys.path[:0] = [str(script), *map(str, args)], [str(script.parent)]
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            runpy.run_path(str(script), run_name="__main__")
    except SystemExit as stop:
        assert stop.code in (0, None), f"{script.name} exited with {stop.code}: {printed.getvalue()[-3000:]}"
    finally:
        sys.argv, sys.path[:] = argv, path
        torch.set_num_threads(threads)
    return printed.getvalue()
