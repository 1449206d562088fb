"""`labnet report` stopped by a signal leaves no truncated PNG (issue 13, "smaller" items).

Figures are written through :mod:`labnet.app.figfiles`: rendered in memory, written to a temp
file, moved into place with ``os.replace``. The unit test interrupts a PNG half-written; the
end-to-end test sends SIGTERM to a real ``labnet report`` the moment its first PNG appears
(before the fix that was while the file was being written) and checks every PNG is complete.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labnet.app.figfiles import save_figure

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk type and its CRC: the last 8 bytes of every PNG


def _complete_png(path: Path) -> bool:
    data = path.read_bytes()
    return data.startswith(PNG_SIGNATURE) and data.endswith(PNG_END)


def test_interrupted_figure_keeps_the_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    target = tmp_path / "error.png"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, target)
    old = target.read_bytes()
    assert _complete_png(target)

    real = Figure.savefig

    def half_then_signal(self: Figure, fname: object, **kw: object) -> None:
        real(self, fname, **kw)
        fname.truncate(len(fname.getvalue()) // 2)  # type: ignore[attr-defined]
        raise KeyboardInterrupt("SIGTERM")

    monkeypatch.setattr(Figure, "savefig", half_then_signal)
    with pytest.raises(KeyboardInterrupt):
        save_figure(fig, target)
    assert target.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["error.png"]  # no temp file left

    monkeypatch.setattr(Figure, "savefig", real)
    monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(KeyboardInterrupt("SIGTERM")))
    with pytest.raises(KeyboardInterrupt):
        save_figure(fig, target)
    assert target.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["error.png"]
    plt.close(fig)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from labnet.app.cli import main

    d = tmp_path_factory.mktemp("rep")
    text = (ROOT / "protocols" / "allostery.toml").read_text()
    text = text.replace('rig = "rigs/sim16.toml"', f'rig = "{ROOT / "protocols" / "rigs" / "sim16.toml"}"')
    (d / "p.toml").write_text(text)
    assert main(["run", str(d / "p.toml"), "--steps", "20", "--out", str(d / "s"), "--quiet"]) == 0
    return next((d / "s").iterdir())


def test_sigterm_during_report_leaves_only_complete_pngs(session: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "labnet", "report", str(session)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(session.glob("*.png")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.0005)
    proc.send_signal(signal.SIGTERM)  # as soon as the first figure file exists
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 1), err.decode()
    pngs = list(session.glob("*.png"))
    assert pngs, "the report wrote no figure before the signal"
    assert all(_complete_png(p) for p in pngs), [p.name for p in pngs if not _complete_png(p)]
    assert not [p.name for p in session.iterdir() if p.name.endswith(".tmp")]
    if proc.returncode == 1:
        assert b"Traceback" not in err, err.decode()
