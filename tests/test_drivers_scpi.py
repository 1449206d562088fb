"""Message-level tests of the SCPI drivers: exact messages, parsed replies, error queues,
timeouts and garbage (PyMeasure expected_protocol style)."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.daq970a import DAQ970A, Keysight34970A
from drivers.scpi import ScpiInstrument
from drivers.scpi_params import Choice, Command, Query, Range
from drivers.scpi_text import channel_list, split_reply
from drivers.sources import E36312A, Keithley2450, RoutedSources
from drivers.testing import Late, ScriptedResource, expected_protocol
from labnet.core.errors import InstrumentError, LimitError

DAQ_IDN = ("*IDN?", "Keysight Technologies,DAQ970A,MY58001234,A.02.02-01.00-02.01-00.02-03-02")
OK = '+0,"No error"'
NO_ERR = ("SYST:ERR?", OK)
PSU_IDN = ("*IDN?", "Keysight Technologies,E36312A,MY59001234,2.1.0-1.0.4-1.12")
SMU_IDN = ("*IDN?", "KEITHLEY INSTRUMENTS INC.,MODEL 2450,04321234,1.7.3b")


# ---------------------------------------------------------------------- base
def test_base_sets_termination_and_timeout():
    res = ScriptedResource([])
    ScpiInstrument(res, "x", timeout_s=2.5)
    assert (res.read_termination, res.write_termination, res.timeout) == ("\n", "\n", 2500.0)


def test_idn_parsed_and_model_checked():
    with expected_protocol(DAQ970A, [DAQ_IDN]) as m:
        assert m.idn()["model"] == "DAQ970A" and m.identity()["serial"] == "MY58001234"
    with expected_protocol(E36312A, [DAQ_IDN], label="psu1") as p, pytest.raises(InstrumentError, match="expected one of E36312A"):
        p.idn()
    with expected_protocol(DAQ970A, [("*IDN?", "garbage")], retries=0) as m, pytest.raises(InstrumentError, match="unexpected"):
        m.idn()


def test_reset_and_error_queue_drained():
    script = [("*RST", None), ("*CLS", None), ("SYST:ERR?", '-113,"Undefined header"'),
              ("SYST:ERR?", '-222,"Data out of range"'), NO_ERR]
    with expected_protocol(ScpiInstrument, script, label="inst") as inst:
        inst.reset()
        assert inst.errors() == [(-113, "Undefined header"), (-222, "Data out of range")]


def test_check_errors_raises_listing_every_error():
    script = [("SYST:ERR?", '-113,"Undefined header"'), NO_ERR]
    with expected_protocol(ScpiInstrument, script, label="meter") as inst:
        with pytest.raises(InstrumentError, match=r'meter: configuring left errors in the queue: -113,"Undefined header"'):
            inst.check_errors("configuring")


def test_error_queue_garbage_and_endless_queue():
    with expected_protocol(ScpiInstrument, [("SYST:ERR?", "what?")], retries=0) as inst, \
            pytest.raises(InstrumentError, match="unexpected"):
        inst.errors()
    script = [("SYST:ERR?", '-100,"Command error"')] * ScpiInstrument.max_errors
    with expected_protocol(ScpiInstrument, script) as inst, pytest.raises(InstrumentError, match="did not empty"):
        inst.errors()


def test_timeout_becomes_a_clear_instrument_error_and_a_device_clear():
    with expected_protocol(ScpiInstrument, [("*IDN?", None)], label="meter (DAQ970A)", retries=0) as inst:
        with pytest.raises(InstrumentError, match=r"meter \(DAQ970A\): '\*IDN\?' failed after 1 attempt: meter \(DAQ970A\): "
                                                  r"no reply to '\*IDN\?' within 5 s \(timeout\)"):
            inst.idn()
        assert inst.resource.written == ["*IDN?", "<clear>"]


def test_declared_commands_validate_before_writing():
    class Toy(ScpiInstrument):
        level = Command("LEV {v:.3g},(@{ch})", "Level (V).", v=Range(0, 5), ch=Choice("1", "2"))
        curr = Query("CURR? (@{ch})", float, "Current (A).", ch=Choice("1", "2"))

    with expected_protocol(Toy, [("LEV 1.5,(@2)", None), ("CURR? (@1)", "+1.0E-03"), ("CURR? (@1)", "oops")],
                           retries=0) as t:
        t.level(v=1.5, ch="2")
        assert t.curr(ch="1") == pytest.approx(1e-3)
        with pytest.raises(InstrumentError, match="cannot parse"):
            t.curr(ch="1")
        with pytest.raises(ValueError, match=r"v=7: expected a number within 0..5"):
            t.level(v=7, ch="1")
        with pytest.raises(ValueError, match="expected one of 1, 2"):
            t.level(v=1, ch="3")
        with pytest.raises(TypeError):
            t.level(v=1)
    with pytest.raises(TypeError, match="no validator"):
        Command("X {a}", "")


def test_channel_list_formatting():
    assert channel_list(["105", "101", "102", "103", "110"]) == "(@101:103,105,110)"
    assert channel_list(["101"]) == "(@101)"


# ---------------------------------------------------------------------- DAQ970A
CHANS = ["101", "102", "103", "104", "105", "106", "107", "108", "109", "110"]
LST = "(@101:110)"
KNOWN = ("*RST;*CLS;:TRIG:SOUR IMM;:TRIG:COUN 1", None)  # the meter's known state (test_scpi_manual.py)
CONFIG = [DAQ_IDN, KNOWN, (f"CONF:VOLT:DC 10,{LST}", None), (f"VOLT:DC:NPLC 1,{LST}", None),
          (f"ZERO:AUTO ONCE,{LST}", None), (f"ROUT:CHAN:DEL 0,{LST}", None), (f"ROUT:SCAN {LST}", None), NO_ERR]


def readings(vals) -> str:
    return ",".join(f"{v:+.8E}" for v in vals)


READ = "READ?;:SYST:ERR?"


def scan(vals) -> str:
    """A READ?;:SYST:ERR? reply: the readings, then a clean error queue."""
    return readings(vals) + ';+0,"No error"'


def test_daq_configures_once_and_reads_one_scan_per_state():
    vals = np.linspace(0, 0.9, 10)
    with expected_protocol(DAQ970A, [*CONFIG, (READ, scan(vals)), (READ, scan(vals[::-1]))]) as m:
        m.configure(CHANS)
        assert np.allclose(m.read(), vals)
        assert np.allclose(m.read(), vals[::-1])
        assert m.scan_time_s() == pytest.approx(10 / 60)


def test_daq_returns_readings_in_configure_order():
    script = [DAQ_IDN, KNOWN, ("CONF:VOLT:DC 10,(@101,103,105)", None), ("VOLT:DC:NPLC 10,(@101,103,105)", None),
              ("ZERO:AUTO ONCE,(@101,103,105)", None), ("ROUT:CHAN:DEL 0,(@101,103,105)", None),
              ("ROUT:SCAN (@101,103,105)", None), NO_ERR, (READ, '+1.0E+00,+3.0E+00,+5.0E+00;+0,"No error"')]
    with expected_protocol(DAQ970A, script, nplc=10) as m:
        m.configure(["105", "101", "103"])  # the instrument scans 101, 103, 105
        assert m.read().tolist() == [5.0, 1.0, 3.0]


def test_daq_configuration_errors_are_raised():
    script = CONFIG[:-1] + [("SYST:ERR?", '-222,"Data out of range"'), NO_ERR]
    with expected_protocol(DAQ970A, script, retries=0) as m, pytest.raises(InstrumentError, match="-222"):
        m.configure(CHANS)


@pytest.mark.parametrize("chans,match", [(["101", "101"], "repeated"), (["121"], "channel 01-20"), (["1a1"], "slot"),
                                         ([], "empty")])
def test_daq_bad_channels_send_nothing(chans, match):
    with expected_protocol(DAQ970A, []) as m, pytest.raises(ValueError, match=match):
        m.configure(chans)


def test_daq_bad_settings_refused_at_construction():
    with pytest.raises(ValueError, match="nplc"):
        DAQ970A(ScriptedResource([]), nplc=3)
    with pytest.raises(ValueError, match="range_v"):
        DAQ970A(ScriptedResource([]), range_v=5)


def test_daq_read_errors():
    with expected_protocol(DAQ970A, []) as m, pytest.raises(InstrumentError, match="before configure"):
        m.read()
    bad = [*CONFIG, (READ, scan(range(9))), (READ, '+1.0E+00,garbage;+0,"No error"'), (READ, scan([9.9e37] + [0] * 9)),
           (READ, None)]
    with expected_protocol(DAQ970A, bad, retries=0) as m:
        m.configure(CHANS)
        with pytest.raises(InstrumentError, match="9 readings for 10 channels"):
            m.read()
        with pytest.raises(InstrumentError, match="cannot parse"):
            m.read()
        with pytest.raises(InstrumentError, match="overload on channel"):
            m.read()
        with pytest.raises(InstrumentError, match="timeout"):
            m.read()


def test_34970a_accepts_its_own_idn_only():
    script = [("*IDN?", "HEWLETT-PACKARD,34970A,0,13-2-2"), *CONFIG[1:]]
    with expected_protocol(Keysight34970A, script) as m:
        m.configure(CHANS)


# ---------------------------------------------------------------------- E36312A
PSU_SETUP = [PSU_IDN, ("*RST;*CLS", None), ("CURR 0.01,(@1:3)", None), ("OUTP OFF,(@1:3);:VOLT 0,(@1:3)", None), NO_ERR]


def test_e36312a_setup_apply_only_changes_and_safe_state():
    script = [*PSU_SETUP,
              ("VOLT 1,(@1);:OUTP ON,(@1);:VOLT 0.3,(@2);:OUTP ON,(@2);:SYST:ERR?", OK),
              ("VOLT 0.42,(@3);:OUTP ON,(@3);:SYST:ERR?", OK),
              ("OUTP OFF,(@3);:SYST:ERR?", OK),
              ("OUTP OFF,(@1:3);:VOLT 0,(@1:3);:SYST:ERR?", OK)]
    with expected_protocol(E36312A, script, max_v={"1": 1.0, "2": 1.0, "3": 1.0}, label="psu1") as p:
        p.setup()
        p.apply({"1": 1.0, "2": 0.3})
        p.apply({"1": 1.0, "2": 0.3, "3": 0.42})
        p.apply({"1": 1.0, "2": 0.3})
        p.apply({"1": 1.0, "2": 0.3})  # nothing changes: nothing sent
        p.safe_state()


@pytest.mark.parametrize("pattern,match", [({"1": 1.5}, "exceeds its 1 V limit"), ({"2": -0.1}, "negative"),
                                           ({"4": 0.1}, "no channel"), ({"1": float("nan")}, "limit")])
def test_e36312a_limits_enforced_before_sending(pattern, match):
    with expected_protocol(E36312A, [], max_v={"1": 1.0}, label="psu1") as p, pytest.raises(LimitError, match=match):
        p.apply(pattern)


def test_e36312a_instrument_maximum_is_the_ceiling():
    with expected_protocol(E36312A, []) as p:
        assert p.max_v == {"1": 6.0, "2": 25.0, "3": 25.0}
        with pytest.raises(LimitError):
            p.apply({"1": 6.5})
    with pytest.raises(ValueError, match="no channel"):
        E36312A(ScriptedResource([]), max_v={"9": 1.0})
    with pytest.raises(ValueError, match="current_limit_a"):
        E36312A(ScriptedResource([]), current_limit_a=2.0)


def test_e36312a_read_currents_asks_only_for_outputs_that_are_on():
    script = [("VOLT 1,(@1);:OUTP ON,(@1);:VOLT 0.5,(@3);:OUTP ON,(@3);:SYST:ERR?", OK),
              ("MEAS:CURR? (@1,3)", "+1.5E-04,-2.0E-05"),
              ("MEAS:CURR? (@1)", "+1.0E-04,+2.0E-04")]
    with expected_protocol(E36312A, script) as p:
        assert p.read_currents(["2"]).tolist() == [0.0]
        p.apply({"1": 1.0, "3": 0.5})
        assert p.read_currents(["1", "2", "3"]).tolist() == [1.5e-4, 0.0, -2e-5]
        with pytest.raises(InstrumentError, match="2 values for 1 channels"):
            p.read_currents(["1"])


# ---------------------------------------------------------------------- Keithley 2450
SMU_SETUP = [SMU_IDN, ("*LANG?", "SCPI"), ("*RST;*CLS", None), (":SOUR:FUNC VOLT", None), (":SOUR:VOLT:RANG 2", None),
             (":SOUR:VOLT:ILIM 0.001", None),
             (':SENS:FUNC "CURR"', None), (":SENS:CURR:RANG:AUTO ON", None), (":OUTP:SMOD HIMP", None),
             (":OUTP OFF;:SOUR:VOLT 0", None), NO_ERR]


def test_keithley2450_setup_apply_measure_and_safe_state():
    script = [*SMU_SETUP, (":SOUR:VOLT 0.25;:OUTP ON;:SYST:ERR?", OK), (":MEAS:CURR?", "+2.5E-05"),
              (":SOUR:VOLT 0.3;:SYST:ERR?", OK), (":OUTP OFF;:SYST:ERR?", OK), (":OUTP OFF;:SOUR:VOLT 0;:SYST:ERR?", OK)]
    with expected_protocol(Keithley2450, script, max_v={"1": 1.0}, current_limit_a=1e-3, label="smu") as s:
        s.setup()
        s.apply({"1": 0.25})
        assert s.read_currents(["1"]).tolist() == [2.5e-5]
        s.apply({"1": 0.3})
        s.apply({})
        assert s.read_currents(["1"]).tolist() == [0.0]
        s.safe_state()


def test_keithley2450_limit_and_unknown_channel():
    with expected_protocol(Keithley2450, [], max_v={"1": 1.0}, label="smu") as s:
        with pytest.raises(LimitError, match="exceeds its 1 V limit"):
            s.apply({"1": -1.2})
        with pytest.raises(LimitError, match="no channel"):
            s.read_currents(["2"])


# ---------------------------------------------------------------------- routing
def routed(scripts: dict[str, list]) -> tuple[RoutedSources, dict[str, ScriptedResource]]:
    res = {k: ScriptedResource(v) for k, v in scripts.items()}
    insts = {"psu1": E36312A(res["psu1"], max_v={"1": 1.0, "2": 1.0, "3": 1.0}, label="psu1"),
             "smu": Keithley2450(res["smu"], max_v={"1": 1.0}, current_limit_a=1e-3, label="smu")}
    return RoutedSources(insts), res


def test_routed_sources_route_names_and_turn_others_off():
    src, res = routed({"psu1": [("VOLT 1,(@1);:OUTP ON,(@1);:SYST:ERR?", OK), ("OUTP OFF,(@1);:SYST:ERR?", OK),
                                ("MEAS:CURR? (@2)", "+1.0E-04")],
                       "smu": [(":SOUR:VOLT 0.2;:OUTP ON;:SYST:ERR?", OK), (":MEAS:CURR?", "-3.0E-05")]})
    assert src.channels == ("psu1.1", "psu1.2", "psu1.3", "smu.1")
    src.apply({"psu1.1": 1.0})
    src.apply({"smu.1": 0.2})
    src.instruments["psu1"].outputs["2"] = (0.5, True)
    assert src.read_currents(["smu.1", "psu1.2", "psu1.3"]).tolist() == [-3e-5, 1e-4, 0.0]
    for r in res.values():
        r.assert_done()


def test_routed_sources_check_every_instrument_before_sending_to_any():
    src, res = routed({"psu1": [], "smu": []})
    with pytest.raises(LimitError, match="smu"):
        src.apply({"psu1.1": 0.5, "smu.1": 5.0})
    with pytest.raises(LimitError, match="expected <instrument>.<channel>"):
        src.apply({"psu9.1": 0.5})
    assert res["psu1"].written == [] and res["smu"].written == []


def test_routed_safe_state_reaches_every_instrument_even_if_one_fails():
    src, res = routed({"psu1": [], "smu": [(":OUTP OFF;:SOUR:VOLT 0;:SYST:ERR?", OK)]})
    with pytest.raises(InstrumentError, match="psu1"):
        src.safe_state()  # psu1's script has no such message: it "fails"
    res["smu"].assert_done()
    assert src.identity().keys() == {"psu1", "smu"}
    src.close()
    assert res["psu1"].closed and res["smu"].closed


# ---------------------------------------------------------------------- every declared command
DECLARED = [
    (DAQ970A, "conf_volt_dc", {"range_v": "1", "chanlist": "(@101,103)"}, "CONF:VOLT:DC 1,(@101,103)", None, None),
    (DAQ970A, "set_nplc", {"nplc": "0.2", "chanlist": "(@101)"}, "VOLT:DC:NPLC 0.2,(@101)", None, None),
    (DAQ970A, "set_autozero", {"mode": "OFF", "chanlist": "(@101)"}, "ZERO:AUTO OFF,(@101)", None, None),
    (DAQ970A, "set_channel_delay", {"delay_s": 0.002, "chanlist": "(@101)"}, "ROUT:CHAN:DEL 0.002,(@101)", None, None),
    (DAQ970A, "set_scan", {"chanlist": "(@101:104)"}, "ROUT:SCAN (@101:104)", None, None),
    (DAQ970A, "read_scan", {}, "READ?", "+1.0E+00,-2.0E-01", [1.0, -0.2]),
    (E36312A, "set_voltage", {"voltage_v": 1.25, "channel": "2"}, "VOLT 1.25,(@2)", None, None),
    (E36312A, "set_current", {"current_a": 0.05, "channel": "3"}, "CURR 0.05,(@3)", None, None),
    (E36312A, "output", {"state": "ON", "channel": "1"}, "OUTP ON,(@1)", None, None),
    (E36312A, "measure_current", {"channels": "1,2"}, "MEAS:CURR? (@1,2)", "+1.0E-03,+2.0E-03", [1e-3, 2e-3]),
    (Keithley2450, "set_voltage", {"voltage_v": -0.5}, ":SOUR:VOLT -0.5", None, None),
    (Keithley2450, "set_ilimit", {"limit_a": 1e-4}, ":SOUR:VOLT:ILIM 0.0001", None, None),
    (Keithley2450, "output", {"state": "OFF"}, ":OUTP OFF", None, None),
    (Keithley2450, "measure_current", {}, ":MEAS:CURR?", "-1.5E-06", -1.5e-6),
]


@pytest.mark.parametrize("cls,name,kw,message,reply,parsed", DECLARED, ids=[f"{c.__name__}.{n}" for c, n, *_ in DECLARED])
def test_every_declared_command_writes_its_message(cls, name, kw, message, reply, parsed):
    with expected_protocol(cls, [(message, reply)]) as inst:
        got = getattr(inst, name)(**kw)
    assert got == (pytest.approx(parsed) if parsed is not None else None)


@pytest.mark.parametrize("cls,name,kw", [(DAQ970A, "set_nplc", {"nplc": "3", "chanlist": "(@101)"}),
                                         (DAQ970A, "set_scan", {"chanlist": "101"}),
                                         (E36312A, "output", {"state": "MAYBE", "channel": "1"}),
                                         (Keithley2450, "set_ilimit", {"limit_a": 2.0})])
def test_declared_commands_refuse_bad_values_without_writing(cls, name, kw):
    with expected_protocol(cls, []) as inst, pytest.raises(ValueError):
        getattr(inst, name)(**kw)


# ---------------------------------------------------------------------- retries (issue 6)
class Recorder:
    """``sleep`` and ``on_event`` of a driver under test: what it waited and reported."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.events: list[dict] = []

    def kw(self, retries: int = 3) -> dict:
        return {"retries": retries, "sleep": self.sleeps.append, "on_event": self.events.append}

    @property
    def kinds(self) -> list[str]:
        return [e["event"] for e in self.events]


V1 = np.linspace(0, 0.9, 10)
V2 = np.linspace(0.1, 1.0, 10)


def test_read_timeout_clears_resyncs_and_reads_again_so_a_late_reply_is_not_taken():
    rec = Recorder()
    script = [*CONFIG, (READ, Late(scan(V2))), ("SYST:ERR?", '-420,"Query UNTERMINATED"'), NO_ERR, (READ, scan(V1))]
    with expected_protocol(DAQ970A, script, **rec.kw()) as m:
        m.configure(CHANS)
        assert np.allclose(m.read(), V1)  # not the late V2
        assert m.resource.written[-5:] == [READ, "<clear>", "SYST:ERR?", "SYST:ERR?", READ]
    assert rec.sleeps == [0.05]
    assert rec.kinds == ["retry", "resync", "recovered"]
    assert rec.events[0]["instrument"] == "meter" and "timeout" in rec.events[0]["reason"]
    assert rec.events[1]["cleared_errors"] == ['-420,"Query UNTERMINATED"']
    assert m.stats["retries"] == 1 and m.stats["recoveries"] == 1


@pytest.mark.parametrize("garbled", ['+1.0E+00,+2.#0E-01;+0,"No error"', scan(range(9)), readings(V2)],
                         ids=["bad-number", "short", "no-error-field"])
def test_read_garbled_reply_is_taken_again_after_a_resync(garbled):
    rec = Recorder()
    script = [*CONFIG, (READ, garbled), NO_ERR, (READ, scan(V1))]
    with expected_protocol(DAQ970A, script, **rec.kw()) as m:
        m.configure(CHANS)
        assert np.allclose(m.read(), V1)
        assert m.resource.written[-4:] == [READ, "<clear>", "SYST:ERR?", READ]
    assert rec.kinds == ["retry", "resync", "recovered"]


def test_read_with_an_error_in_the_queue_drains_it_and_reads_again_without_a_clear():
    rec = Recorder()
    script = [*CONFIG, (READ, readings(V2) + ';-222,"Data out of range"'), ("SYST:ERR?", '-221,"Settings conflict"'),
              NO_ERR, (READ, scan(V1))]
    with expected_protocol(DAQ970A, script, **rec.kw()) as m:
        m.configure(CHANS)
        assert np.allclose(m.read(), V1)
        assert "<clear>" not in m.resource.written
    assert rec.kinds == ["queue_errors", "retry", "recovered"]
    assert rec.events[0]["errors"] == '-222,"Data out of range"; -221,"Settings conflict"'
    assert m.stats["queue_errors"] == 2


def test_a_failed_resync_counts_as_an_attempt_and_the_next_one_resyncs_again():
    rec = Recorder()
    script = [*CONFIG, (READ, None), ("SYST:ERR?", None), ("SYST:ERR?", '-420,"Query UNTERMINATED"'), NO_ERR,
              (READ, scan(V1))]
    with expected_protocol(DAQ970A, script, **rec.kw()) as m:
        m.configure(CHANS)
        assert np.allclose(m.read(), V1)
        assert m.resource.written[-7:] == [READ, "<clear>", "SYST:ERR?", "<clear>", "SYST:ERR?", "SYST:ERR?", READ]
    assert rec.sleeps == [0.05, 0.1]
    assert rec.kinds == ["retry", "retry", "resync", "recovered"]


def test_read_retries_exhausted_raise_instrument_error_after_backoff_and_leave_the_stream_clear():
    rec = Recorder()
    script = [*CONFIG, (READ, None), NO_ERR, (READ, None), NO_ERR, (READ, None)]
    with expected_protocol(DAQ970A, script, label="meter (DAQ970A)", **rec.kw(retries=2)) as m:
        m.configure(CHANS)
        with pytest.raises(InstrumentError, match=r"meter \(DAQ970A\): 'READ\?' failed after 3 attempts: .*"
                                                  r"no reply to 'READ\?;:SYST:ERR\?' within .* \(timeout\)"):
            m.read()
        assert m.resource.written[-8:] == [READ, "<clear>", "SYST:ERR?", READ, "<clear>", "SYST:ERR?", READ, "<clear>"]
    assert rec.sleeps == [0.05, 0.1]
    assert rec.kinds == ["retry", "resync", "retry", "resync", "gave_up"]
    assert rec.events[-1]["attempts"] == 3


def test_overload_is_not_retried():
    rec = Recorder()
    with expected_protocol(DAQ970A, [*CONFIG, (READ, scan([9.9e37] + [0] * 9))], **rec.kw()) as m:
        m.configure(CHANS)
        with pytest.raises(InstrumentError, match="overload"):
            m.read()
    assert rec.events == []


def test_garbled_idn_is_asked_again_but_a_wrong_model_is_not():
    rec = Recorder()
    with expected_protocol(DAQ970A, [("*IDN?", "Keysight Tech"), NO_ERR, DAQ_IDN], **rec.kw()) as m:
        assert m.idn()["model"] == "DAQ970A"
        assert m.resource.written == ["*IDN?", "<clear>", "SYST:ERR?", "*IDN?"]
    assert rec.kinds == ["retry", "resync", "recovered"]
    with expected_protocol(E36312A, [DAQ_IDN], label="psu1", **rec.kw()) as p, pytest.raises(InstrumentError, match="expected"):
        p.idn()


def test_declared_query_is_retried_after_a_timeout():
    rec = Recorder()
    script = [("MEAS:CURR? (@1)", None), NO_ERR, ("MEAS:CURR? (@1)", "+1.0E-03")]
    with expected_protocol(E36312A, script, **rec.kw()) as p:
        assert p.measure_current(channels="1") == [1e-3]


def test_configuration_left_errors_is_sent_again_whole_until_the_queue_is_clean():
    rec = Recorder()
    script = CONFIG[:-1] + [("SYST:ERR?", '-222,"Data out of range"'), NO_ERR] + CONFIG[1:]
    with expected_protocol(DAQ970A, script, **rec.kw()) as m:
        m.configure(CHANS)
    assert rec.kinds == ["queue_errors", "retry", "recovered"]
    assert rec.events[1]["command"] == "configuring the scan"


def test_configuration_errors_every_time_stop_with_the_errors_named():
    rec = Recorder()
    bad = [("SYST:ERR?", '-222,"Data out of range"'), NO_ERR]
    script = CONFIG[:-1] + bad + CONFIG[1:-1] + bad
    with expected_protocol(DAQ970A, script, **rec.kw(retries=1)) as m, \
            pytest.raises(InstrumentError, match=r"'configuring the scan' failed after 2 attempts: .*-222"):
        m.configure(CHANS)
    assert rec.kinds[-1] == "gave_up"


def test_error_queue_drain_survives_a_timeout_and_keeps_what_it_read():
    rec = Recorder()
    script = [("SYST:ERR?", '-113,"Undefined header"'), ("SYST:ERR?", None), ("SYST:ERR?", '-222,"Data out of range"'),
              NO_ERR]
    with expected_protocol(ScpiInstrument, script, **rec.kw()) as inst:
        assert inst.errors() == [(-113, "Undefined header"), (-222, "Data out of range")]
        assert inst.resource.written == ["SYST:ERR?", "SYST:ERR?", "<clear>", "SYST:ERR?", "SYST:ERR?"]
    assert rec.kinds == ["retry", "resync", "recovered"]


SET1 = "VOLT 1,(@1);:OUTP ON,(@1);:SYST:ERR?"


def test_setpoint_with_an_error_in_the_queue_is_sent_again_and_verified():
    rec = Recorder()
    script = [(SET1, '-222,"Data out of range"'), NO_ERR, (SET1, OK)]
    with expected_protocol(E36312A, script, max_v={"1": 1.0}, label="psu1", **rec.kw()) as p:
        p.apply({"1": 1.0})
        assert "<clear>" not in p.resource.written
        assert p.outputs["1"] == (1.0, True) and not p.unknown
    assert rec.sleeps == [0.05]
    assert rec.kinds == ["queue_errors", "retry", "recovered"]
    assert rec.events[0] == {"instrument": "psu1", "event": "queue_errors", "command": SET1[:-len(";:SYST:ERR?")],
                             "errors": '-222,"Data out of range"'}


def test_setpoint_whose_verification_times_out_is_resynced_and_sent_again():
    rec = Recorder()
    script = [(":SOUR:VOLT 0.25;:OUTP ON;:SYST:ERR?", None), ("SYST:ERR?", '-420,"Query UNTERMINATED"'), NO_ERR,
              (":SOUR:VOLT 0.25;:OUTP ON;:SYST:ERR?", OK)]
    with expected_protocol(Keithley2450, script, max_v={"1": 1.0}, label="smu", **rec.kw()) as s:
        s.apply({"1": 0.25})
        assert s.resource.written[1] == "<clear>"
    assert rec.kinds == ["retry", "resync", "recovered"]


def test_setpoint_retries_exhausted_raise_mark_outputs_unknown_and_the_safe_state_still_works():
    """The clean stop: the failed apply raises, the safe state goes out (verified), and the next
    apply re-sends every channel because the host no longer knew the outputs."""
    rec = Recorder()
    err = '-222,"Data out of range"'
    script = [(SET1, err), NO_ERR, (SET1, err), NO_ERR,
              ("OUTP OFF,(@1:3);:VOLT 0,(@1:3);:SYST:ERR?", OK)]
    with expected_protocol(E36312A, script, max_v={"1": 1.0}, label="psu1", **rec.kw(retries=1)) as p:
        with pytest.raises(InstrumentError, match=r"psu1: 'VOLT 1,\(@1\);:OUTP ON,\(@1\)' failed after 2 attempts: "
                                                  r".*left errors in the queue: -222"):
            p.apply({"1": 1.0})
        assert p.unknown
        p.safe_state()
        assert not p.unknown and p.outputs == {ch: (0.0, False) for ch in p.channels}
    assert rec.kinds == ["queue_errors", "retry", "queue_errors", "gave_up"]
    assert rec.sleeps == [0.05]
    with expected_protocol(E36312A, [(SET1, err), NO_ERR, (SET1, err), NO_ERR,
                                     ("VOLT 1,(@1);:OUTP ON,(@1);:OUTP OFF,(@2);:OUTP OFF,(@3);:SYST:ERR?", OK)],
                           max_v={"1": 1.0}, **Recorder().kw(retries=1)) as p:
        with pytest.raises(InstrumentError):
            p.apply({"1": 1.0})
        p.apply({"1": 1.0})  # unknown outputs: every channel is sent
        assert not p.unknown


def test_safe_state_is_verified_and_sent_again_after_a_timeout():
    rec = Recorder()
    safe = ":OUTP OFF;:SOUR:VOLT 0;:SYST:ERR?"
    with expected_protocol(Keithley2450, [(safe, None), NO_ERR, (safe, OK)], **rec.kw()) as s:
        s.safe_state()
    assert rec.kinds == ["retry", "resync", "recovered"]


def test_source_setup_left_errors_is_sent_again_whole():
    rec = Recorder()
    script = PSU_SETUP[:-1] + [("SYST:ERR?", '-222,"Data out of range"'), NO_ERR] + PSU_SETUP[1:]
    with expected_protocol(E36312A, script, **rec.kw()) as p:
        p.setup()
    assert rec.kinds == ["queue_errors", "retry", "recovered"]


def test_an_io_error_that_is_not_a_timeout_is_not_retried():
    from pyvisa import constants
    from pyvisa.errors import VisaIOError

    class Lost(ScriptedResource):
        def query(self, message: str) -> str:
            self.written.append(message)
            raise VisaIOError(constants.VI_ERROR_CONN_LOST)

    rec = Recorder()
    m = DAQ970A(Lost([]), **rec.kw())
    with pytest.raises(InstrumentError, match="failed") as info:
        m.idn()
    assert "after" not in str(info.value) and m.resource.written == ["*IDN?"] and rec.events == [] and rec.sleeps == []


def test_a_driver_built_by_hand_tries_once_unless_told_otherwise():
    rec = Recorder()
    with expected_protocol(DAQ970A, [("*IDN?", None)], sleep=rec.sleeps.append, on_event=rec.events.append) as m:
        with pytest.raises(InstrumentError, match="failed after 1 attempt: .*timeout"):
            m.idn()
        assert m.resource.written == ["*IDN?", "<clear>"]
    assert rec.kinds == ["gave_up"] and rec.sleeps == []


def test_retry_settings_are_validated():
    with pytest.raises(ValueError, match="retries"):
        ScpiInstrument(ScriptedResource([]), retries=-1)
    with pytest.raises(ValueError, match="backoff_s"):
        ScpiInstrument(ScriptedResource([]), backoff_s=-0.1)


def test_events_are_logged_tagged_with_their_kind(caplog):
    caplog.set_level("WARNING", logger="drivers.scpi")
    with expected_protocol(DAQ970A, [("*IDN?", None), NO_ERR, DAQ_IDN], retries=1, sleep=lambda s: None) as m:
        m.idn()
    recs = [r for r in caplog.records if r.name == "drivers.scpi"]
    assert [r.event for r in recs] == ["retry", "resync", "recovered"]
    assert all(r.fields["instrument"] == "meter" and r.delivered is False for r in recs)


def test_error_text_with_a_semicolon_and_a_read_that_left_only_its_error():
    """READ? failed (no readings, only the error entry, whose text holds a ';'): drained, read again."""
    rec = Recorder()
    script = [*CONFIG, (READ, '-221,"Settings conflict; trigger lost"'), NO_ERR, (READ, scan(V1))]
    with expected_protocol(DAQ970A, script, **rec.kw()) as m:
        m.configure(CHANS)
        assert np.allclose(m.read(), V1)
    assert rec.events[0]["errors"] == '-221,"Settings conflict; trigger lost"'
    assert rec.kinds == ["queue_errors", "retry", "recovered"]


def test_verified_write_answered_out_of_step_is_resynced_and_sent_again():
    rec = Recorder()
    script = [(SET1, '+1.0E-03;+0,"No error"'), NO_ERR, (SET1, OK)]
    with expected_protocol(E36312A, script, max_v={"1": 1.0}, **rec.kw()) as p:
        p.apply({"1": 1.0})
        assert p.resource.written == [SET1, "<clear>", "SYST:ERR?", SET1]
    assert rec.kinds == ["retry", "resync", "recovered"]


def test_split_reply_keeps_quoted_semicolons():
    assert split_reply('1,2;-221,"a; b"') == ["1,2", '-221,"a; b"']
    assert split_reply('+0,"No error"') == ['+0,"No error"']
