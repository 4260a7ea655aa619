"""Project basics a user and a packager rely on: licence, changelog, version, typing marker, and a README whose
commands are the ones CI runs, whose Python snippets run and whose paths exist. (Lint: CI runs ruff.)"""
import ast
import configparser
import importlib
import importlib.util
import re
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

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


def test_spikingjelly_is_bounded_below_its_next_minor_release_and_the_readme_says_how_to_pass_it():
    from packaging.specifiers import SpecifierSet

    requirement = next(r for r in _setup()["options"]["install_requires"].split() if r.startswith("spikingjelly"))
    bound = SpecifierSet(requirement.removeprefix("spikingjelly"))
    assert "0.0.0.0.14" in bound and "2.0.0" in bound and "2.1.0" not in bound
    newer = re.search(r'pip install --no-deps "spikingjelly==([^"]+)"', (ROOT / "README.md").read_text())
    assert newer and "2.1.0" in SpecifierSet(f"=={newer[1]}")  # the README's command installs past the bound


def _ci_test_command() -> str:
    """The test command ``.ci/run`` takes from the README (its own shell line, run here)."""
    line = next(line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("test_command="))
    done = subprocess.run(["bash", "-c", f'{line}; printf %s "$test_command"'], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return done.stdout


def test_the_readme_starts_with_the_install_and_the_test_command_that_ci_runs():
    text = (ROOT / "README.md").read_text()
    install, test = text.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert _ci_test_command() == test  # CI runs the README's own test command ...
    assert test.endswith("python -m pytest -q") and ".ci-venv14/bin/activate && " in (ROOT / ".ci" / "run").read_text()
    # ... and again under SpikingJelly 0.0.0.0.14, in the environment layered over the first
    pip, demo = install.split(" && ")
    assert pip == "pip install ." and _setup()["options.entry_points"]["console_scripts"].split() == [
        "sj-rga", "=", "sj_rga.cli:main"]
    program, *arguments = demo.split()
    from sj_rga.cli import build_parser

    assert program == "sj-rga" and build_parser().parse_args(arguments).command == "demo"


def test_every_repository_path_the_readme_names_exists():
    named = set(re.findall(r"`([\w.-]+(?:/[\w.-]+)+)`", (ROOT / "README.md").read_text()))
    paths = {name for name in named if not name.startswith(("~", "$"))}
    assert paths and [name for name in sorted(paths) if not (ROOT / name).exists()] == []


#: What the README's Python snippets leave for the reader to fill in, and what this test fills in instead
#: (a small model and input; one training batch instead of 30 epochs).
README_PLACEHOLDERS = {
    "net = ...  # any SpikingJelly model in multi-step mode ([T, B, ...] inputs)": "net = model",
    "epochs=30,": "epochs=1, max_batches=1,",
}


def test_the_readme_python_snippets_run(tmp_path, monkeypatch):
    import torch

    from sj_rga import models

    snippets = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)
    assert snippets
    text = "\n".join(snippets)
    assert [p for p in README_PLACEHOLDERS if p not in text] == [], "a README snippet changed: update this test"
    monkeypatch.chdir(tmp_path)  # snippets may write files (a checkpoint)
    namespace = {"model": models.digits_snn(10), "x_seq": torch.rand(4, 2, 1, 8, 8)}
    for number, snippet in enumerate(snippets, 1):
        for placeholder, value in README_PLACEHOLDERS.items():
            snippet = snippet.replace(placeholder, value)
        exec(compile(snippet, f"README.md python snippet {number}", "exec"), namespace)


def test_importing_sj_rga_wraps_the_stock_neurons_forwards():
    from spikingjelly.activation_based import neuron

    for cls in (neuron.IFNode, neuron.LIFNode, neuron.ParametricLIFNode):
        for method in ("multi_step_forward", "single_step_forward"):
            assert getattr(getattr(cls, method), "__sj_rga_original__", None) is not None, (cls, method)


@pytest.mark.parametrize("environment, expected", [
    ({}, ".cache/sj-rga"), ({"XDG_CACHE_HOME": "xdg"}, "xdg/sj-rga"), ({"SJ_RGA_CACHE": "mine"}, "mine"),
    ({"SJ_RGA_CACHE": "mine", "XDG_CACHE_HOME": "xdg"}, "mine"),
])
def test_the_demo_model_cache_lives_where_the_readme_says(monkeypatch, tmp_path, environment, expected):
    from sj_rga.demo import default_cache_dir

    monkeypatch.delenv("SJ_RGA_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name, value in environment.items():
        monkeypatch.setenv(name, str(tmp_path / value))
    assert default_cache_dir() == tmp_path / expected
