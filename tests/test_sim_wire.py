"""The default simulated rig runs the real drivers over the emulated wire: code path, learning,
round trips per step and modelled bench time against the instrument floor, dry runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvisa
import serial

from drivers.daq970a import DAQ970A
from drivers.digipot import DigipotBoard
from drivers.sources import RoutedSources
from labnet.app.build import build_rig
from labnet.app.cli import main
from labnet.app.runner import run_protocol
from labnet.config.protocol import load_protocol
from labnet.experiments.engine import Engine
from simulator.bench import get_bench
from simulator.protocol_sim import Serial as SimSerial
from simulator.timing import report, snapshot

ROOT = Path(__file__).resolve().parent.parent
ALLOSTERY = ROOT / "protocols" / "allostery.toml"
RIGS = ROOT / "protocols" / "rigs"


def test_default_rig_uses_the_real_drivers_over_emulated_transports(tmp_path, monkeypatch):
    import simulator.direct as direct

    calls = {"write_codes": 0, "read": 0, "apply": 0}

    def spy(cls, name):
        orig = getattr(cls, name)

        def wrapped(self, *a, **k):
            calls[name] += 1
            return orig(self, *a, **k)

        monkeypatch.setattr(cls, name, wrapped)

    spy(DigipotBoard, "write_codes")
    spy(DAQ970A, "read")
    spy(RoutedSources, "apply")
    for cls in (direct.DirectDigipots, direct.DirectMeter, direct.DirectSources):
        monkeypatch.setattr(cls, "__init__", lambda self, *a, **k: pytest.fail("the wire-less simulator was used"))
    proto = load_protocol(ALLOSTERY, steps=4)
    assert proto.rig.path.name == "sim16.toml" and proto.rig.transport == "wire"
    out = run_protocol(proto, tmp_path, progress=False)
    rig = out.rig
    assert isinstance(rig.digipots, DigipotBoard) and isinstance(rig.digipots.port, SimSerial)
    assert isinstance(rig.digipots.port, serial.SerialBase)
    assert isinstance(rig.meter.resource, pyvisa.resources.MessageBasedResource)
    assert calls["write_codes"] >= 4 and calls["read"] >= 2 * 4 and calls["apply"] >= 2 * 4
    bench = get_bench(rig.extra["sim_bench"])
    assert "READ?;:SYST:ERR?" in bench.instruments["daq"].messages
    assert bench.board.lines > 0 and bench.board.logic.stored == []  # training never stores
    assert out.result.status == "completed"


def test_learns_through_the_wire_as_well_as_without_it(tmp_path):
    wire = run_protocol(load_protocol(ALLOSTERY), tmp_path / "wire", progress=False).result
    direct = run_protocol(load_protocol(ALLOSTERY, rig=RIGS / "sim16-direct.toml"), tmp_path / "direct",
                          progress=False).result
    fall_wire = wire.initial.train["mse"] / wire.final.train["mse"]
    fall_direct = direct.initial.train["mse"] / direct.final.train["mse"]
    print(f"train error falls {fall_wire:.3g}x through the wire, {fall_direct:.3g}x without it")
    assert fall_wire >= 100
    assert wire.final.train["mse"] <= 2 * direct.final.train["mse"]


def test_round_trips_per_step_are_minimal_and_bench_time_is_near_the_instrument_floor():
    proto = load_protocol(ALLOSTERY)
    rig = build_rig(proto.rig, sim_seed=proto.seed, network=proto.network)
    with rig:
        eng = Engine(rig, proto.build_task(), proto.rule, proto.train, seed=proto.seed)
        rig.write_codes(np.full(rig.network.n_edges, 49))
        eng.train_step()
        bench = get_bench(rig.extra["sim_bench"])
        a, s0 = snapshot(bench), dict(rig.digipots.stats)
        n = 20
        for _ in range(n):
            eng.train_step()
        b = snapshot(bench)
    r = report(a, b, n, 115200)
    print(r.text())
    # one board exchange (the batched W), one READ? per state (free, clamped) and, per state, one
    # exchange with each supply whose outputs change (sim16: the clamp's two supplies), its error
    # queue checked in that same exchange (";:SYST:ERR?"): no message without its reply
    assert (r.board_round_trips, r.visa_queries, r.visa_writes) == (1, 2 + 2 * 2, 0)
    assert rig.digipots.stats["retries"] == s0["retries"]
    # the floor, computed independently: driver-side bytes at 115200 baud + 2 scans x 10 channels x 1 PLC
    host_bytes = (rig.digipots.stats["bytes_out"] + rig.digipots.stats["bytes_in"]
                  - s0["bytes_out"] - s0["bytes_in"]) / n
    floor = host_bytes * 10 / 115200 + 2 * 10 * 1 / 60
    assert r.floor_s == pytest.approx(floor, rel=1e-9)
    assert floor <= r.modelled_s <= 1.10 * floor


def test_dry_run_of_the_real_bench_prints_the_estimated_bench_time(tmp_path, capsys):
    code = main(["run", str(ALLOSTERY), "--rig", str(RIGS / "breadboard16.toml"), "--dry-run", "--steps", "3",
                 "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "on breadboard16" in out and "estimated bench time:" in out and "instrument floor" in out
    assert "a typical training step, per step: modelled" in out and "round trips 7 (board 1, VISA queries 6)" in out


@pytest.mark.skipif(Path("/dev/ttyUSB0").exists(), reason="a serial device is attached")
def test_the_real_bench_without_hardware_is_a_one_line_error(tmp_path, capsys):
    code = main(["run", str(ALLOSTERY), "--rig", str(RIGS / "breadboard16.toml"), "--steps", "1", "--out", str(tmp_path),
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "instruments.board.address" in err and "breadboard16.toml" in err
