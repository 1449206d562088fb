"""The command line's messages (issue 16, "Messages"): each ending is one true line.

* Ctrl-C during a command that opens nothing (``labnet report``) does not claim a safe state;
* Ctrl-C from the first instant of ``main`` (imports, parsing) is one line, not a traceback,
  and ``import labnet.app.cli`` is light (no numpy), so that window starts at once;
* ``labnet validate … | head -1``: no BrokenPipeError traceback;
* resume hints are shell-quoted (a session path with spaces and quotes pastes back verbatim);
* an instrument that fails to open leaves no empty session folder (run, calibrate, probe);
* a resumed run's summary says ``labnet resume:``; ``--steps 0`` prints no "(1x lower)";
* the session CSV header has ``started_utc``, the calibration table used and ``--codes-from``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from labnet.app import runner
from labnet.app.build import build_rig
from labnet.app.cli import main
from labnet.core.errors import InstrumentError
from labnet.experiments.signals import StopSignal
from labnet.session.folder import read_header

ROOT = Path(__file__).resolve().parent.parent
RIG = ROOT / "protocols" / "rigs" / "sim16.toml"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _proto(tmp_path: Path, name: str = "allostery.toml", extra: str = "") -> Path:
    text = (ROOT / "protocols" / name).read_text().replace('rig = "rigs/sim16.toml"', f'rig = "{RIG}"')
    p = tmp_path / name
    p.write_text(text + extra)
    return p


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


# ------------------------------------------------------------------ Ctrl-C
def test_ctrl_c_during_report_says_nothing_was_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Before: "stopped (SIGINT (Ctrl-C)); sources are in the safe state; continue with `labnet resume SESSION`"."""
    import labnet.app.report as report

    def interrupted(folder: object) -> None:
        raise StopSignal(signal.SIGINT)

    monkeypatch.setattr(report, "write_report", interrupted)
    assert main(["report", str(tmp_path)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line == "labnet: stopped (SIGINT (Ctrl-C)); no instrument was open"


def test_cli_import_is_light() -> None:
    """The window before ``main`` can catch Ctrl-C is the import of labnet.app.cli: no numpy/scipy in it."""
    code = "import sys, labnet.app.cli; print(sorted(m for m in ('numpy', 'scipy', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("delay_s", [None, 0.02, 0.1, 0.3])
def test_ctrl_c_in_the_first_instant_is_one_line(tmp_path: Path, delay_s: float | None) -> None:
    """SIGINT while ``main`` is still parsing (None: the signal is sent from inside build_parser),
    importing numpy/scipy, validating (before: a 30-line traceback)."""
    proto = _proto(tmp_path)
    if delay_s is None:
        arm = ("import labnet.app.cli as cli\nreal = cli.build_parser\n"
               "cli.build_parser = lambda: (os.kill(os.getpid(), signal.SIGINT), real())[1]\n")
    else:
        arm = f"threading.Timer({delay_s}, lambda: os.kill(os.getpid(), signal.SIGINT)).start()\n"
    code = ("import os, signal, sys, threading\n"
            "from labnet.app.cli import main\n" + arm +
            f"sys.exit(main(['run', {str(proto)!r}, '--steps', '100000', '--out', {str(tmp_path / 'out')!r}, '--quiet']))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 1, proc.stderr
    line = _one_line(proc.stderr)
    assert line.startswith("labnet: stopped (") and "Ctrl-C" in line, line
    assert ("safe state" in line) == ("labnet resume" in line or "removed" in line), line


def _import_fails(monkeypatch: pytest.MonkeyPatch, exc: ImportError, signals_seen: int) -> None:
    import labnet.app.cli as cli
    import labnet.app.endings as endings

    def command(args: object) -> int:
        raise exc

    monkeypatch.setitem(cli.COMMANDS, "validate", command)
    monkeypatch.setattr(endings, "signals_received", lambda: signals_seen)


def test_ctrl_c_inside_a_c_extension_import_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Seen under load: SIGINT while numpy's C code imports ``datetime`` comes out as
    ``ImportError: PyCapsule_Import could not import module "datetime"`` (the KeyboardInterrupt in its
    chain, or only a received stop signal); before, a traceback."""
    inner = ImportError('PyCapsule_Import could not import module "datetime"')
    inner.__context__ = KeyboardInterrupt()
    _import_fails(monkeypatch, ImportError("numpy C-extensions failed"), 1)
    assert main(["validate", "x.toml"]) == 1
    assert _one_line(capsys.readouterr().err) == "labnet: stopped (Ctrl-C); no instrument was open"
    outer = ImportError("numpy C-extensions failed")
    outer.__cause__ = inner
    _import_fails(monkeypatch, outer, 0)
    assert main(["validate", "x.toml"]) == 1
    assert _one_line(capsys.readouterr().err).startswith("labnet: stopped (Ctrl-C)")


def test_a_real_import_error_is_not_called_a_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    _import_fails(monkeypatch, ImportError("No module named 'numpy'"), 0)
    with pytest.raises(ImportError, match="numpy"):
        main(["validate", "x.toml"])


def test_a_run_stopped_by_the_limits_does_not_suggest_resume(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """breadboard16's 10-ohm output-off release loads the free state; training then asks for codes
    the worst-case check refuses (step 36). A resume asks for the same state and fails again, so
    the line says what to change instead of `labnet resume`."""
    rig = ROOT / "protocols" / "rigs" / "breadboard16.toml"
    assert main(["run", str(ROOT / "protocols" / "allostery.toml"), "--rig", str(rig), "--dry-run",
                 "--out", str(tmp_path), "--quiet"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("labnet: failed: edge (") and "in the worst case" in line, line
    assert "labnet resume" not in line and "a resume would ask for the same state" in line, line
    (session,) = tmp_path.iterdir()
    assert str(session) in line


def test_ctrl_c_mid_run_hint_is_quoted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    _fault_after(monkeypatch, 40, KeyboardInterrupt())
    out = tmp_path / "it's my sessions"
    assert main(["run", str(_proto(tmp_path)), "--steps", "30", "--out", str(out), "--quiet"]) == 1
    line = _one_line(capsys.readouterr().err)
    session = next(out.iterdir())
    assert "sources are in the safe state" in line
    cmd = re.search(r"`(labnet resume [^`]+)`", line)
    assert cmd and shlex.split(cmd.group(1)) == ["labnet", "resume", str(session)], line


# ------------------------------------------------------------------ broken pipe
def test_validate_into_a_closed_pipe_is_quiet() -> None:
    """``labnet validate protocols/*.toml | head -1``: the reader has gone; before, a BrokenPipeError traceback."""
    r, w = os.pipe()
    os.close(r)  # no reader at all: the first write gets EPIPE
    files = sorted(str(p) for p in (ROOT / "protocols").glob("*.toml"))
    proc = subprocess.run([sys.executable, "-m", "labnet", "validate", *files], stdout=w, stderr=subprocess.PIPE,
                          text=True, env=ENV, timeout=120)
    os.close(w)
    assert proc.stderr == "" and proc.returncode == 1, proc.stderr


# ------------------------------------------------------------------ failures
def _fault_after(monkeypatch: pytest.MonkeyPatch, n: int, exc: BaseException) -> None:
    """The runner's rig: its meter raises ``exc`` at the n-th reading."""
    real = runner.build_rig

    def build(*a: object, **k: object) -> object:
        rig = real(*a, **k)  # type: ignore[arg-type]
        inner, calls = rig.measure, [0]

        def measure(*aa: object, **kk: object) -> object:
            calls[0] += 1
            if calls[0] == n:
                raise exc
            return inner(*aa, **kk)

        rig.measure = measure  # type: ignore[method-assign]
        return rig

    monkeypatch.setattr(runner, "build_rig", build)


def test_failure_hint_is_quoted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """Before: ``labnet resume /tmp/a b/...`` (unquoted, a shell splits it)."""
    _fault_after(monkeypatch, 40, InstrumentError("meter: timeout (test)"))
    out = tmp_path / "a b"
    assert main(["run", str(_proto(tmp_path)), "--steps", "30", "--out", str(out), "--quiet"]) == 1
    line = _one_line(capsys.readouterr().err)
    session = next(out.iterdir())
    cmd = re.search(r"`(labnet resume [^`]+)`", line)
    assert cmd and shlex.split(cmd.group(1)) == ["labnet", "resume", str(session)], line


def _meter_fails_to_open(monkeypatch: pytest.MonkeyPatch, module: object) -> None:
    def build(*a: object, **k: object) -> object:
        rig = build_rig(*a, **k)  # type: ignore[arg-type]

        def configure(*aa: object, **kk: object) -> None:
            raise InstrumentError("meter: VI_ERROR_RSRC_NFOUND (test: not connected)")

        rig.meter.configure = configure  # type: ignore[method-assign]
        return rig

    monkeypatch.setattr(module, "build_rig", build)


def test_failed_open_leaves_no_empty_session_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import labnet.app.build as build  # calibrate and probe build through the module

    for module in (runner, build):
        _meter_fails_to_open(monkeypatch, module)
    out = tmp_path / "sessions"
    assert main(["run", str(_proto(tmp_path)), "--out", str(out), "--quiet"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "VI_ERROR_RSRC_NFOUND" in line and "empty session folder was removed" in line
    assert "labnet resume" not in line
    assert main(["calibrate", str(_proto(tmp_path, "calibrate.toml")), "--out", str(out)]) == 1
    assert main(["probe", str(_proto(tmp_path, "probe.toml")), "--out", str(out)]) == 1
    assert list(out.iterdir()) == []


# ------------------------------------------------------------------ summaries
def test_resumed_summary_says_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    _fault_after(monkeypatch, 40, KeyboardInterrupt())
    out = tmp_path / "s"
    assert main(["run", str(_proto(tmp_path)), "--steps", "20", "--out", str(out), "--quiet"]) == 1
    monkeypatch.undo()
    session = next(out.iterdir())
    capsys.readouterr()
    assert main(["resume", str(session), "--quiet"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("labnet resume: allostery on sim16 — completed"), first
    from labnet.app.runner import resume_session  # the outcome's repr (notebooks) says so too

    again = tmp_path / "again"
    _fault_after(monkeypatch, 40, KeyboardInterrupt())
    assert main(["run", str(_proto(tmp_path)), "--steps", "20", "--out", str(again), "--quiet"]) == 1
    monkeypatch.undo()
    assert repr(resume_session(next(again.iterdir()), progress=False)).startswith("labnet resume: allostery")


def test_zero_steps_prints_no_ratio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(_proto(tmp_path)), "--steps", "0", "--out", str(tmp_path / "s"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "train error" in out and "x lower" not in out and "x higher" not in out, out


def test_summary_ratio_direction() -> None:
    from labnet.app.summary import _ratio

    assert _ratio(1.0, 0.25, False) == "  (4x lower)"
    assert _ratio(0.25, 1.0, False) == "  (4x higher)"  # before: "(0.25x lower)"
    assert _ratio(1.0, 1.0, True) == "" and _ratio(1.0, 0.0, False) == ""


# ------------------------------------------------------------------ CSV header
def test_header_has_start_time_and_calibration_table(tmp_path: Path) -> None:
    import numpy as np

    from labnet.config.protocol import load_protocol
    from labnet.config.rigfile import load_rig
    from labnet.config.tables import BINDING_KEY, table_binding
    from labnet.core.conductance import PartModel
    from labnet.experiments.calibration.table import CalibrationTable

    spec = load_rig(RIG)  # a table of the nominal part (the format labnet calibrate writes)
    model = PartModel(spec.part, spec.network.n_edges)
    k = np.stack([model.conductance(np.full(spec.network.n_edges, c)) for c in range(spec.part.positions)], axis=1)
    table = tmp_path / "my table.csv"
    seed = load_protocol(_proto(tmp_path)).seed  # the binding a calibration of this rig would write
    CalibrationTable(k, k * 1e-3, {BINDING_KEY: table_binding(spec, None, seed)}).to_csv(table)
    proto = _proto(tmp_path, extra=f'\n[calibration]\ntable = "{table}"\n')
    before = dt.datetime.now(dt.timezone.utc)  # noqa: UP017
    assert main(["run", str(proto), "--steps", "2", "--out", str(tmp_path / "s"), "--quiet"]) == 0
    session = next((tmp_path / "s").iterdir())
    h = read_header(session / "session.csv")
    assert list(h)[:2] == ["labnet_session", "started_utc"]
    started = dt.datetime.fromisoformat(h["started_utc"])
    assert started.tzinfo is not None and abs((started - before).total_seconds()) < 60
    assert h["calibration"] == {"table": str(table.resolve()), "copy": "calibration.csv"}
    assert (session / "calibration.csv").is_file()
    assert main(["run", str(_proto(tmp_path)), "--steps", "1", "--out", str(tmp_path / "p"), "--quiet"]) == 0
    assert read_header(next((tmp_path / "p").iterdir()) / "session.csv")["calibration"] is None


def test_probe_header_records_codes_from(tmp_path: Path) -> None:
    trained = tmp_path / "trained run"
    assert main(["run", str(_proto(tmp_path)), "--steps", "3", "--out", str(trained), "--quiet"]) == 0
    source = next(trained.iterdir())
    assert main(["probe", str(_proto(tmp_path, "probe.toml")), "--samples", "12", "--codes-from", str(source),
                 "--out", str(tmp_path / "p")]) == 0
    h = read_header(next((tmp_path / "p").iterdir()) / "session.csv")
    assert h["codes_from"] == str(source.resolve()) and "started_utc" in h
