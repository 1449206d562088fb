"""Every SCPI message the drivers send, held to the manual section it follows.

Message-level (PyMeasure ``expected_protocol`` style: the exact bytes written, the replies fed
back and parsed) — one case per message of the table in ``drivers/SCPI.md``, each citing the
instrument, guide and section, with what the manual says. The table cannot drift: the drivers
are run through every path on the emulators and every message unit they send, and every
declared ``Command``/``Query``, must have a row (and every row a case here).

Guides (read in stored public copies with the ``search`` tool):
DAQ = Keysight DAQ970A/DAQ973A Programming Guide (34970A User's Guide ch. 5 for the 34970A);
E363 = Keysight E36300 Series Programming Guide (E36311-90008);
2450 = Keithley Model 2450 Reference Manual (2450-901-01 Rev. B).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from drivers.current_source import Keithley2450Current
from drivers.daq970a import DAQ970A, Keysight34970A
from drivers.scpi_params import Command
from drivers.sources import E36312A, Keithley2450
from drivers.testing import expected_protocol
from labnet.config.rigfile import load_rig
from labnet.core.errors import InstrumentError
from simulator.bench import SimBench, register, unregister
from simulator.breadboard import Breadboard, SimSettings
from simulator.visa import open_resource_manager

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "drivers" / "SCPI.md"
OK = '+0,"No error"'
NO_ERR = ("SYST:ERR?", OK)
DAQ_IDN = ("*IDN?", "Keysight Technologies,DAQ970A,MY58001234,A.02.04-00.16-11.29-00.02-02-01")
PSU_IDN = ("*IDN?", "Keysight Technologies,E36312A,MY59001234,2.1.0-1.0.4-1.12")
SMU_IDN = ("*IDN?", "KEITHLEY INSTRUMENTS INC.,MODEL 2450,01234567,1.0.0i")
LST = "(@101:103)"

# ---------------------------------------------------------------------- the three flows
DAQ_SCRIPT = [DAQ_IDN, ("*RST;*CLS;:TRIG:SOUR IMM;:TRIG:COUN 1", None), (f"CONF:VOLT:DC 10,{LST}", None),
              (f"VOLT:DC:NPLC 1,{LST}", None), (f"ZERO:AUTO ONCE,{LST}", None), (f"ROUT:CHAN:DEL 0,{LST}", None),
              (f"ROUT:SCAN {LST}", None), NO_ERR,
              ("READ?;:SYST:ERR?", f'+1.00000000E-01,+2.00000000E-01,+3.00000000E-01;{OK}')]


def daq_flow(m: DAQ970A) -> None:
    m.configure(["101", "102", "103"])
    assert np.allclose(m.read(), [0.1, 0.2, 0.3])


PSU_SCRIPT = [PSU_IDN, ("*RST;*CLS", None), ("CURR 0.01,(@1:3)", None), ("OUTP OFF,(@1:3);:VOLT 0,(@1:3)", None),
              NO_ERR, ("VOLT 0.5,(@2);:OUTP ON,(@2);:SYST:ERR?", OK), ("MEAS:CURR? (@2)", "+1.250000E-04"),
              ("OUTP OFF,(@2);:SYST:ERR?", OK)]


def psu_flow(p: E36312A) -> None:
    p.setup()
    p.apply({"2": 0.5})
    assert p.read_currents(["1", "2"]).tolist() == [0.0, 1.25e-4]
    p.apply({})


SMU_SCRIPT = [SMU_IDN, ("*LANG?", "SCPI"), ("*RST;*CLS", None), (":SOUR:FUNC VOLT", None), (":SOUR:VOLT:RANG 2", None),
              (":SOUR:VOLT:ILIM 0.001", None), (':SENS:FUNC "CURR"', None), (":SENS:CURR:RANG:AUTO ON", None),
              (":OUTP:SMOD HIMP", None), (":OUTP OFF;:SOUR:VOLT 0", None), NO_ERR,
              (":SOUR:VOLT 0.75;:OUTP ON;:SYST:ERR?", OK), (":MEAS:CURR?", "-2.000000E-05"),
              (":OUTP OFF;:SYST:ERR?", OK)]


def smu_flow(s: Keithley2450) -> None:
    s.setup()
    s.apply({"1": 0.75})
    assert s.read_currents(["1"])[0] == pytest.approx(-2e-5)
    s.apply({})


SMU_I_SCRIPT = [SMU_IDN, ("*LANG?", "SCPI"), ("*RST;*CLS", None), (":SOUR:FUNC CURR", None),
                (":SOUR:CURR:RANG 0.001", None), (":SOUR:CURR:VLIM 1", None), (':SENS:FUNC "VOLT"', None),
                (":SENS:VOLT:RANG:AUTO ON", None), (":OUTP:SMOD HIMP", None), (":OUTP OFF;:SOUR:CURR 0", None), NO_ERR,
                (":SOUR:CURR:VLIM 0.5;:SOUR:CURR 0.00015;:OUTP ON;:SYST:ERR?", OK), (":MEAS:VOLT?", "+4.570000E-01"),
                (":SOUR:CURR:VLIM:TRIP?", "0"), (":SOUR:CURR 5e-05;:SYST:ERR?", OK), (":OUTP OFF;:SYST:ERR?", OK)]


def smu_current_flow(s: Keithley2450Current) -> None:
    s.setup()
    s.apply_currents({"1": 1.5e-4}, {"1": 0.5})
    assert s.read_voltages(["1"])[0] == pytest.approx(0.457)
    assert not s.tripped(["1"])[0]
    s.apply_currents({"1": 5e-5}, {"1": 0.5})  # only the level changes: only the level is sent
    s.apply_currents({})


FLOWS: dict[str, tuple[type, dict[str, Any], list[tuple[str, str | None]], Callable[[Any], None]]] = {
    "DAQ970A": (DAQ970A, {}, DAQ_SCRIPT, daq_flow),
    "E36312A": (E36312A, {"max_v": {"1": 1.0, "2": 1.0, "3": 1.0}}, PSU_SCRIPT, psu_flow),
    "Keithley2450": (Keithley2450, {"max_v": {"1": 1.0}, "current_limit_a": 1e-3}, SMU_SCRIPT, smu_flow),
    "Keithley2450-current": (Keithley2450Current, {"max_current_a": 1e-3, "vlim_v": 1.0}, SMU_I_SCRIPT,
                             smu_current_flow),
}


@dataclass(frozen=True)
class Case:
    """One message: instrument, header (as in the table), and what the manual says of it."""

    model: str
    header: str
    manual: str
    flow: str = ""  # the driver flow that sends it (default: the model's)


DAQ = "Keysight DAQ970A/DAQ973A Programming Guide"
E363 = "Keysight E36300 Series Programming Guide"
K2450 = "Keithley Model 2450 Reference Manual"
CASES = [
    Case("DAQ970A", "*IDN?", f"{DAQ}, *IDN?: 'four comma separated fields: Manufacturer name, Model number, Serial "
         "number, Revision code'"),
    Case("DAQ970A", "*RST", f"{DAQ}, *RST and TRIGger:SOURce ('Default: IMMediate'): the factory state; reading memory "
         "is cleared after a Factory Reset (R?)"),
    Case("DAQ970A", "*CLS", f"{DAQ}, *CLS: clears the event registers and the error queue"),
    Case("DAQ970A", "TRIG:SOUR", f"{DAQ}, TRIGger:SOURce: 'The READ? and MEASure commands and queries cannot be used to "
         "take readings when the selected trigger source is BUS. This is called a trigger deadlock condition.'"),
    Case("DAQ970A", "TRIG:COUN", f"{DAQ}, TRIGger:COUNt: the number of sweeps through the scan list per READ?; the "
         "readings returned are sweeps x channels (34980A help, same command family)"),
    Case("DAQ970A", "CONF:VOLT:DC", f"{DAQ}, CONFigure:VOLTage:DC / ROUTe:SCAN: 'The CONFigure and MEASure? commands "
         "overwrite the scan list'; a fixed range turns autorange off"),
    Case("DAQ970A", "VOLT:DC:NPLC", f"{DAQ}, [SENSe:]VOLTage[:DC]:NPLC {{0.02|0.2|1|2|10|20|100|200}}: integration time "
         "in power-line cycles; 'Only the integral number of power line cycles (1, 2, 10, 20, 100, or 200 PLCs) provide "
         "normal mode (line frequency noise) rejection'"),
    Case("DAQ970A", "ZERO:AUTO", f"{DAQ}, [SENSe:]ZERO:AUTO {{OFF|ONCE|ON}}: ONCE takes one zero measurement, then "
         "autozero is off"),
    Case("DAQ970A", "ROUT:CHAN:DEL", f"{DAQ}, ROUTe:CHANnel:DELay: 0 to 60 s after a channel closes"),
    Case("DAQ970A", "ROUT:SCAN", f"{DAQ}, ROUTe:SCAN (@scan_list): the scan list (34970A guide: 'To start the scan, use "
         "the INITiate or READ? command')"),
    Case("DAQ970A", "READ?", "Agilent 34970A User's Guide ch. 5, 'Using the READ? Command': 'changes the state of the "
         "scan trigger system from the idle state to the wait-for-trigger state ... Readings are then sent immediately "
         "to the instrument's output buffer'"),
    Case("DAQ970A", "SYST:ERR?", f"{DAQ}, SYSTem:ERRor?: the oldest error, +0,\"No error\" when the queue is empty"),
    Case("E36312A", "*IDN?", f"{E363}, IEEE-488.2 Common Commands: 'Keysight Technologies,E36312A,<serial>,<firmware>'"),
    Case("E36312A", "*RST", f"{E363}, Reset and Non-volatile Settings - Reset (*RST) settings: outputs off, levels "
         "and limits to their defaults"),
    Case("E36312A", "*CLS", f"{E363}, IEEE-488.2 Common Commands, *CLS: clear status registers and error queue"),
    Case("E36312A", "CURR", f"{E363}, [SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude] <current>,(@<list>): current "
         "limit of the listed outputs, e.g. 'CURR 2.0,(@1)'"),
    Case("E36312A", "VOLT", f"{E363}, [SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude] <voltage>,(@<list>): e.g. "
         "'VOLT 5.0,(@1)'"),
    Case("E36312A", "OUTP", f"{E363}, OUTPut[:STATe] {{ON|OFF}},(@<list>): e.g. 'OUTP OFF,(@1,2,3)'"),
    Case("E36312A", "MEAS:CURR?", f"{E363}, MEASure[:SCALar]:CURRent[:DC]? (@<list>): measured current of each listed "
         "output, comma separated"),
    Case("E36312A", "SYST:ERR?", f"{E363}, SYSTem:ERRor[:NEXT]?: oldest error, +0,\"No error\" when empty"),
    Case("Keithley2450", "*IDN?", f"{K2450}, Appendix B *IDN? (B-5): 'KEITHLEY INSTRUMENTS INC.,MODEL nnnn,xxxxxxx,yyyyy'"),
    Case("Keithley2450", "*LANG?", f"{K2450}, Appendix B *LANG: 'determines which command set is used by the "
         "instrument': TSP, SCPI or SCPI2400; default SCPI, saved in nonvolatile memory"),
    Case("Keithley2450", "*RST", f"{K2450}, Appendix B *RST: instrument defaults (output off)"),
    Case("Keithley2450", "*CLS", f"{K2450}, Appendix B *CLS: clears the event registers and the error queue"),
    Case("Keithley2450", ":SOUR:FUNC", f"{K2450}, :SOURce[1]:FUNCtion[:MODE] (6-72): source voltage or current"),
    Case("Keithley2450", ":SOUR:VOLT:RANG", f"{K2450}, :SOURce[1]:<function>:RANGe (6-74): a fixed source range "
         "(autorange off); ranges 20 mV, 200 mV, 2 V, 20 V, 200 V"),
    Case("Keithley2450", ":SOUR:VOLT:ILIM", f"{K2450}, :SOURce[1]:<function>:<x>LIMit[:LEVel]: current limit of the "
         "voltage source"),
    Case("Keithley2450", ":SENS:FUNC", f"{K2450}, [:SENSe[1]]:FUNCtion[:ON] \"CURRent\": the measure function"),
    Case("Keithley2450", ":SENS:CURR:RANG:AUTO", f"{K2450}, [:SENSe[1]]:<function>:RANGe:AUTO (6-50): autorange on"),
    Case("Keithley2450", ":OUTP:SMOD", f"{K2450}, 'Setting the output-off state' (2-84): ':OUTPut:SMODe HIMPedance'; "
         ":OUTPut[1]:<function>:SMODe (6-32): without <function> it sets the output-off state of all functions"),
    Case("Keithley2450", ":OUTP", f"{K2450}, :OUTPut[1][:STATe] (6-34): 'Turn source off: 0 or OFF, on: 1 or ON'"),
    Case("Keithley2450", ":SOUR:VOLT", f"{K2450}, :SOURce[1]:<function>[:LEVel][:IMMediate][:AMPLitude] (6-70): 'If a "
         "manual source range is selected, the level cannot exceed the specified range'"),
    Case("Keithley2450", ":MEAS:CURR?", f"{K2450}, :MEASure[:<function>]?: one measurement of the function (A)"),
    Case("Keithley2450", "SYST:ERR?", f"{K2450}, :SYSTem:ERRor[:NEXT]?: oldest error of the queue"),
    Case("Keithley2450", ":SOUR:CURR:RANG", f"{K2450}, :SOURce[1]:<function>:RANGe (6-75): 'The fixed current source "
         "ranges are 10 nA, 100 nA, 1 µA, 10 µA, 100 µA, 1 mA, 10 mA, 100 mA, and 1 A'", "Keithley2450-current"),
    Case("Keithley2450", ":SOUR:CURR:VLIM", f"{K2450}, :SOURce[1]:<function>:<x>LIMit[:LEVel] (6-71): "
         "':SOURce[1]:CURRent:VLIMit[:LEVel] <n>' — 'The Model 2450 cannot source levels that exceed this limit'",
         "Keithley2450-current"),
    Case("Keithley2450", ":SOUR:CURR", f"{K2450}, :SOURce[1]:<function>[:LEVel][:IMMediate][:AMPLitude] (6-70): the "
         "current level", "Keithley2450-current"),
    Case("Keithley2450", ":SOUR:CURR:VLIM:TRIP?", f"{K2450}, :SOURce[1]:<function>:<x>LIMit[:LEVel]:TRIPped? (6-72): "
         "'If the source did not exceed the set limits, the return is 0. If the source did exceed the set limits, the "
         "return is 1.'", "Keithley2450-current"),
    Case("Keithley2450", ":SENS:VOLT:RANG:AUTO", f"{K2450}, [:SENSe[1]]:<function>:RANGe:AUTO (6-50): voltage "
         "autorange", "Keithley2450-current"),
    Case("Keithley2450", ":MEAS:VOLT?", f"{K2450}, :MEASure[:<function>]?: one measurement of the function (V)",
         "Keithley2450-current"),
]


def header(unit: str) -> str:
    """The header of one message unit, upper case, without a leading colon: ``':SOUR:VOLT 1'`` -> ``SOUR:VOLT``."""
    return unit.strip().split(" ", 1)[0].lstrip(":").upper()


def units(message: str) -> list[str]:
    return [u for u in message.split(";") if u.strip()]


def table_rows() -> set[tuple[str, str]]:
    """(instrument, header) of every row of the table in drivers/SCPI.md."""
    rows = set()
    for line in TABLE.read_text(encoding="utf-8").split("## What the emulators refuse")[0].splitlines():
        m = re.match(r"\|\s*(DAQ970A|E36312A|Keithley2450)\s*\|\s*`([^`]+)`\s*\|", line)
        if m:
            rows.add((m.group(1), header(m.group(2))))
    return rows


@pytest.mark.parametrize("case", CASES, ids=[f"{c.model}-{c.header}" for c in CASES])
def test_every_message_follows_its_manual_section(case: Case) -> None:
    """Each message is sent exactly as scripted (bytes and order) in its driver's flow, its reply
    parsed, and it follows the manual section cited in ``case.manual``."""
    cls, kw, script, flow = FLOWS[case.flow or case.model]
    with expected_protocol(cls, script, **kw) as inst:
        flow(inst)
        sent = [header(u) for msg in inst.resource.written for u in units(msg)]
    assert header(case.header) in sent, f"{case.header} not sent; manual: {case.manual}"
    assert case.manual and (case.model, header(case.header)) in table_rows()


def test_the_table_and_the_cases_name_the_same_messages() -> None:
    assert table_rows() == {(c.model, header(c.header)) for c in CASES}


class Recorder:
    """A pyvisa resource wrapper that records every message written."""

    def __init__(self, resource: Any, log: list[str]) -> None:
        self.__dict__["_r"], self.__dict__["_log"] = resource, log

    def write(self, message: str) -> Any:
        self._log.append(message)
        return self._r.write(message)

    def query(self, message: str) -> str:
        self._log.append(message)
        return self._r.query(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._r, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._r, name, value)


_ids = itertools.count()


def test_every_message_the_drivers_send_on_the_emulators_is_in_the_table() -> None:
    """Every driver path on the emulators (configure, read, error drain, reset, setup, apply,
    read_currents, safe state, close) and every declared Command/Query: each message unit's
    header has a row in drivers/SCPI.md for its instrument."""
    spec = load_rig(ROOT / "protocols" / "rigs" / "sim16.toml")
    bench = register(SimBench(f"manual{next(_ids)}", Breadboard(spec.network, spec.part, SimSettings(**spec.sim))))
    try:
        for dev, model in (("daq", "DAQ970A"), ("old", "34970A"), ("psu1", "E36312A"), ("smu", "Keithley2450")):
            bench.add_instrument(dev, model, dev)
        rm = open_resource_manager()
        sent: dict[str, list[str]] = {"DAQ970A": [], "E36312A": [], "Keithley2450": []}

        def res(dev: str, model: str) -> Recorder:
            return Recorder(rm.open_resource(f"TCPIP0::{bench.name}::{dev}::INSTR"), sent[model])

        for dev, cls in (("daq", DAQ970A), ("old", Keysight34970A)):
            m = cls(res(dev, "DAQ970A"), nplc=2)
            m.configure(["103", "101"])
            m.read()
            m.errors()
            m.reset()
            m.close()
        psu = E36312A(res("psu1", "E36312A"), max_v={"1": 1, "2": 1, "3": 1})
        smu = Keithley2450(res("smu", "Keithley2450"), max_v={"1": 1}, current_limit_a=1e-3)
        smu_i = Keithley2450Current(res("smu", "Keithley2450"), max_current_a=1e-3, vlim_v=1.0)
        smu_i.setup()
        smu_i.apply_currents({"1": 2e-4}, {"1": 0.8})
        smu_i.read_voltages(["1"])
        smu_i.tripped(["1"])
        smu_i.safe_state()
        smu_i.errors()
        for src, pattern in ((psu, {"1": 0.5, "3": 0.2}), (smu, {"1": 0.4})):
            src.setup()
            src.apply(pattern)
            src.apply({k: v / 2 for k, v in pattern.items()})
            src.read_currents(list(pattern))
            src.apply({})
            src.safe_state()
            src.errors()
            src.close()
        rows = table_rows()
        for model, msgs in sent.items():
            assert msgs, model
            missing = {header(u) for msg in msgs for u in units(msg)} - {h for mdl, h in rows if mdl == model}
            assert not missing, f"{model}: sent but not in drivers/SCPI.md: {sorted(missing)}"
        for model, cls in (("DAQ970A", DAQ970A), ("E36312A", E36312A), ("Keithley2450", Keithley2450)):
            declared = {header(v.template) for c in (cls, *([Keithley2450Current] if cls is Keithley2450 else []))
                        for v in vars(c).values() if isinstance(v, Command)}
            assert declared <= {h for mdl, h in rows if mdl == model}, (model, declared)
    finally:
        unregister(bench.name)


# ---------------------------------------------------------------------- manual facts the drivers act on
@pytest.mark.parametrize(("limit_v", "rng"), [(0.015, "0.02"), (0.1, "0.2"), (1.0, "2"), (2.0, "2"), (5.0, "20"),
                                              (200.0, "200")])
def test_keithley2450_fixed_source_range_holds_the_channel_limit(limit_v: float, rng: str) -> None:
    """Keithley 2450 Reference Manual, :SOURce[1]:<function>[:LEVel][:IMMediate][:AMPLitude]: 'If a
    manual source range is selected, the level cannot exceed the specified range.' The driver fixes
    the smallest range (:SOURce[1]:<function>:RANGe; 20 mV, 200 mV, 2 V, 20 V, 200 V) that holds the
    channel's limit, so no level it accepts is refused by the instrument (a 5 V limit used to get
    the 2 V range and -222 at every level above 2.1 V)."""
    script = [SMU_IDN, ("*LANG?", "SCPI"), ("*RST;*CLS", None), (":SOUR:FUNC VOLT", None), (f":SOUR:VOLT:RANG {rng}", None),
              (":SOUR:VOLT:ILIM 0.001", None), (':SENS:FUNC "CURR"', None), (":SENS:CURR:RANG:AUTO ON", None),
              (":OUTP:SMOD HIMP", None), (":OUTP OFF;:SOUR:VOLT 0", None), NO_ERR]
    with expected_protocol(Keithley2450, script, max_v={"1": limit_v}, current_limit_a=1e-3) as s:
        s.setup()
        assert s.source_range_v >= limit_v


@pytest.mark.parametrize("lang", ["TSP", "SCPI2400"])
def test_keithley2450_not_in_scpi_mode_is_refused_with_how_to_switch(lang: str) -> None:
    """Keithley 2450 Reference Manual, Appendix B '*LANG': the command set (TSP, SCPI, SCPI2400) is
    kept in nonvolatile memory and changes at the next power-up. In TSP mode SCPI commands are not
    understood, so setup asks ``*LANG?`` first and stops — nothing else sent — saying how to switch."""
    with expected_protocol(Keithley2450, [SMU_IDN, ("*LANG?", lang)], max_v={"1": 1.0}, label="source smu") as s:
        with pytest.raises(InstrumentError, match=rf"source smu: the instrument runs the {lang} command set.*"
                                                  r"\*LANG SCPI.*restart"):
            s.setup()


def test_meter_timing_floor_follows_the_mains_frequency() -> None:
    """DAQ970A Programming Guide, [SENSe:]VOLTage[:DC]:NPLC: the integration time is counted in
    power-line cycles — 1 PLC = 20 ms at 50 Hz, 16.7 ms at 60 Hz (the default)."""
    for hz, plc in ((50, 0.020), (60, 1 / 60)):
        with expected_protocol(DAQ970A, DAQ_SCRIPT[:8], mains_hz=hz, nplc=1) as m:
            m.configure(["101", "102", "103"])
            assert m.scan_time_s() == pytest.approx(3 * 1 * plc)
    with pytest.raises(ValueError, match="mains_hz=55"):
        DAQ970A(object(), mains_hz=55)
