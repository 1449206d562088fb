"""`labnet watch`: following a running session through its append-only files."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labnet.app.cli import main
from labnet.app.watch import watch
from labnet.app.watch_data import CsvTail, SessionView

ROOT = Path(__file__).resolve().parent.parent


def test_tail_reads_only_complete_lines(tmp_path: Path) -> None:
    p = tmp_path / "session.csv"
    p.write_text('# protocol: {"kind": "train"}\nstep,phase,v_n1\n0,free,0.5\n1,fr', encoding="utf-8")
    t = CsvTail(p)
    assert t.poll() == 1 and t.columns == ["step", "phase", "v_n1"] and t.rows == [["0", "free", "0.5"]]
    assert t.header["protocol"] == {"kind": "train"}
    with open(p, "a", encoding="utf-8") as fh:  # the writer finishes the line, adds a marker and a row
        fh.write('ee,0.25\n# resumed: {"from_step": 1}\n2,"clamped",0.75\n')
    assert t.poll() == 2 and t.rows[-1] == ["2", "clamped", "0.75"]
    assert t.markers == [("resumed", {"from_step": 1})]
    assert t.column("v_n1") == [0.5, 0.25, 0.75] and t.last({"phase": "free"}) == ["1", "free", "0.25"]
    assert t.poll() == 0  # nothing new


def test_watch_follows_a_running_session(tmp_path: Path) -> None:
    """A `labnet run` in another process; the watcher sees its steps arrive and stops when it ends."""
    out = tmp_path / "sessions"
    proc = subprocess.Popen([sys.executable, "-m", "labnet", "run", str(ROOT / "protocols" / "allostery.toml"),
                             "--steps", "400", "--quiet", "--out", str(out)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and any(out.glob("*/session.csv"))):
            assert proc.poll() is None and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)
        log = io.StringIO()
        png = tmp_path / "watch.png"
        code = watch(out, interval=0.1, png=png, timeout=120, out=log)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert code == 0, log.getvalue()
    steps = [int(m) for m in re.findall(r"step (\d+)", log.getvalue())]
    assert len(set(steps)) >= 3, log.getvalue()  # it saw the run progress, not only its end
    assert steps == sorted(steps) and steps[-1] == 400
    assert log.getvalue().rstrip().endswith("completed")
    assert png.stat().st_size > 20_000 and not list(tmp_path.glob("*.tmp"))
    view = SessionView(next(out.iterdir()))
    view.poll()
    assert view.done and view.kind == "train" and len(view.evaluations) >= 10


def test_watch_once_on_a_sweep_folder(tmp_path: Path) -> None:
    from labnet.app.sweep import run_sweep
    from labnet.config.sweep_file import load_sweep

    f = tmp_path / "s.toml"
    f.write_text("[sweep]\nchunk = 2\n[base]\nnodes = 12\nedges = 20\nsteps = 50\n[[axis]]\nseeds = 4\n")
    run_sweep(load_sweep(f), tmp_path / "sw", workers=1, progress=False)
    log = io.StringIO()
    assert watch(tmp_path / "sw", once=True, png=tmp_path / "sw.png", out=log) == 0
    assert "4 of 4 points, finished" in log.getvalue() and (tmp_path / "sw.png").stat().st_size > 10_000


@pytest.mark.parametrize("argv, key", [
    (["watch", "{tmp}/nothing"], "not a folder"),
    (["watch", "{tmp}"], "not a session folder"),
    (["watch", "{tmp}", "--interval", "0"], "--interval"),
    (["watch", "{tmp}", "--png", "{tmp}/x.jpg"], "--png"),
])
def test_watch_bad_input(argv: list[str], key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2 and len(err) == 1 and key in err[0], err
