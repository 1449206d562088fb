"""The emulated transports beneath the real drivers: pyserial URL sim://, the pyvisa backend,
the board's quirks, the SCPI subset and error queue, modelled time and fault injection."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import pyvisa
import serial

import simulator  # noqa: F401 - registers sim://
from drivers import digiproto as dp
from drivers.daq970a import DAQ970A
from drivers.digipot import DigipotBoard
from drivers.sources import E36312A, Keithley2450
from labnet.config.rigfile import load_rig
from labnet.core.errors import InstrumentError
from simulator.bench import SimBench, register, unregister
from simulator.breadboard import Breadboard, SimSettings
from simulator.faults import FaultPlan
from simulator.protocol_sim import Serial as SimSerial
from simulator.visa import open_resource_manager

RIG = Path(__file__).resolve().parent.parent / "protocols" / "rigs" / "sim16.toml"
_ids = itertools.count()


@pytest.fixture
def bench():
    spec = load_rig(RIG)
    b = SimBench(f"tb{next(_ids)}", Breadboard(spec.network, spec.part, SimSettings(**spec.sim)))
    b.add_instrument("daq", "DAQ970A")
    b.add_instrument("psu1", "E36312A", "psu1")
    b.add_instrument("smu", "Keithley2450", "smu")
    register(b)
    yield b
    unregister(b.name)


def port_of(bench: SimBench, **kw) -> serial.SerialBase:
    return serial.serial_for_url(f"sim://{bench.name}", baudrate=115200, timeout=0.5, **kw)


def board_of(bench: SimBench, **kw) -> DigipotBoard:
    return DigipotBoard(port_of(bench), sleep=bench.clock.sleep, **kw).connect()


# ---------------------------------------------------------------------- serial
def test_sim_url_is_a_real_pyserial_port(bench):
    p = port_of(bench)
    assert isinstance(p, serial.SerialBase) and isinstance(p, SimSerial) and p.is_open
    with pytest.raises(serial.SerialException, match="no simulated bench"):
        serial.serial_for_url("sim://nosuchbench")
    with pytest.raises(serial.SerialException, match="unknown option"):
        serial.serial_for_url(f"sim://{bench.name}?speed=3")


def test_opening_the_port_resets_the_board_and_a_ready_line_follows_the_boot(bench):
    bench.model.codes[:] = 12
    t0 = bench.clock.now()
    p = port_of(bench)
    p.timeout = 3.0
    assert (bench.model.codes == 49).all()  # wipers at the power-up code
    assert p.read_until(b"\n") == dp.seal("!RDY LNDP 1.0")
    assert bench.clock.now() - t0 >= bench.board.timing.boot_s


def test_bytes_sent_while_booting_are_lost(bench):
    p = port_of(bench)
    p.timeout = 3.0
    p.reset_input_buffer()  # nothing there yet: the board is still booting
    p.write(dp.request(0, "I"))
    assert p.read_until(b"\n") == dp.seal("!RDY LNDP 1.0")
    assert p.read_until(b"\n") == b""  # the request went to the bootloader


def test_exchange_time_is_bytes_at_the_baud_rate_plus_latency(bench):
    b = board_of(bench)
    tm = bench.board.timing
    t0 = bench.clock.now()
    b.write_codes(list(range(16)), [50] * 16)  # 16 X9C wipers, one tap each
    dt = bench.clock.now() - t0
    line = len(dp.request(0, "W", "00", "32" * 16))
    reply = len(dp.seal("00 OK W 10 00"))
    expect = tm.usb_rtt_s + (line + reply) * tm.byte_s + tm.parse_s + 16 * tm.x9c_step_s
    assert dt == pytest.approx(expect, rel=1e-9)
    assert (bench.model.codes == 50).all()


def test_receive_buffer_overflow_when_the_host_overruns_it(bench):
    p = port_of(bench)
    p.timeout = 3.0
    p.read_until(b"\n")
    p.write(dp.request(0, "Y"))
    assert p.read_until(b"\n") == dp.seal("00 OK Y")
    # a second slow line behind a long X9C move: 3 full lines at once overrun the 64-byte ring
    lines = [dp.request(i, "W", "00", ("00" if i % 2 else "63") * 16) for i in range(1, 6)]
    p.write(b"".join(lines))
    replies = [p.read_until(b"\n") for _ in range(5)]
    assert dp.seal("-- ER 02 OVERFLOW") in replies
    assert replies[0] == dp.seal(f"01 OK W 10 {dp.table_crc([0] * 16):02X}")


def test_board_reset_fault_is_recovered_by_the_driver(bench):
    b = board_of(bench, retries=5)
    b.write_codes(list(range(16)), list(range(30, 46)))
    bench.board.reset_now()
    assert (bench.model.codes == 49).all()
    b.write_codes([0], [12])
    assert bench.model.codes.tolist() == [12] + list(range(31, 46))
    assert b.stats["recoveries"] == 1


@pytest.mark.parametrize("kind", ["drop", "garble", "delay", "reset"])
def test_seeded_board_faults_are_survived(bench, kind):
    bench.faults.rates[kind] = 0.3
    b = DigipotBoard(port_of(bench), sleep=bench.clock.sleep, retries=8).connect()
    rng = np.random.default_rng(3)
    for _ in range(15):
        codes = rng.integers(10, 99, 16)
        b.write_codes(list(range(16)), codes.tolist())
        assert bench.model.codes.tolist() == codes.tolist()
    assert any(e.kind == kind for e in bench.faults.log)


def test_unplugged_port_raises_then_the_driver_reconnects(bench):
    bench.faults.schedule("unplug", 4)
    bench.faults.unplug_s = 0.05
    events: list = []
    b = DigipotBoard(port_of(bench), sleep=bench.clock.sleep, on_event=events.append).connect()
    b.write_codes([1], [70])
    b.write_codes([2], [71])
    kinds = [e["event"] for e in events]
    assert "port_lost" in kinds and "reconnected" in kinds and "recovered" in kinds
    assert bench.model.codes[1:3].tolist() == [70, 71]


def test_fault_plan_is_seeded_and_validated():
    a, b = FaultPlan(5, {"drop": 0.5}), FaultPlan(5, {"drop": 0.5})
    assert [a.fire("drop", 0) for _ in range(50)] == [b.fire("drop", 0) for _ in range(50)]
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultPlan(0, {"meteor": 0.1})
    with pytest.raises(ValueError, match="within 0..1"):
        FaultPlan(0, {"drop": 2})
    p = FaultPlan().schedule("reset", 2)
    assert [p.fire("reset", float(i)) for i in range(4)] == [False, False, True, False]
    assert p.log[0].kind == "reset" and p.log[0].t == 2.0


# ---------------------------------------------------------------------- VISA
def test_pyvisa_backend_gives_real_resources(bench):
    rm = open_resource_manager()
    assert isinstance(rm, pyvisa.ResourceManager)
    assert f"TCPIP0::{bench.name}::daq::INSTR" in rm.list_resources()
    r = rm.open_resource(f"TCPIP0::{bench.name}::daq::INSTR")
    assert isinstance(r, pyvisa.resources.MessageBasedResource)
    assert r.query("*IDN?").startswith("Keysight Technologies,DAQ970A,")
    with pytest.raises(pyvisa.errors.VisaIOError):
        rm.open_resource(f"TCPIP0::{bench.name}::nothing::INSTR")


def test_scpi_error_numbers(bench):
    r = open_resource_manager().open_resource(f"TCPIP0::{bench.name}::daq::INSTR")
    r.read_termination = "\n"
    r.write("VOLTX:DC 1")
    r.write("VOLT:DC:NPLC 3,(@101)")
    r.write("CONF:VOLT:DC 10,(@101:1")
    r.write("ROUT:SCAN (@101,102),5")
    r.write("*IDN?")
    r.write("*CLS;*IDN?")
    r.read()
    r.timeout = 100
    with pytest.raises(pyvisa.errors.VisaIOError):
        r.read()  # nothing asked: timeout, and -420 on the queue
    errs = []
    while True:
        e = r.query("SYST:ERR?")
        if e.startswith("+0"):
            break
        errs.append(int(e.split(",")[0]))
    assert errs == [-420]
    # an execution error (-2xx) does not stop the message; a command error (-1xx) discards its
    # rest (IEEE 488.2 parser; test_scpi_emulators.py)
    r.write("VOLT:DC:NPLC 3,(@101);VOLTX:DC 1;CONF:VOLT:DC 10,(@101:1;ROUT:SCAN (@101,102),5")
    assert [r.query("SYST:ERR?").split(",")[0] for _ in range(3)] == ["-222", "-113", "+0"]
    assert r.query("SYST:ERR?") == '+0,"No error"'
    r.write("*IDN?")
    r.write("*OPC?")  # the *IDN? reply was never read
    assert r.read() == "1"
    assert r.query("SYST:ERR?").startswith("-410")


def test_error_queue_overflows_at_20(bench):
    inst = bench.instruments["daq"]
    for _ in range(25):
        inst.push_error(-113)
    assert len(inst.error_queue) == 20 and inst.error_queue[-1][0] == -350


def test_daq_scan_time_is_nplc_times_channels_plus_switching(bench):
    r = open_resource_manager().open_resource(f"TCPIP0::{bench.name}::daq::INSTR")
    m = DAQ970A(r, nplc=10)
    m.configure(["103", "101", "102"])
    emu = bench.instruments["daq"]
    t0 = bench.clock.now()
    v = m.read()
    dt = bench.clock.now() - t0
    assert emu.scan == [101, 102, 103]
    expect = 3 * (10 / 60 + emu.switch_s) + emu.trigger_s + emu.timing.write_s + emu.timing.read_s
    assert dt == pytest.approx(expect, rel=1e-9)
    truth = bench.model.node_voltages()[bench.model.network.indices(["n2", "n0", "n1"])]
    assert np.allclose(v, truth, atol=1e-4)


def test_visa_timeout_is_modelled_and_surfaces_as_a_driver_error(bench):
    r = open_resource_manager().open_resource(f"TCPIP0::{bench.name}::daq::INSTR")
    m = DAQ970A(r, nplc=200, timeout_s=1.0)
    m.configure(["101", "102"])  # a 2 x 200 PLC scan takes 6.7 s: the driver waits up to 2 x 6.7 + 1 s
    assert m.timeout_s == pytest.approx(2 * 2 * 200 / 60 + 1) and r.timeout == pytest.approx(m.timeout_s * 1000, abs=1)
    m.timeout_s, r.timeout = 1.0, 1000.0  # now make it too short
    t0 = bench.clock.now()
    with pytest.raises(InstrumentError, match="timeout"):
        m.read()
    assert bench.clock.now() - t0 == pytest.approx(1.0 + bench.instruments["daq"].timing.write_s)


def test_sources_drive_the_model_and_measure_its_current(bench):
    rm = open_resource_manager()
    psu = E36312A(rm.open_resource(f"TCPIP0::{bench.name}::psu1::INSTR"), max_v={"1": 1, "2": 1, "3": 1})
    smu = Keithley2450(rm.open_resource(f"TCPIP0::{bench.name}::smu::INSTR"), max_v={"1": 1}, current_limit_a=1e-3)
    psu.setup()
    smu.setup()
    assert bench.model.driven == {}
    psu.apply({"1": 1.0, "2": 0.3})
    smu.apply({"1": 0.2})
    assert bench.model.driven == {"psu1.1": 1.0, "psu1.2": 0.3, "smu.1": 0.2}
    bench.clock.sleep(0.05)  # the supply's outputs settle (sim16's supply_tau_s, simulator.settling)
    i = psu.read_currents(["1", "2"])
    assert np.allclose(i, bench.model.source_currents(["psu1.1", "psu1.2"]))
    assert smu.read_currents(["1"])[0] == pytest.approx(bench.model.source_currents(["smu.1"])[0])
    assert bench.instruments["smu"].smod == "HIMP"
    psu.safe_state()
    smu.safe_state()
    assert bench.model.driven == {}


def test_scpi_fault_hooks(bench):
    rm = open_resource_manager()
    m = DAQ970A(rm.open_resource(f"TCPIP0::{bench.name}::daq::INSTR"))
    bench.faults.schedule_next("scpi_error", 2)
    with pytest.raises(InstrumentError, match="-222"):
        m.configure(["101", "102"])
    m.configure(["101", "102"])
    bench.faults.schedule_next("outlier")
    bench.faults.outlier_v = 7.5
    assert 7.5 in m.read().tolist()
    bench.faults.schedule_next("visa_timeout")
    with pytest.raises(InstrumentError, match="timeout"):
        m.read()
    assert [e.kind for e in bench.faults.log] == ["scpi_error", "outlier", "visa_timeout"]


def test_a_new_fault_plan_reaches_every_emulator(bench):
    plan = FaultPlan(9, {"outlier": 1.0})
    bench.faults = plan
    assert bench.board.faults is plan and all(i.faults is plan for i in bench.instruments.values())


def test_seeded_fault_campaign_on_the_default_rig_completes():
    """Short training runs through the wire with board faults at a few % per exchange: every
    run completes with the board's wipers equal to the host's record."""
    from labnet.app.build import build_rig
    from labnet.config.protocol import load_protocol
    from labnet.experiments.engine import Engine
    from simulator.bench import get_bench

    proto = load_protocol(RIG.parent.parent / "allostery.toml", steps=12)
    fired = 0
    for seed in range(3):
        rig = build_rig(proto.rig, sim_seed=proto.seed, network=proto.network)
        bench = get_bench(rig.extra["sim_bench"])
        bench.faults = FaultPlan(seed, {"drop": 0.03, "garble": 0.03, "delay": 0.02, "reset": 0.02})
        with rig:
            res = Engine(rig, proto.build_task(), proto.rule, proto.train, seed=proto.seed).run(np.full(16, 49))
            assert res.status == "completed"
            assert bench.model.codes.tolist() == rig.codes.tolist() == rig.digipots.record
        assert bench.model.driven == {}  # safe state at the end
        fired += len(bench.faults.log)
    assert fired >= 5
