"""A non-editable install works away from the source tree: the wheel carries the shipped
protocols and rigs (package data ``labnet.protocols``), so ``labnet run`` of a shipped protocol
from another working directory and a run with no rig given both find the default rig."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv (seeing this interpreter's dependencies) with labnet installed from a built wheel."""
    base = tmp_path_factory.mktemp("pkg")
    wheels = base / "wheels"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
                        str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    env_dir = base / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    # When this interpreter is itself a venv (the README's set-up), "system" site-packages are the
    # base interpreter's, without the dependencies: add this environment's library folders as plain
    # path entries (no .pth processing in them, so an editable labnet there is not imported).
    inner = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    outer = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(inner) / "_outer_env.pth").write_text("".join(f"{p}\n" for p in outer), encoding="utf-8")
    wheel = next(wheels.glob("labnet-*.whl"))
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return env_dir


def _run(env_dir: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(env_dir / "bin" / "labnet"), *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300)


def test_the_wheel_is_what_runs(installed: Path, tmp_path: Path) -> None:
    r = subprocess.run([str(installed / "bin" / "python"), "-c", "import labnet; print(labnet.__file__)"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert str(installed) in r.stdout and str(ROOT) not in r.stdout


def test_shipped_protocol_runs_from_another_directory(installed: Path, tmp_path: Path) -> None:
    r = subprocess.run([str(installed / "bin" / "python"), "-c",
                        "from labnet.config.shipped import shipped_path; print(shipped_path('allostery.toml'))"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    shipped = Path(r.stdout.strip())
    assert str(installed) in str(shipped)
    r = _run(installed, ["run", str(shipped), "--steps", "3", "--out", str(tmp_path / "s")], tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "completed (3 steps)" in r.stdout


def test_a_protocol_without_a_rig_uses_the_shipped_default(installed: Path, tmp_path: Path) -> None:
    text = (ROOT / "protocols" / "allostery.toml").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.startswith("rig =")]
    assert len(lines) == len(text.splitlines()) - 1
    (tmp_path / "mine.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = _run(installed, ["run", "mine.toml", "--steps", "3", "--out", "s"], tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "on sim16" in r.stdout
