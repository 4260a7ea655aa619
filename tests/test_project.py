"""Project basics a user and a packager rely on: licence, changelog, version, typing marker, lint, README."""
import ast
import configparser
import importlib
import importlib.util
import re
from importlib.metadata import version
from pathlib import Path

import sj_rga

ROOT = Path(__file__).resolve().parents[1]


def _setup() -> configparser.ConfigParser:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    return setup


def test_licence_file_matches_setup_cfg():
    assert _setup()["metadata"]["license"].strip() == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text
    assert "LICENSE" in _setup()["metadata"]["license_files"]


def test_changelog_has_unreleased_and_the_first_release():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(r"^## \[Unreleased\]", text, re.M)
    assert re.search(rf"^## \[{re.escape(sj_rga.__version__)}\] - \d{{4}}-\d\d-\d\d", text, re.M)


def test_version_is_set_in_one_place_and_py_typed_ships():
    setup = _setup()
    module, _, name = setup["metadata"]["version"].strip().removeprefix("attr:").strip().rpartition(".")
    assert module == "sj_rga.version"  # its own module: reading it imports nothing else of the package
    assert getattr(importlib.import_module(module), name) == sj_rga.__version__ == version("sj-rga")
    assert "py.typed" in setup["options.package_data"]["sj_rga"] and (ROOT / "sj_rga" / "py.typed").is_file()


def _face_imports(path: Path) -> list[str]:
    """The imports in ``path`` (a module of sj_rga) that read names from the package face ``sj_rga``."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1] if path.name != "__init__.py"
                       else path.relative_to(ROOT).parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name == "sj_rga"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            if base == "sj_rga":
                found += [f"sj_rga.{alias.name}" for alias in node.names
                          if importlib.util.find_spec(f"sj_rga.{alias.name}") is None]
    return found


def test_no_module_inside_the_package_imports_the_package_face():
    offenders = {str(path.relative_to(ROOT)): names for path in sorted((ROOT / "sj_rga").rglob("*.py"))
                 if (names := _face_imports(path))}
    assert offenders == {}


def test_spikingjelly_is_bounded_below_its_next_minor_release():
    requirements = _setup()["options"]["install_requires"].split()
    assert "spikingjelly>=0.0.0.0.14,<2.1" in requirements
    assert "spikingjelly==2.1" in (ROOT / "README.md").read_text()  # how to try a newer release


def test_ruff_is_configured_and_run_in_ci():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "[tool.ruff]" in pyproject and "line-length = 120" in pyproject
    assert re.search(r"^ruff check \.$", (ROOT / ".ci" / "run").read_text(), re.M)


def test_readme_starts_with_the_two_set_up_commands_and_documents_the_basics():
    text = (ROOT / "README.md").read_text()
    first_block = text.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert first_block == ['pip install . && sj-rga demo', 'pip install ".[test]" && python -m pytest -q']
    for needed in ("SJ_RGA_DEBUG", "docs/method.md", "LICENSE", "CHANGELOG.md"):
        assert needed in text, needed
    assert (ROOT / "docs" / "method.md").is_file()


def test_readme_states_what_importing_sj_rga_wraps():
    from spikingjelly.activation_based import neuron

    for cls in (neuron.IFNode, neuron.LIFNode, neuron.ParametricLIFNode):
        for method in ("multi_step_forward", "single_step_forward"):
            assert getattr(getattr(cls, method), "__sj_rga_original__", None) is not None, (cls, method)
    text = " ".join((ROOT / "README.md").read_text().split())
    assert "Importing `sj_rga` wraps `multi_step_forward` and `single_step_forward` of SpikingJelly's `IFNode`, " \
           "`LIFNode` and `ParametricLIFNode`" in text
    assert "mean input current over the whole time window" in text  # and why


def test_readme_says_where_the_model_cache_lives_and_how_cuda_kernels_are_chosen(monkeypatch, tmp_path):
    from sj_rga.demo import default_cache_dir

    text = " ".join((ROOT / "README.md").read_text().split())
    monkeypatch.delenv("SJ_RGA_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "sj-rga"
    assert "`~/.cache/sj-rga`" in text and "`$SJ_RGA_CACHE`" in text and "`$XDG_CACHE_HOME/sj-rga`" in text
    assert "opt-in with `SJ_RGA_BACKEND=cupy`" in text
    assert "the demo needs about 2 minutes of one core" in text  # measured, in benchmarks/RESULTS.md
    assert "How long `sj-rga demo` takes" in (ROOT / "benchmarks" / "RESULTS.md").read_text()
