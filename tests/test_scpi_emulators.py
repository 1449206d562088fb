"""The SCPI emulators behave as the manuals say where it matters to a run, and the drivers put
the instruments in a known state whatever other software left them in.

Through real pyvisa resources on the simulator backend. Manuals (read in stored public copies):
Keysight DAQ970A/DAQ973A Programming Guide (TRIGger:SOURce, TRIGger:COUNt, TRIGger:TIMer,
SAMPle:COUNt, [SENSe:]VOLTage[:DC]:NPLC), Keithley Model 2450 Reference Manual
(:SOURce[1]:<function>[:LEVel]..., :SOURce[1]:<function>:RANGe, appendix B *LANG), Keysight
E36300 Series Programming Guide (*RST settings), SCPI-99 / IEEE 488.2 error classes.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest
import pyvisa

from drivers.daq970a import DAQ970A
from drivers.scpi import ScpiInstrument
from drivers.sources import E36312A, Keithley2450
from labnet.app.build import build_rig, dry_run_spec
from labnet.config.rigfile import load_rig
from labnet.core.errors import InstrumentError
from simulator.bench import SimBench, get_bench, register, unregister
from simulator.breadboard import Breadboard, SimSettings
from simulator.visa import open_resource_manager

ROOT = Path(__file__).resolve().parent.parent
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"
_ids = itertools.count()
CHANS = [str(101 + i) for i in range(10)]


@pytest.fixture
def bench():
    spec = load_rig(SIM16)
    b = SimBench(f"emu{next(_ids)}", Breadboard(spec.network, spec.part, SimSettings(**spec.sim)))
    b.add_instrument("daq", "DAQ970A")
    b.add_instrument("daq50", "DAQ970A", mains_hz=50)
    b.add_instrument("psu1", "E36312A", "psu1")
    b.add_instrument("smu", "Keithley2450", "smu")
    b.add_instrument("tsp", "Keithley2450", "tsp", lang="TSP")
    register(b)
    yield b
    unregister(b.name)


def res(bench: SimBench, dev: str, timeout_ms: float = 2000.0) -> pyvisa.resources.MessageBasedResource:
    r = open_resource_manager().open_resource(f"TCPIP0::{bench.name}::{dev}::INSTR")
    r.read_termination = r.write_termination = "\n"
    r.timeout = timeout_ms
    return r


def errors(r) -> list[int]:
    out = []
    while not (e := r.query("SYST:ERR?")).startswith("+0"):
        out.append(int(e.split(",")[0]))
    return out


def scan_list(r, n: int = 3) -> None:
    r.write(f"CONF:VOLT:DC 10,(@101:{100 + n})")


# ---------------------------------------------------------------------- DAQ970A trigger model
def test_read_in_bus_trigger_is_a_trigger_deadlock(bench):
    """DAQ970A Programming Guide, TRIGger:SOURce: 'The READ? and MEASure commands and queries cannot
    be used to take readings when the selected trigger source is BUS. This is called a trigger
    deadlock condition.' READ? queues -214 and never answers (the host's read times out)."""
    r = res(bench, "daq", 500)
    scan_list(r)
    r.write("TRIG:SOUR BUS")
    assert r.query("TRIG:SOUR?") == "BUS"
    with pytest.raises(pyvisa.errors.VisaIOError):
        r.query("READ?")
    assert errors(r) == [-214, -420]


@pytest.mark.parametrize("source", ["EXT", "ALAR1", "INT"])
def test_read_waiting_for_a_trigger_that_never_comes_times_out(bench, source):
    """TRIGger:SOURce EXTernal/ALARm/INTernal: a sweep starts on the trigger; none comes on the
    simulator, so READ? has no reply and a device clear drops the pending scan."""
    r = res(bench, "daq", 300)
    scan_list(r)
    r.write(f"TRIG:SOUR {source}")
    with pytest.raises(pyvisa.errors.VisaIOError):
        r.query("READ?")
    r.clear()
    assert r.query("*IDN?").startswith("Keysight Technologies,DAQ970A")


def test_a_meter_switched_to_bus_trigger_mid_run_stops_the_read_naming_the_deadlock(bench):
    """Someone sets TRIG:SOUR BUS after configure(): ``READ?;:SYST:ERR?`` gives no readings and the
    -214 in the same exchange; the driver stops at once (repeating READ? cannot trigger), saying
    what happened."""
    m = DAQ970A(res(bench, "daq"), retries=3, sleep=bench.clock.sleep)
    m.configure(CHANS[:3])
    m.read()
    res(bench, "daq").write("TRIG:SOUR BUS")
    m.timeout_s, m.resource.timeout = 0.5, 500.0
    with pytest.raises(InstrumentError, match=r"-214,\"Trigger deadlock\": the trigger source was changed to BUS"):
        m.read()
    assert m.stats["retries"] == 0  # not repeated


def test_trigger_count_three_returns_three_sweeps(bench):
    """TRIGger:COUNt: the number of sweeps through the scan list one READ? takes — 3 sweeps of 4
    channels are 12 readings, taking 3 scan times."""
    r = res(bench, "daq")
    emu = bench.instruments["daq"]
    scan_list(r, 4)
    one = emu.scan_time_s()
    r.write("TRIG:COUN 3")
    assert r.query("TRIG:COUN?") == "+3"
    t0 = bench.clock.now()
    vals = [float(x) for x in r.query("READ?").split(",")]
    assert len(vals) == 12 and emu.scans == 3
    assert bench.clock.now() - t0 == pytest.approx(3 * one + emu.timing.write_s + emu.timing.read_s)
    truth = bench.model.node_voltages()[bench.model.network.indices(
        [n for n, c in sorted(bench.model.network.meter_channels.items(), key=lambda x: x[1])][:4])]
    assert np.allclose(np.reshape(vals, (3, 4)), truth, atol=1e-3)


def test_timer_trigger_paces_the_sweeps_and_infinite_count_never_completes(bench):
    """TRIGger:SOURce TIMer with TRIGger:TIMer <s>: sweeps start <s> apart; TRIGger:COUNt INFinity: the
    scan goes on, READ? never completes."""
    r = res(bench, "daq", 10_000)
    emu = bench.instruments["daq"]
    scan_list(r, 2)
    r.write("TRIG:SOUR TIM;:TRIG:TIM 2.5;:TRIG:COUN 2")
    t0 = bench.clock.now()
    assert len(r.query("READ?").split(",")) == 4
    assert bench.clock.now() - t0 == pytest.approx(2.5 + emu.scan_time_s() + emu.timing.write_s + emu.timing.read_s)
    r.write("TRIG:SOUR IMM;:TRIG:COUN INF")
    assert r.query("TRIG:COUN?") == "9.9E+37"
    r.timeout = 1000
    with pytest.raises(pyvisa.errors.VisaIOError):
        r.query("READ?")


def test_sample_count_is_for_digitizing_and_illegal_values_are_refused(bench):
    """SAMPle:COUNt (DAQ970A): 'the number of measurements (samples) the instrument takes per trigger
    for single channel DMM digitizing' — kept, but a scan still returns one reading per channel.
    A discrete parameter outside its list is SCPI-99 -224 'Illegal parameter value'; a number out
    of range -222."""
    r = res(bench, "daq")
    scan_list(r, 2)
    r.write("SAMP:COUN 5")
    assert r.query("SAMP:COUN?") == "+5" and len(r.query("READ?").split(",")) == 2
    r.write("TRIG:SOUR SOMETIMES")
    r.write("TRIG:COUN 0")
    assert errors(r) == [-224, -222]


def test_rst_restores_the_factory_trigger_state(bench):
    """*RST: trigger source IMMediate (TRIGger:SOURce 'Default: IMMediate'), count 1, sample count 1."""
    r = res(bench, "daq")
    r.write("TRIG:SOUR BUS;:TRIG:COUN 7;:SAMP:COUN 3")
    r.write("*RST")
    assert [r.query(q) for q in ("TRIG:SOUR?", "TRIG:COUN?", "SAMP:COUN?")] == ["IMM", "+1", "+1"]


# ---------------------------------------------------------------------- errors and the rest of the message
def test_a_command_error_discards_the_rest_of_the_message_an_execution_error_does_not(bench):
    """IEEE 488.2 / SCPI-99: -100..-199 are command errors (the parser could not read the unit) and the
    parser discards the rest of the program message; -200..-299 execution errors (a valid unit that
    could not be executed) do not stop the units after it."""
    r = res(bench, "daq", 300)
    r.write("VOLTX:DC 1;*IDN?")  # -113: the *IDN? is never executed
    with pytest.raises(pyvisa.errors.VisaIOError):
        r.read()
    assert errors(r) == [-113, -420]
    assert r.query("VOLT:DC:NPLC 3,(@101);*IDN?").startswith("Keysight")  # -222, then *IDN? answered
    assert errors(r) == [-222]
    r.write("ROUT:SCAN (@101),5;*CLS")
    assert errors(r) == [-108]  # *CLS after the command error was not executed
    r.write("SETUP& 1;*IDN?")  # SCPI-99 -101 "Invalid character": 'a header containing an ampersand, SETUP&'
    r.write("*IDN")  # a common query without its '?': undefined
    assert errors(r) == [-101, -113]


def test_the_driver_names_a_command_error_at_once_instead_of_retrying_a_timeout(bench):
    """A verified write whose command the instrument cannot parse: the appended ``SYST:ERR?`` is
    discarded with the rest of the message, so no reply comes; the re-sync finds the -113 and the
    driver stops with it (repeating an undefined header cannot help) — one attempt, not four."""
    emu = bench.instruments["psu1"]
    inst = ScpiInstrument(res(bench, "psu1"), "source psu1 (E36312A)", retries=3, sleep=bench.clock.sleep)
    n0 = len(emu.messages)
    with pytest.raises(InstrumentError, match=r"source psu1 \(E36312A\): the instrument refused 'VOLTX 1,\(@1\)': "
                                              r'-113,"Undefined header" \(a command error'):
        inst.write_verified("VOLTX 1,(@1)")
    assert list(emu.messages)[n0:].count("VOLTX 1,(@1);:SYST:ERR?") == 1 and emu.error_queue == []
    with pytest.raises(InstrumentError, match="refused 'setting up': -108"):
        inst.configure_verified("setting up", lambda: inst.write("OUTP OFF,ON,(@1)"))
    assert list(emu.messages).count("OUTP OFF,ON,(@1)") == 1


def test_a_huge_channel_range_is_refused_at_once(bench):
    """Issue 13: ``(@101:250000000)`` used to expand 250 million channels. A channel is ``sccc`` (the
    34970A guide: 'the first and last channel in the range must be valid'): -222 at once."""
    r = res(bench, "daq")
    t0 = time.perf_counter()
    r.write("ROUT:SCAN (@101:250000000)")
    r.write("VOLT:DC:NPLC 1,(@101:99999999999999999999)")
    r.write("OUTP ON,(@1:1000)")
    assert errors(r) == [-222, -222, -113]  # OUTP is not a DAQ command
    p = res(bench, "psu1")
    p.write("OUTP ON,(@1:250000000)")
    assert errors(p) == [-222] and time.perf_counter() - t0 < 5.0


# ---------------------------------------------------------------------- Keithley 2450
def test_2450_level_beyond_the_fixed_range_is_refused(bench):
    """2450 Reference Manual, :SOURce[1]:<function>[:LEVel][:IMMediate][:AMPLitude]: 'If a manual source
    range is selected, the level cannot exceed the specified range. For example, if the voltage source
    is on the 2 V range (auto range is disabled), you cannot set the voltage source amplitude to 3 V.'
    The 2 V range sources up to 2.1 V; 2.2 V is -222 and the level stays."""
    r = res(bench, "smu")
    r.write(":SOUR:VOLT:RANG 2")
    r.write(":SOUR:VOLT 2.1")
    r.write(":SOUR:VOLT 2.2")
    assert errors(r) == [-222] and float(r.query(":SOUR:VOLT?")) == pytest.approx(2.1)
    assert float(r.query(":SOUR:VOLT:RANG?")) == 2.0


def test_2450_in_tsp_mode_rejects_scpi_and_the_driver_says_how_to_switch(bench):
    """2450 Reference Manual, appendix B '*LANG': TSP, SCPI or SCPI2400, in nonvolatile memory, effective
    after a restart. Booted in TSP, the instrument answers common commands but no SCPI command
    (-285 from the TSP parser, nothing executed); the driver checks *LANG? and refuses before setup."""
    r = res(bench, "tsp")
    emu = bench.instruments["tsp"]
    assert r.query("*LANG?") == "TSP" and r.query("*IDN?").startswith("KEITHLEY INSTRUMENTS INC.,MODEL 2450")
    r.write(":SOUR:VOLT 0.5;:OUTP ON")  # SYST:ERR? is SCPI too: the queue is read on the emulator
    assert [c for c, _ in emu.error_queue] == [-285] and emu.on[1] is False and emu.level[1] == 0.0
    emu.error_queue.clear()
    smu = Keithley2450(res(bench, "tsp"), max_v={"1": 1.0}, label="source tsp (Keithley2450)")
    with pytest.raises(InstrumentError, match=r"runs the TSP command set.*\*LANG SCPI.*restart"):
        smu.setup()
    assert emu.messages[-1] == "*LANG?"  # nothing sent after the check
    r.write("*LANG SCPI")
    assert r.query("*LANG?") == "TSP"  # not before a restart
    emu.reboot()
    smu.setup()
    assert emu.lang == "SCPI" and emu.range_v == 2.0


# ---------------------------------------------------------------------- known state from a hostile one
def test_meter_configure_recovers_from_whatever_other_software_left(bench):
    """Left in BUS trigger with 5 sweeps, 5 samples, NPLC 10 on other channels (as another program
    would): the old configuration (no *RST, no trigger settings) deadlocks READ?; configure() now
    sends *RST;*CLS;:TRIG:SOUR IMM;:TRIG:COUN 1 and every READ? is one sweep of one NPLC."""
    r = res(bench, "daq")
    emu = bench.instruments["daq"]
    r.write("TRIG:SOUR BUS;:TRIG:COUN 5;:SAMP:COUN 5;:VOLT:DC:NPLC 10,(@101:120);:ROUT:CHAN:DEL 1,(@101:120)")
    old = ["CONF:VOLT:DC 10,(@101:110)", "VOLT:DC:NPLC 1,(@101:110)", "ZERO:AUTO ONCE,(@101:110)",
           "ROUT:CHAN:DEL 0,(@101:110)", "ROUT:SCAN (@101:110)"]
    for msg in old:
        r.write(msg)
    r.timeout = 500
    with pytest.raises(pyvisa.errors.VisaIOError):
        r.query("READ?")  # the configuration that assumed the trigger state
    r.clear()
    r.write("*CLS")
    r.write("TRIG:SOUR TIM;:TRIG:TIM 3")  # now a timer, 5 sweeps
    m = DAQ970A(res(bench, "daq"), nplc=1, retries=0)
    m.configure(CHANS)
    assert (emu.trig_source, emu.trig_count, emu.samp_count) == ("IMM", 1, 1)
    t0 = bench.clock.now()
    assert m.read().shape == (10,)
    assert bench.clock.now() - t0 == pytest.approx(emu.scan_time_s() + emu.timing.write_s + emu.timing.read_s)
    assert emu.scan_time_s() < 10 * (1 / 60 + 0.01)  # 1 NPLC, no 1 s channel delay left over


def test_sources_setup_recovers_from_outputs_left_on(bench):
    """E36300 guide, Reset (*RST) settings / 2450 appendix B *RST: setup resets, then sets limits and the
    safe state — outputs left on at other levels and limits, a 200 V range, are all undone."""
    p, s = res(bench, "psu1"), res(bench, "smu")
    p.write("CURR 0.5,(@1:3);:VOLT 3,(@2);:OUTP ON,(@2)")
    s.write(":SOUR:VOLT:RANG 200;:SOUR:VOLT 5;:OUTP ON")
    assert bench.model.driven == {"psu1.2": 3.0, "smu.1": 5.0}
    E36312A(res(bench, "psu1"), max_v={"1": 1, "2": 1, "3": 1}).setup()
    Keithley2450(res(bench, "smu"), max_v={"1": 1.0}, current_limit_a=1e-3).setup()
    psu, smu = bench.instruments["psu1"], bench.instruments["smu"]
    assert bench.model.driven == {}
    assert psu.ilim == {1: 0.01, 2: 0.01, 3: 0.01} and psu.level == {1: 0.0, 2: 0.0, 3: 0.0}
    assert smu.range_v == 2.0 and smu.ilim[1] == 1e-3 and smu.level[1] == 0.0


# ---------------------------------------------------------------------- mains frequency
def test_at_50_hz_the_integration_time_is_20_ms_per_nplc(bench):
    """DAQ970A Programming Guide, [SENSe:]VOLTage[:DC]:NPLC: integration in power-line cycles; at 50 Hz
    mains 1 PLC = 20 ms. The emulator's virtual clock and the driver's timing floor both use it."""
    emu = bench.instruments["daq50"]
    m = DAQ970A(res(bench, "daq50"), nplc=10, mains_hz=50)
    m.configure(CHANS[:4])
    before = emu.integration_total_s
    m.read()
    assert emu.integration_total_s - before == pytest.approx(4 * 10 * 0.020)
    assert m.scan_time_s() == pytest.approx(4 * 10 * 0.020)
    assert emu.scan_time_s() == pytest.approx(emu.trigger_s + 4 * (emu.switch_s + 10 * 0.020))


def test_rig_mains_hz_reaches_the_meter_and_its_emulator(tmp_path):
    """``[rig] mains_hz = 50`` (labnet.config.rigfile): the built rig's meter and the emulated DAQ
    integrate 20 ms per NPLC; a rig without the key keeps 60 Hz."""
    text = SIM16.read_text(encoding="utf-8").replace('kind = "simulator"', 'kind = "simulator"\nmains_hz = 50', 1)
    text = text.replace("sim://sim16", "sim://sim50").replace("TCPIP0::sim16::", "TCPIP0::sim50::")
    (tmp_path / "r.toml").write_text(text.replace('name = "sim16"', 'name = "sim50"'), encoding="utf-8")
    spec = load_rig(tmp_path / "r.toml")
    assert spec.mains_hz == 50 and load_rig(SIM16).mains_hz == 60
    rig = build_rig(spec)
    try:
        assert rig.meter.plc_s == pytest.approx(0.020)
        assert get_bench(rig.extra["sim_bench"]).instruments["daq"].plc_s == pytest.approx(0.020)
    finally:
        rig.close()


def test_mains_hz_holds_for_the_dry_run_of_a_bench_rig_and_the_direct_transport(tmp_path):
    """The dry run of a real bench models it on the simulator with the bench's mains frequency
    (its estimated bench time integrates 20 ms per NPLC at 50 Hz); so does the direct transport."""
    bench_rig = ROOT / "protocols" / "rigs" / "breadboard16.toml"
    (tmp_path / "b.toml").write_text(bench_rig.read_text(encoding="utf-8").replace("# mains_hz = 50", "mains_hz = 50"),
                                     encoding="utf-8")
    spec = dry_run_spec(load_rig(tmp_path / "b.toml"))
    assert spec.simulated and spec.mains_hz == 50
    rig = build_rig(spec)
    try:
        daq = get_bench(rig.extra["sim_bench"]).instruments["meter"]
        assert rig.meter.plc_s == daq.plc_s == pytest.approx(0.020)
    finally:
        rig.close()
    direct = ROOT / "protocols" / "rigs" / "sim16-direct.toml"
    (tmp_path / "d.toml").write_text(direct.read_text(encoding="utf-8").replace(
        'transport = "direct"', 'transport = "direct"\nmains_hz = 50'), encoding="utf-8")
    rig = build_rig(load_rig(tmp_path / "d.toml"))
    try:
        rig.meter.configure(["101", "102"])
        t0 = rig.clock.now()
        rig.meter.read()
        assert rig.clock.now() - t0 == pytest.approx(2 * (1.0 * 0.020 + rig.meter.switch_s))
    finally:
        rig.close()
