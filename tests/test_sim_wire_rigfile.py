"""The [instruments] table of rig files: each mistake is a one-line error naming file and key,
raised before anything is opened; addresses alone switch between bench and simulator."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labnet.app.build import build_rig, dry_run_spec
from labnet.app.cli import main
from labnet.config.rigfile import load_rig
from labnet.core.errors import ConfigError

RIGS = Path(__file__).resolve().parent.parent / "protocols" / "rigs"
SIM16 = (RIGS / "sim16.toml").read_text()
BENCH = (RIGS / "breadboard16.toml").read_text()


def variant(tmp_path: Path, text: str, old: str, new: str) -> Path:
    assert old in text, old
    p = tmp_path / "rig.toml"
    p.write_text(text.replace(old, new, 1))
    return p


CASES = [
    (SIM16, 'address = "sim://sim16"', 'address = ""', "instruments.board.address", "non-empty"),
    (SIM16, "baud = 115200", "baud = 115201", "instruments.board.baud", "expected one of"),
    (SIM16, "timeout_s = 0.5", "timeout_s = 0", "instruments.board.timeout_s", ">= 0.01"),
    (SIM16, 'model = "DAQ970A"', 'model = "DMM6500"', "instruments.meter.model", "expected one of"),
    (SIM16, "nplc = 1.0", "nplc = 3.0", "instruments.meter.nplc", "expected one of"),
    (SIM16, "nplc = 1.0", "nplc = 1.0\nspeed = 2", "instruments.meter.speed", "unknown key"),
    (SIM16, 'model = "E36312A"', 'model = "E3631A"', "instruments.sources.psu1.model", "expected one of"),
    (SIM16, "current_limit_a = 0.001", "current_limit_a = 2.0", "instruments.sources.smu.current_limit_a", "<= 1.05"),
    (SIM16, 'n7 = "smu.1"', 'n7 = "psu3.1"', "network.source_channels.n7", "instrument one of"),
    (SIM16, 'n3 = "psu1.3"', 'n3 = "psu1.4"', "network.source_channels.n3", "has channels"),
    (SIM16, 'n0 = "101"', 'n0 = "121"', "network.meter_channels.n0", "slot 1-3"),
    (SIM16, 'address = "TCPIP0::sim16::daq::INSTR@sim"', 'address = "USB0::0x2A8D::0x5101::MY1::INSTR"', "instruments",
     "mixes simulated"),
    (SIM16, 'kind = "simulator"', 'kind = "bench"', "rig.kind", "addresses are simulated"),
    (SIM16, 'transport = "wire"', 'transport = "fibre"', "rig.transport", "expected one of"),
    (BENCH, 'transport = "wire"', 'transport = "direct"', "rig.transport", "only for simulated rigs"),
    (BENCH, "max_source_v = 1.0", "max_source_v = 10.0", "limits.max_source_v", "6.0 V maximum"),
    (SIM16, "[instruments.sources.psu2]", "[instruments.sourcez.psu2]", "instruments.sourcez", "unknown key"),
    (SIM16, "nplc = 1.0", "nplc = 1.0\nretries = -1", "instruments.meter.retries", ">= 0"),
    (SIM16, "nplc = 1.0", "nplc = 1.0\nretries = 2.5", "instruments.meter.retries", "expected an integer"),
    (SIM16, "current_limit_a = 0.001", "current_limit_a = 0.001\nretries = 21", "instruments.sources.smu.retries",
     "<= 20"),
]


@pytest.mark.parametrize("text,old,new,key,problem", CASES, ids=[c[3] + ":" + c[4] for c in CASES])
def test_bad_instrument_tables_name_file_and_key(tmp_path, capsys, text, old, new, key, problem):
    p = variant(tmp_path, text, old, new)
    with pytest.raises(ConfigError) as e:
        load_rig(p)
    assert e.value.file == str(p) and e.value.key == key and problem in e.value.problem
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(p) in err and key in err


def test_wire_transport_needs_the_instruments_table(tmp_path):
    p = tmp_path / "rig.toml"
    p.write_text(SIM16.split("[instruments.board]")[0])
    with pytest.raises(ConfigError, match=re.escape(f"{p}: instruments: missing required table")):
        load_rig(p)


def test_simulated_addresses_must_name_one_bench(tmp_path):
    p = variant(tmp_path, SIM16, "TCPIP0::sim16::psu2::INSTR@sim", "TCPIP0::other::psu2::INSTR@sim")
    spec = load_rig(p)
    with pytest.raises(ConfigError, match="different benches"):
        build_rig(spec)


def test_bench_and_simulator_differ_by_addresses_only():
    bench, sim = load_rig(RIGS / "breadboard16.toml"), load_rig(RIGS / "sim16.toml")
    assert bench.kind == "bench" and sim.kind == "simulator"
    assert bench.network.to_dict() == sim.network.to_dict() and bench.part == sim.part and bench.limits == sim.limits
    assert bench.instruments.board.address.startswith("/dev/") and sim.instruments.board.address == "sim://sim16"
    assert [s.model for s in bench.instruments.sources.values()] == [s.model for s in sim.instruments.sources.values()]
    dry = dry_run_spec(bench)
    assert dry.simulated and dry.instruments.board.address == "sim://breadboard16"
    assert all(s.simulated for s in dry.instruments.sources.values())
    assert dry_run_spec(sim) is sim


def test_kind_is_derived_from_the_addresses_when_omitted(tmp_path):
    p = variant(tmp_path, BENCH, 'kind = "bench"\n', "")
    assert load_rig(p).kind == "bench"
    p = variant(tmp_path, SIM16, 'kind = "simulator"\n', "")
    assert load_rig(p).kind == "simulator"


def test_scpi_retries_come_from_the_rig_file_and_backoff_sleeps_on_the_rig_clock(tmp_path):
    p = variant(tmp_path, SIM16, "nplc = 1.0", "nplc = 1.0\nretries = 5")
    rig = build_rig(load_rig(p), sim_seed=1)
    with rig:
        assert rig.meter.retries == 5
        assert all(inst.retries == 3 for inst in rig.sources.instruments.values())  # the default
        t0 = rig.clock.now()
        rig.meter.sleep(2.0)  # the simulator's modelled clock, not a real sleep
        assert rig.clock.now() == pytest.approx(t0 + 2.0)
        assert rig.meter.sleep == rig.clock.sleep and rig.sources.instruments["smu"].sleep == rig.clock.sleep
