"""The README's set-up section agrees with the project's files: the Python version with
pyproject's requires-python, the two commands make a venv (system pip refuses:
externally-managed-environment), the Debian packages it lists with the ones CI installs, the
test command with the one CI runs, and the ``bench`` extra exists with pyvisa-py and pyusb."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SETUP = README[README.index("## Set-up"):README.index("## Quick start")]
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _blocks(text: str) -> list[str]:
    return [b.strip().replace("\\\n", " ") for b in re.findall(r"```\n(.*?)```", text, re.S)]


def test_python_version_is_the_packages() -> None:
    need = PYPROJECT["project"]["requires-python"]
    assert need == ">=3.11" and "Python ≥ 3.11" in SETUP


def test_the_two_commands_make_a_venv() -> None:
    run, test = _blocks(SETUP)[:2]
    venv = "python3 -m venv .venv && . .venv/bin/activate && "
    assert run == venv + "pip install -e . && labnet run protocols/allostery.toml"
    assert test == venv + "pip install -e '.[test]' && python -m pytest -q"
    assert test.removeprefix(venv) in CI  # CI runs the README's test command


def _apt(text: str) -> set[str]:
    pkgs: set[str] = set()
    for m in re.finditer(r"apt-get install((?:[^\n>\\]|\\\n)*)", text):
        words = shlex.split(m.group(1).replace("\\\n", " "))
        pkgs |= {w for w in words if not w.startswith("-")}
    return pkgs


def test_readme_lists_the_packages_ci_installs() -> None:
    assert _apt(CI) == _apt(_blocks(SETUP)[2]), "README's apt-get line and .ci/run's differ"


def test_bench_extra() -> None:
    bench = PYPROJECT["project"]["optional-dependencies"]["bench"]
    names = {re.split(r"[<>=!~ ]", r)[0] for r in bench}
    assert names == {"pyvisa-py", "pyusb"} and "pip install -e '.[bench]'" in SETUP
