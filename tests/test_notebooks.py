"""The example notebooks run top to bottom in their small mode, on the running interpreter's kernel."""
import json
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
KERNEL = "sj-rga-test-python"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A kernel spec that runs ``sys.executable`` (this venv), found first through JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "sj-rga test", "language": "python",
    }))
    return root


def test_the_three_notebooks_are_there_with_the_outputs_of_a_clean_run():
    """A reader sees results: every code cell ran, in order, with no error, no warning and no carriage-return
    progress bar in its output, and the first cell says which setting the saved outputs come from."""
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart_digits.ipynb", "02_cifar10dvs.ipynb",
                                           "03_zoo_rate_mode.ipynb"]
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert code and [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), path.name
        outputs = [o for cell in code for o in cell.outputs]
        assert outputs and not [o for o in outputs if o.output_type == "error"], path.name
        streams = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
        assert "Warning" not in streams and "\r" not in streams, path.name
        assert "saved outputs" in notebook.cells[0].source, path.name
        assert any('os.environ.get("SJ_RGA_NOTEBOOK_SMALL") == "1"' in cell.source for cell in code), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_small_mode_and_leaves_no_temporary_files(path, kernel_env, tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"  # the kernel's temporary folder
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_env))
    monkeypatch.setenv("SJ_RGA_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # small tensors: threads only contend on shared CI cores
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # plots as outputs
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name=KERNEL, timeout=120,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError when a cell fails; shuts the kernel down at the end
    left = [p.name for p in scratch.iterdir() if p.name.startswith("sj-rga")]
    assert not left, f"{path.name} left {left} in the temporary folder"
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
              if o.output_type == "error"]
    assert not errors
    assert any(o.output_type == "display_data" and "image/png" in o.get("data", {})
               for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs), "no plot shown"
    printed = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
                      if o.output_type == "stream")
    if path.stem == "03_zoo_rate_mode":  # the small setting must show a real result, not 0 % of a dead network
        asr = {name: float(value) for name, value in re.findall(r"'(STBP|RGA)': '([\d.]+) %", printed)}
        assert set(asr) == {"STBP", "RGA"} and all(0 < value < 100 for value in asr.values()), printed
        norms = [float(v) for v in re.findall(r"\|grad\| STBP ([\d.e+-]+), RGA ([\d.e+-]+)", printed)[0]]
        assert min(norms) > 1e-4, printed
