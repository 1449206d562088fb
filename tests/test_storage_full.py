"""Disk full and other I/O failures; calibrate/probe stopped or failed (issue 13).

A full disk (``--out`` on a 64 kB tmpfs when the tests run as root and may mount one; in
every case ENOSPC injected into the session writer) ends the run in ``failed`` with a
one-line reason naming the file, the safe state reached, the rows written so far intact
(whole rows, read back by pandas) and no stray temp files. Before: an ENOSPC traceback,
``status.json`` left at ``running`` and empty ``.tmp`` files. ``labnet calibrate`` and
``labnet probe`` cannot be resumed; stopped or failed, they say so (before: "continue with
`labnet resume SESSION`", a placeholder) and record ``resumable: false``.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_bad_input import PROTOCOL

from labnet.app.cli import main
from labnet.core.errors import StorageError
from labnet.session.folder import read_status

ROOT = Path(__file__).resolve().parent.parent
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _protocol(d: Path, steps: int = 40) -> Path:
    (d / "rig.toml").write_text(SIM16.read_text())
    p = d / "p.toml"
    p.write_text(PROTOCOL.replace("steps = 3", f"steps = {steps}"))
    return p


def _no_temp_files(folder: Path) -> None:
    stray = [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")]
    assert stray == [], stray


def _whole_rows(folder: Path) -> pd.DataFrame:
    """The CSV read back: every line complete (the same number of cells), none cut off."""
    text = (folder / "session.csv").read_text()
    assert text.endswith("\n")
    rows = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert len({ln.count(",") for ln in rows}) == 1  # the column row and every data row
    return pd.read_csv(folder / "session.csv", comment="#")


class FullAfter:
    """``write_all`` that fills the disk after ``n`` writes: the next writes half its bytes, then ENOSPC."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def __call__(self, fd: int, data: bytes) -> None:
        self.calls += 1
        if self.calls > self.n:
            os.write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]


@pytest.mark.parametrize("where,n", [("writer", 60), ("writer", 5), ("events", 0), ("files", 8)])
def test_disk_full_ends_failed_with_whole_rows(where: str, n: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    """ENOSPC injected into the CSV writer, the event log or the atomic writes (checkpoint, status)."""
    import labnet.session.events
    import labnet.session.files
    import labnet.session.writer

    proto = _protocol(tmp_path)
    module = {"writer": labnet.session.writer, "events": labnet.session.events, "files": labnet.session.files}[where]
    monkeypatch.setattr(module, "write_all", FullAfter(n))
    code = main(["run", str(proto), "--quiet", "--out", str(tmp_path / "s")])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 1
    assert len(err) == 1 and err[0].startswith("labnet: failed: ") and "No space left on device" in err[0], err
    assert "Traceback" not in err[0]
    folder = next((tmp_path / "s").iterdir())
    st = read_status(folder)
    assert st["status"] == "failed" and "No space left on device" in st["reason"] and st["safe_state"] is True
    assert "\n" not in st["reason"]
    _no_temp_files(folder)
    if st.get("rows") is not None:  # the CSV was open: every row it counted is there, whole
        assert len(_whole_rows(folder)) == st["rows"]


def test_status_is_overwritten_in_place_when_no_temp_file_fits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import labnet.session.files
    from labnet.session.status import write_status

    write_status(tmp_path, "running", "")
    monkeypatch.setattr(labnet.session.files, "write_all", FullAfter(0))
    write_status(tmp_path, "failed", "StorageError: disk full")
    assert read_status(tmp_path)["status"] == "failed"
    _no_temp_files(tmp_path)


def test_writer_cuts_a_half_written_row_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import labnet.session.writer
    from labnet.session.writer import SessionWriter

    w = SessionWriter(tmp_path, {"labnet_session": 1}, ["a", "b"])
    w.write({"a": 1, "b": 2})
    monkeypatch.setattr(labnet.session.writer, "write_all", FullAfter(0))
    with pytest.raises(StorageError, match=r"session.csv: cannot write row 2 \(No space left on device\); the 1 rows"):
        w.write({"a": 3, "b": 4})
    w.close()
    assert (tmp_path / "session.csv").read_text().endswith("a,b\n1,2\n")
    assert w.rows == 1


def _mount_tmpfs(where: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True)
    return r.returncode == 0


def test_run_on_a_full_tmpfs(tmp_path: Path) -> None:
    """The real thing: `labnet run --out` on a 64 kB tmpfs (skipped unless root may mount one)."""
    tiny = tmp_path / "tiny"
    if not _mount_tmpfs(tiny):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        proto = _protocol(tmp_path, steps=300)
        r = subprocess.run([sys.executable, "-m", "labnet", "run", str(proto), "--quiet", "--out", str(tiny / "s")],
                           capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)
        err = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 1 and len(err) == 1 and "No space left on device" in err[0], r.stderr
        folder = next((tiny / "s").iterdir())
        st = read_status(folder)
        assert st["status"] == "failed" and st["safe_state"] is True and "No space left" in st["reason"]
        _no_temp_files(folder)
        df = _whole_rows(folder)
        assert len(df) == st["rows"] > 0
        print(f"\ntmpfs 64 kB: failed after {len(df)} rows at step {st['step']}: {st['reason']}")
    finally:
        subprocess.run(["umount", str(tiny)], capture_output=True)


def test_calibrate_on_a_full_disk_says_it_cannot_be_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    import labnet.session.writer

    monkeypatch.setattr(labnet.session.writer, "write_all", FullAfter(10))
    code = main(["calibrate", str(ROOT / "protocols" / "calibrate.toml"), "--out", str(tmp_path / "s")])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 1 and len(err) == 1, err
    assert "No space left on device" in err[0] and "cannot be resumed: run it again" in err[0]
    assert "labnet resume" not in err[0] and "sources are in the safe state" in err[0]
    folder = next((tmp_path / "s").iterdir())
    st = read_status(folder)
    assert st["status"] == "failed" and st["resumable"] is False and st["safe_state"] is True
    assert st["command"] == "calibrate"
    _no_temp_files(folder)
    assert len(_whole_rows(folder)) == 10  # the rows before the full disk (the header goes through write_temp)


@pytest.mark.parametrize("command", ["calibrate", "probe"])
def test_ctrl_c_during_calibrate_or_probe(command: str, tmp_path: Path) -> None:
    """Ctrl-C: safe state, status ``stopped`` (not resumable), and a message that says to run it
    again — not the old "continue with `labnet resume SESSION`" placeholder."""
    file = ROOT / "protocols" / f"{command}.toml"
    argv = [sys.executable, "-m", "labnet", command, str(file), "--out", str(tmp_path / "s")]
    if command == "probe":
        argv += ["--samples", "100000"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        csvs = list((tmp_path / "s").glob("*/session.csv"))
        if csvs and csvs[0].read_text().count("\n") > 30:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1, err
    assert lines[0].startswith("labnet: stopped (") and "sources are in the safe state" in lines[0]
    assert f"`labnet {command}` cannot be resumed: run it again" in lines[0] and "labnet resume" not in lines[0]
    folder = csvs[0].parent
    st = read_status(folder)
    assert st["status"] == "stopped" and st["resumable"] is False and st["safe_state"] is True
    _whole_rows(folder)
    _no_temp_files(folder)


@pytest.mark.parametrize("command,kind,safe", [("calibrate", "unplug", True), ("calibrate", "visa_timeout", False),
                                               ("probe", "visa_timeout", False)])
def test_driver_faults_in_calibrate_and_probe_end_in_one_line(command: str, kind: str, safe: bool, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    """A board unplugged for good, or every instrument silent (VISA timeouts: then not even the
    sources answer, and the line and status say the safe state was not confirmed): a
    LabnetError line (no raw pyserial/pyvisa exception), status ``failed``."""
    import labnet.app.build
    from simulator.bench import get_bench
    from simulator.faults import FaultPlan

    real = labnet.app.build.build_rig

    def faulty(*args, **kwargs):
        rig = real(*args, **kwargs)
        plan = FaultPlan(unplug_s=1e6)
        plan.schedule(kind, *range(2 if kind == "unplug" else 30, 3000))  # from then on, every opportunity
        get_bench(rig.extra["sim_bench"]).faults = plan
        return rig

    monkeypatch.setattr(labnet.app.build, "build_rig", faulty)
    argv = [command, str(ROOT / "protocols" / f"{command}.toml"), "--out", str(tmp_path / "s")]
    code = main(argv + (["--samples", "50"] if command == "probe" else []))
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("labnet: failed: ") and "cannot be resumed" in err[0]
    for raw in ("SerialException", "PortNotOpenError", "VisaIOError", "Traceback"):
        assert raw not in err[0]
    st = read_status(next((tmp_path / "s").iterdir()))
    assert st["status"] == "failed" and st["safe_state"] is safe and st["resumable"] is False
    assert ("sources are in the safe state" if safe else "THE SAFE STATE WAS NOT CONFIRMED") in err[0]
    assert st["reason"].split(":")[0] in ("InstrumentError", "BoardError", "LimitError"), st["reason"]
