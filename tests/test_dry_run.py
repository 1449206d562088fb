"""Dry runs that stay dry: a session records whether it ran on the simulator, on which rig file,
and whether it was a dry run of a bench rig; ``labnet resume`` continues it on the same kind of
rig (a dry run as a dry run, on the emulated addresses) unless told otherwise explicitly
(``--dry-run`` / ``--on-bench``); a mismatch is a one-line error (exit 2) before anything opens;
the summary and the CSV header say "dry run"."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import pyvisa
import serial

import labnet.app.runner as runner
from labnet.app.cli import main
from labnet.experiments.engine import StateMeasured
from labnet.session.folder import read_header, read_markers, read_session, read_status

ROOT = Path(__file__).resolve().parent.parent
ALLOSTERY = ROOT / "protocols" / "allostery.toml"
BREADBOARD = ROOT / "protocols" / "rigs" / "breadboard16.toml"
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"
STEPS = 6


class Opened:
    """Every serial URL and VISA resource name the run opens; a real (non-emulated) serial port
    is refused with the error pyserial gives when nothing is attached, so nothing real is touched."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ports: list[str] = []
        self.resources: list[str] = []
        for_url = serial.serial_for_url
        open_resource = pyvisa.ResourceManager.open_resource

        def spy_port(url: str, *args: Any, **kwargs: Any) -> Any:
            self.ports.append(url)
            if not url.startswith("sim://"):
                raise serial.SerialException(f"[Errno 2] could not open port {url} (refused by the test)")
            return for_url(url, *args, **kwargs)

        def spy_resource(rm: Any, name: str, *args: Any, **kwargs: Any) -> Any:
            self.resources.append(name)
            return open_resource(rm, name, *args, **kwargs)

        def no_serial(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("serial.Serial opened a real port")

        monkeypatch.setattr(serial, "serial_for_url", spy_port)
        monkeypatch.setattr(serial, "Serial", no_serial)
        monkeypatch.setattr(pyvisa.ResourceManager, "open_resource", spy_resource)

    def all_simulated(self) -> bool:
        return (bool(self.ports) and all(p.startswith("sim://") for p in self.ports)
                and all("::breadboard16::" in r and "USB0" not in r for r in self.resources))


def _ctrl_c_at(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """``labnet run`` gets a SIGINT in the middle of training step ``step`` (its free state)."""
    real = runner.run_protocol

    def with_ctrl_c(*args: Any, subscribers: Any = (), **kwargs: Any) -> Any:
        def sigint(ev: object) -> None:
            if isinstance(ev, StateMeasured) and (ev.step, ev.phase) == (step, "free"):
                signal.raise_signal(signal.SIGINT)

        return real(*args, subscribers=[*subscribers, sigint], **kwargs)

    monkeypatch.setattr(runner, "run_protocol", with_ctrl_c)


def _dry_run(out: Path) -> list[str]:
    return ["run", str(ALLOSTERY), "--rig", str(BREADBOARD), "--dry-run", "--steps", str(STEPS), "--seed", "3",
            "--out", str(out), "--quiet"]


def _stopped_dry_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    with monkeypatch.context() as m:
        _ctrl_c_at(m, 3)
        assert main(_dry_run(tmp_path / "run")) == 1
    err = capsys.readouterr().err
    assert "labnet resume" in err
    (folder,) = (tmp_path / "run").iterdir()
    assert (read_status(folder) or {}).get("status") == "stopped"
    return folder


def _rows(folder: Path) -> pd.DataFrame:
    return read_session(folder).drop(columns=["time_s", "attempt"]).reset_index(drop=True)


def test_dry_run_then_ctrl_c_then_resume_stays_on_the_simulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    opened = Opened(monkeypatch)
    folder = _stopped_dry_run(tmp_path, monkeypatch, capsys)
    run = json.loads((folder / "run.json").read_text())
    assert run["dry_run"] is True and run["simulated"] is True and run["rig_kind"] == "bench"
    assert run["rig_file"] == str(BREADBOARD)
    head = read_header(folder / "session.csv")
    assert head["run"]["dry_run"] is True and head["run"]["simulated"] is True
    assert head["run"]["mode"].startswith("dry run") and head["run"]["rig_file"] == str(BREADBOARD)
    assert opened.all_simulated()
    n_ports = len(opened.ports)

    assert main(["resume", str(folder), "--quiet"]) == 0  # no flag: resumes as a dry run
    out = capsys.readouterr().out
    assert "completed" in out and "on breadboard16 (dry run" in out
    assert len(opened.ports) == n_ports + 1 and opened.all_simulated()  # the resume opened sim:// only
    (marker,) = read_markers(folder / "session.csv", "resumed")
    assert marker["dry_run"] is True and marker["simulated"] is True
    assert (read_status(folder) or {}).get("status") == "completed"

    # it ends exactly where the uninterrupted dry run ends, whose summary says dry run too
    assert main(_dry_run(tmp_path / "ref")) == 0
    assert "on breadboard16 (dry run: simulator, no instrument opened)" in capsys.readouterr().out
    (ref,) = (tmp_path / "ref").iterdir()
    pd.testing.assert_frame_equal(_rows(folder), _rows(ref))
    assert opened.all_simulated()


def test_explicit_dry_run_flag_resumes_a_dry_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    opened = Opened(monkeypatch)
    folder = _stopped_dry_run(tmp_path, monkeypatch, capsys)
    assert main(["resume", str(folder), "--dry-run", "--quiet"]) == 0
    assert "(dry run" in capsys.readouterr().out and opened.all_simulated()


def test_on_bench_is_the_explicit_way_to_the_real_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    opened = Opened(monkeypatch)
    folder = _stopped_dry_run(tmp_path, monkeypatch, capsys)
    n_ports = len(opened.ports)
    # with a checkpoint of the simulator's state the bench cannot continue it: refused, nothing opened
    code = main(["resume", str(folder), "--on-bench", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "simulator's state" in err, err
    assert len(opened.ports) == n_ports
    # before its first checkpoint it starts over on the bench: the real port is what it opens
    (folder / "checkpoint.json").unlink()
    code = main(["resume", str(folder), "--on-bench", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and "/dev/ttyUSB0" in err, err
    assert opened.ports[n_ports:] == ["/dev/ttyUSB0"]  # refused by the spy: nothing real touched


def _edit_run(folder: Path, **changes: Any) -> None:
    run = json.loads((folder / "run.json").read_text())
    for k, v in changes.items():
        if v is None:
            run.pop(k, None)
        else:
            run[k] = v
    (folder / "run.json").write_text(json.dumps(run))


@pytest.mark.parametrize("case", ["bench-as-dry-run", "unrecorded", "sim-on-bench", "both-flags"])
def test_a_mismatch_is_a_one_line_error_before_anything_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str], case: str) -> None:
    opened = Opened(monkeypatch)
    if case == "sim-on-bench":
        with monkeypatch.context() as m:
            _ctrl_c_at(m, 2)
            assert main(["run", str(ALLOSTERY), "--rig", str(SIM16), "--steps", "4", "--out", str(tmp_path / "run"),
                         "--quiet"]) == 1
        (folder,) = (tmp_path / "run").iterdir()
        run = json.loads((folder / "run.json").read_text())
        assert run["dry_run"] is False and run["simulated"] is True
        argv = ["resume", str(folder), "--on-bench", "--quiet"]
        word = "--on-bench"
    else:
        folder = _stopped_dry_run(tmp_path, monkeypatch, capsys)
        if case == "bench-as-dry-run":  # a session of the real bench
            _edit_run(folder, dry_run=False, simulated=False)
            argv, word = ["resume", str(folder), "--dry-run", "--quiet"], "real bench"
        elif case == "unrecorded":  # a session from before run.json said
            _edit_run(folder, dry_run=None, simulated=None, rig_kind=None)
            argv, word = ["resume", str(folder), "--quiet"], "--dry-run or --on-bench"
        else:
            argv, word = ["resume", str(folder), "--dry-run", "--on-bench", "--quiet"], "not allowed with"
    capsys.readouterr()
    n_ports, n_res = len(opened.ports), len(opened.resources)
    before = (folder / "session.csv").read_bytes()
    code: object = None
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: two flags that exclude each other
        assert case == "both-flags"
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and word in err, err
    assert (len(opened.ports), len(opened.resources)) == (n_ports, n_res)  # nothing opened
    assert (folder / "session.csv").read_bytes() == before
