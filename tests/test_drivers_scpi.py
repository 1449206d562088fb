"""Message-level tests of the SCPI drivers: exact messages, parsed replies, error queues,
timeouts and garbage (PyMeasure expected_protocol style)."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.daq970a import DAQ970A, Keysight34970A
from drivers.scpi import Choice, Command, Query, Range, ScpiInstrument, channel_list
from drivers.sources import E36312A, Keithley2450, RoutedSources
from drivers.testing import ScriptedResource, expected_protocol
from labnet.errors import InstrumentError, LimitError

DAQ_IDN = ("*IDN?", "Keysight Technologies,DAQ970A,MY58001234,A.02.02-01.00-02.01-00.02-03-02")
NO_ERR = ("SYST:ERR?", '+0,"No error"')
PSU_IDN = ("*IDN?", "Keysight Technologies,E36312A,MY59001234,2.1.0-1.0.4-1.12")
SMU_IDN = ("*IDN?", "KEITHLEY INSTRUMENTS,MODEL 2450,04321234,1.7.3b")


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
    with expected_protocol(DAQ970A, [("*IDN?", "garbage")]) as m, pytest.raises(InstrumentError, match="unexpected"):
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
    with expected_protocol(ScpiInstrument, [("SYST:ERR?", "what?")]) as inst, pytest.raises(InstrumentError, match="unexpected"):
        inst.errors()
    script = [("SYST:ERR?", '-100,"Command error"')] * ScpiInstrument.max_errors
    with expected_protocol(ScpiInstrument, script) as inst, pytest.raises(InstrumentError, match="did not empty"):
        inst.errors()


def test_timeout_becomes_a_clear_instrument_error_and_a_device_clear():
    with expected_protocol(ScpiInstrument, [("*IDN?", None)], label="meter (DAQ970A)") as inst:
        with pytest.raises(InstrumentError, match=r"meter \(DAQ970A\): no reply to '\*IDN\?' within 5 s \(timeout\)"):
            inst.idn()
        assert inst.resource.written == ["*IDN?", "<clear>"]


def test_declared_commands_validate_before_writing():
    class Toy(ScpiInstrument):
        level = Command("LEV {v:.3g},(@{ch})", "Level (V).", v=Range(0, 5), ch=Choice("1", "2"))
        curr = Query("CURR? (@{ch})", float, "Current (A).", ch=Choice("1", "2"))

    with expected_protocol(Toy, [("LEV 1.5,(@2)", None), ("CURR? (@1)", "+1.0E-03"), ("CURR? (@1)", "oops")]) as t:
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
CONFIG = [DAQ_IDN, ("*CLS", None), (f"CONF:VOLT:DC 10,{LST}", None), (f"VOLT:DC:NPLC 1,{LST}", None),
          (f"ZERO:AUTO ONCE,{LST}", None), (f"ROUT:CHAN:DEL 0,{LST}", None), (f"ROUT:SCAN {LST}", None), NO_ERR]


def readings(vals) -> str:
    return ",".join(f"{v:+.8E}" for v in vals)


def test_daq_configures_once_and_reads_one_scan_per_state():
    vals = np.linspace(0, 0.9, 10)
    with expected_protocol(DAQ970A, [*CONFIG, ("READ?", readings(vals)), ("READ?", readings(vals[::-1]))]) as m:
        m.configure(CHANS)
        assert np.allclose(m.read(), vals)
        assert np.allclose(m.read(), vals[::-1])
        assert m.scan_time_s() == pytest.approx(10 / 60)


def test_daq_returns_readings_in_configure_order():
    script = [DAQ_IDN, ("*CLS", None), ("CONF:VOLT:DC 10,(@101,103,105)", None), ("VOLT:DC:NPLC 10,(@101,103,105)", None),
              ("ZERO:AUTO ONCE,(@101,103,105)", None), ("ROUT:CHAN:DEL 0,(@101,103,105)", None),
              ("ROUT:SCAN (@101,103,105)", None), NO_ERR, ("READ?", "+1.0E+00,+3.0E+00,+5.0E+00")]
    with expected_protocol(DAQ970A, script, nplc=10) as m:
        m.configure(["105", "101", "103"])  # the instrument scans 101, 103, 105
        assert m.read().tolist() == [5.0, 1.0, 3.0]


def test_daq_configuration_errors_are_raised():
    script = CONFIG[:-1] + [("SYST:ERR?", '-222,"Data out of range"'), NO_ERR]
    with expected_protocol(DAQ970A, script) as m, pytest.raises(InstrumentError, match="-222"):
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
    bad = [*CONFIG, ("READ?", readings(range(9))), ("READ?", "+1.0E+00,garbage"), ("READ?", readings([9.9e37] + [0] * 9)),
           ("READ?", None)]
    with expected_protocol(DAQ970A, bad) as m:
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
PSU_SETUP = [PSU_IDN, ("*CLS", None), ("CURR 0.01,(@1:3)", None), ("OUTP OFF,(@1:3);:VOLT 0,(@1:3)", None), NO_ERR]


def test_e36312a_setup_apply_only_changes_and_safe_state():
    script = [*PSU_SETUP,
              ("VOLT 1,(@1);:OUTP ON,(@1);:VOLT 0.3,(@2);:OUTP ON,(@2)", None),
              ("VOLT 0.42,(@3);:OUTP ON,(@3)", None),
              ("OUTP OFF,(@3)", None),
              ("OUTP OFF,(@1:3);:VOLT 0,(@1:3)", None)]
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
    script = [("VOLT 1,(@1);:OUTP ON,(@1);:VOLT 0.5,(@3);:OUTP ON,(@3)", None), ("MEAS:CURR? (@1,3)", "+1.5E-04,-2.0E-05"),
              ("MEAS:CURR? (@1)", "+1.0E-04,+2.0E-04")]
    with expected_protocol(E36312A, script) as p:
        assert p.read_currents(["2"]).tolist() == [0.0]
        p.apply({"1": 1.0, "3": 0.5})
        assert p.read_currents(["1", "2", "3"]).tolist() == [1.5e-4, 0.0, -2e-5]
        with pytest.raises(InstrumentError, match="2 values for 1 channels"):
            p.read_currents(["1"])


# ---------------------------------------------------------------------- Keithley 2450
SMU_SETUP = [SMU_IDN, ("*CLS", None), (":SOUR:FUNC VOLT", None), (":SOUR:VOLT:RANG 2", None), (":SOUR:VOLT:ILIM 0.001", None),
             (':SENS:FUNC "CURR"', None), (":SENS:CURR:RANG:AUTO ON", None), (":OUTP:SMOD HIMP", None),
             (":OUTP OFF;:SOUR:VOLT 0", None), NO_ERR]


def test_keithley2450_setup_apply_measure_and_safe_state():
    script = [*SMU_SETUP, (":SOUR:VOLT 0.25;:OUTP ON", None), (":MEAS:CURR?", "+2.5E-05"), (":SOUR:VOLT 0.3", None),
              (":OUTP OFF", None), (":OUTP OFF;:SOUR:VOLT 0", None)]
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
    src, res = routed({"psu1": [("VOLT 1,(@1);:OUTP ON,(@1)", None), ("OUTP OFF,(@1)", None),
                                ("MEAS:CURR? (@2)", "+1.0E-04")],
                       "smu": [(":SOUR:VOLT 0.2;:OUTP ON", None), (":MEAS:CURR?", "-3.0E-05")]})
    assert src.channels == ("psu1.1", "psu1.2", "psu1.3", "smu.1")
    src.apply({"psu1.1": 1.0})
    src.apply({"smu.1": 0.2})
    src.instruments["psu1"].state["2"] = (0.5, True)
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
    src, res = routed({"psu1": [], "smu": [(":OUTP OFF;:SOUR:VOLT 0", None)]})
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
