"""Driver events reach the session: every retry, re-sync and recovery of the SCPI drivers and
the digipot driver is one line of ``events.jsonl`` with its own kind, and a driver that runs out
of retries stops the run cleanly (sources off, status ``failed`` with the reason, rows kept)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from drivers.events import EventBuffer
from labnet.app.build import build_rig
from labnet.app.campaign import campaign_protocol
from labnet.app.rigstate import sim_model
from labnet.app.runner import run_protocol
from labnet.core.errors import InstrumentError
from labnet.session.folder import read_session, read_status
from simulator.bench import get_bench
from simulator.scpi_emu import ScpiError


def events_of(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def faulted_rig(proto, **rates: float):
    rig = build_rig(proto.rig, sim_seed=proto.seed, network=proto.network)
    plan = get_bench(rig.extra["sim_bench"]).faults
    plan.rng = np.random.default_rng(5)
    plan.rates.update(rates)
    return rig


def test_driver_retries_and_recoveries_are_session_events_with_their_kinds(tmp_path):
    proto = campaign_protocol(tmp_path, steps=20)
    rig = faulted_rig(proto, visa_timeout=0.05, scpi_error=0.03, garble=0.1)
    out = run_protocol(proto, session_dir=tmp_path / "s", rig=rig, progress=False)
    assert out.result.status == "completed"
    evs = events_of(tmp_path / "s")
    driver = [e for e in evs if "instrument" in e]
    kinds = {(e["instrument"].split(" ")[0], e["kind"]) for e in driver}
    assert {("meter", "retry"), ("meter", "resync"), ("meter", "recovered")} <= kinds
    assert ("source", "retry") in kinds and ("source", "recovered") in kinds
    assert ("digipots", "retry") in kinds
    assert any(k == "queue_errors" for _, k in kinds)
    assert all(isinstance(e["bench_s"], float) for e in driver)
    # logged once: through on_event, not again through the logging handler as kind "log"
    assert not [e for e in evs if e.get("logger", "").startswith("drivers")]
    assert all(e["kind"] != "log" for e in evs)
    n_retries = sum(e["kind"] == "retry" for e in driver)
    assert n_retries == (rig.digipots.stats["retries"] + rig.meter.stats["retries"]
                         + sum(i.stats["retries"] for i in rig.sources.instruments.values()))
    assert read_status(tmp_path / "s")["events"]["retry"] >= n_retries
    assert isinstance(rig.meter.on_event, EventBuffer)  # disconnected when the run ended


def test_events_of_a_rig_being_set_up_are_kept_and_logged_when_the_session_starts(tmp_path):
    proto = campaign_protocol(tmp_path, steps=2)
    rig = build_rig(proto.rig, sim_seed=proto.seed, network=proto.network)
    psu1 = rig.sources.instruments["psu1"]
    get_bench(rig.extra["sim_bench"]).faults.schedule_next("scpi_error", after=2)  # setup's CURR message
    psu1.setup()  # before any session exists: the retry waits in the rig's buffer
    assert [e["event"] for e in psu1.on_event.events] == ["queue_errors", "retry", "recovered"]
    run_protocol(proto, session_dir=tmp_path / "s", rig=rig, progress=False)
    evs = events_of(tmp_path / "s")
    early = [e for e in evs if e.get("while") == "building the rig"]
    assert [e["kind"] for e in early] == ["queue_errors", "retry", "recovered"]
    assert all(e["instrument"] == "source psu1 (E36312A)" for e in early)
    assert evs.index(early[0]) == 1  # right after run_started
    assert psu1.on_event.events == []  # taken, not logged twice


def break_meter_after(rig, scans: int, how: str) -> dict:
    """Make the emulated DAQ stop answering ``READ?`` after ``scans`` scans: ``"timeout"`` (the
    scan's reply never comes) or ``"error"`` (READ? fails with -221 in the queue)."""
    daq = get_bench(rig.extra["sim_bench"]).instruments["daq"]
    read = daq.handlers[("READ", True)]
    write = daq.write
    calls = {"n": 0}

    def failing_read(args, chans):
        calls["n"] += 1
        if calls["n"] > scans and how == "error":
            raise ScpiError(-221, "Settings conflict; trigger lost")
        return read(args, chans)

    def losing_write(data: bytes) -> None:
        write(data)
        if b"READ?" in data and calls["n"] > scans and how == "timeout":
            daq._out.clear()  # the reply is lost: the host's read times out (and -420 is queued)

    daq.handlers[("READ", True)] = failing_read
    daq.write = losing_write
    return calls


@pytest.mark.parametrize("how", ["timeout", "error"])
def test_meter_out_of_retries_stops_the_run_cleanly(tmp_path, how):
    proto = campaign_protocol(tmp_path, steps=10)
    rig = build_rig(proto.rig, sim_seed=proto.seed, network=proto.network)
    calls = break_meter_after(rig, 20, how)
    with pytest.raises(InstrumentError, match=r"'READ\?' failed after 4 attempts"):
        run_protocol(proto, session_dir=tmp_path / "s", rig=rig, progress=False)
    st = read_status(tmp_path / "s")
    assert st["status"] == "failed" and st["safe_state"] is True and "failed after 4 attempts" in st["reason"]
    assert not sim_model(rig).driven  # every source output off
    assert calls["n"] == 20 + 4
    assert len(read_session(tmp_path / "s")) == 20  # every scan that answered is a row
    evs = events_of(tmp_path / "s")
    meter = [e for e in evs if e.get("instrument", "").startswith("meter")]
    if how == "timeout":
        assert [e["kind"] for e in meter] == ["retry", "resync"] * 3 + ["gave_up"]
        assert meter[1]["cleared_errors"] == ['-420,"Query UNTERMINATED"']
        assert "timeout" in st["reason"]
    else:
        assert [e["kind"] for e in meter] == ["queue_errors", "retry"] * 3 + ["queue_errors", "gave_up"]
        assert meter[0]["errors"] == '-221,"Settings conflict; trigger lost"'
        assert '-221,"Settings conflict; trigger lost"' in st["reason"]
    assert [e["kind"] for e in evs][-1] == "run_ended"
