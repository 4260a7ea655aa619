"""The README's set-up as a new user (and CI) reads it: exactly two commands first, a CPU-only path that CI's
grep for the test command does not pick up, and why the test extras pin requests."""
import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bash_blocks(text):
    return [block.split("```", 1)[0].strip().splitlines() for block in text.split("```bash\n")[1:]]


def test_the_two_set_up_commands_come_first_and_ci_runs_the_second():
    text = (ROOT / "README.md").read_text()
    first = _bash_blocks(text)[0]
    assert len(first) == 2 and first[0].startswith("pip install . ") and "sj-rga demo" in first[0]
    ci_pattern = re.search(r"grep -m1 -E '([^']+)' README.md", (ROOT / ".ci" / "run").read_text()).group(1)
    assert [line for line in text.splitlines() if re.match(ci_pattern, line)][0] == first[1]


def test_a_cpu_only_install_comes_before_the_package():
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    cpu = [b for b in blocks if any("download.pytorch.org/whl/cpu" in line for line in b)]
    assert cpu and all(line.startswith("pip install torch ") for line in cpu[0])
    assert blocks.index(cpu[0]) == 1  # right after the set-up commands


def test_the_requests_downgrade_of_the_test_extras_is_explained():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert "torchattacks==3.5.1" in config["options.extras_require"]["test"]
    text = " ".join((ROOT / "README.md").read_text().split())
    assert "requests~=2.25.1" in text and "urllib3" in text
