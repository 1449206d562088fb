"""``labnet doctor``, part 1: what is plugged in, and is it what the rig file says.

* :func:`serial_ports` / :func:`visa_resources`: the serial ports (``serial.tools.list_ports``)
  and the VISA resources of every backend the rig file uses (a missing VISA library is a
  line in the report, not a crash);
* :func:`identify`: open each instrument the rig names on its own, identify it (the board's
  ready line and ``I`` reply: protocol, firmware version, part family, channels, largest code,
  readback, non-volatile store; ``*IDN?`` of every SCPI instrument) and compare it with the rig
  file. Every instrument is closed again; nothing is driven (sources are set up in their safe
  state, as a run's start does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyvisa
import serial
from serial.tools import list_ports

from drivers.current_source import Keithley2450Current
from drivers.daq970a import DAQ970A, Keysight34970A
from drivers.digipot import DigipotBoard
from drivers.sources import E36312A, Keithley2450
from labnet.bench.catalog import SOURCES
from labnet.config.rigfile import RigSpec, VisaSpec
from labnet.core.errors import LabnetError
from labnet.experiments.wiring_check import metered_nodes
from simulator.visa import library

#: Firmware family the board reports for each part interface (drivers/firmware/main.c FAMILY_*).
FAMILIES = {"updown": ("X9C",), "spi": ("MCP41", "MCP42")}
#: What a pyvisa / pyserial / driver failure may raise while doctor opens an instrument.
OPEN_ERRORS = (LabnetError, OSError, ValueError, serial.SerialException, pyvisa.errors.Error)


@dataclass
class InstrumentCheck:
    """One instrument: its role (``board``, ``meter``, a source prefix), address, what it said
    (``identity``) and what differs from the rig file (``problems``; empty: as expected)."""

    role: str
    address: str
    expected: str
    identity: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "address": self.address, "expected": self.expected, "ok": self.ok,
                "identity": self.identity, "problems": list(self.problems)}


def serial_ports() -> list[dict[str, str]]:
    """Serial ports of this computer: device, description, hardware id."""
    try:
        ports = list_ports.comports()
    except OSError as exc:  # pragma: no cover - a broken sysfs
        return [{"device": "", "description": f"cannot list serial ports: {exc}", "hwid": ""}]
    return [{"device": p.device, "description": p.description or "", "hwid": p.hwid or ""} for p in ports]


def _manager(backend: str) -> pyvisa.ResourceManager:
    if backend == "sim":
        return pyvisa.ResourceManager(library())
    return pyvisa.ResourceManager(f"@{backend}" if backend else "")


def visa_resources(spec: RigSpec) -> dict[str, dict[str, Any]]:
    """VISA resources per backend the rig file's addresses use (``""``: the system VISA
    library): ``{"resources": [...]}`` or ``{"error": "..."}`` when the backend is missing."""
    ins = spec.instruments
    backends = sorted({v.backend for v in ([ins.meter, *ins.sources.values()] if ins else [])} or {""})
    out: dict[str, dict[str, Any]] = {}
    for b in backends:
        try:
            rm = _manager(b)
            try:
                out[b] = {"resources": sorted(rm.list_resources())}
            finally:
                rm.close()
        except Exception as exc:  # noqa: BLE001 - any missing/broken VISA backend is one report line
            out[b] = {"error": f"{type(exc).__name__}: {exc}".strip()}
    return out


def _board(spec: RigSpec, sleep: Callable[[float], None]) -> InstrumentCheck:
    ins = spec.instruments
    assert ins is not None
    b = ins.board
    part = spec.part
    chk = InstrumentCheck("board", b.address, f"digipot board, {part.name} on channels "
                          f"{min(spec.network.edge_channels)}..{max(spec.network.edge_channels)}")
    try:
        port = serial.serial_for_url(b.address, baudrate=b.baud, timeout=b.timeout_s)
    except OPEN_ERRORS as exc:
        chk.problems.append(f"cannot open {b.address!r}: {exc}")
        return chk
    try:
        board = DigipotBoard(port, timeout_s=b.timeout_s, retries=b.retries, sleep=sleep)
        board.connect()
        chk.identity = {**board.identity(), "ready_line": board.ready_line}
        info = board.info
        need = max(spec.network.edge_channels) + 1
        if board.ready_line is None:
            chk.problems.append("no ready line after the port opened (a board that does not reset on open, "
                                "or a slow boot)")
        if info["family"] not in FAMILIES.get(part.interface, ()):
            chk.problems.append(f"firmware built for {info['family']} parts; the rig file's {part.name} needs "
                                f"{' or '.join(FAMILIES.get(part.interface, ('?',)))}")
        if info["channels"] < need:
            chk.problems.append(f"{info['channels']} channels; the rig wires channels up to {need - 1}")
        if info["max_code"] != part.max_code:
            chk.problems.append(f"largest code {info['max_code']}; {part.name} has {part.max_code}")
        if info["readback"] != part.readback or info["nonvolatile"] != part.nonvolatile:
            chk.problems.append(f"readback {info['readback']}, non-volatile {info['nonvolatile']}; {part.name} has "
                                f"readback {part.readback}, non-volatile {part.nonvolatile}")
    except OPEN_ERRORS as exc:
        chk.problems.append(f"no answer as a digipot board: {exc}")
    finally:
        try:
            port.close()
        except OPEN_ERRORS:
            pass
    return chk


def _scpi(role: str, v: VisaSpec, make: Callable[[Any], Any], check: Callable[[Any], None],
          managers: dict[str, Any]) -> InstrumentCheck:
    chk = InstrumentCheck(role, v.address, v.model)
    try:
        if v.backend not in managers:
            managers[v.backend] = _manager(v.backend)
        res = managers[v.backend].open_resource(v.resource)
    except Exception as exc:  # noqa: BLE001 - pyvisa raises many kinds; each is one report line
        chk.problems.append(f"cannot open {v.address!r}: {type(exc).__name__}: {exc}")
        return chk
    try:
        drv = make(res)
        drv.models = ()  # identify whatever answers; the comparison is below
        idn = drv.idn()
        chk.identity = dict(idn)
        want = "2450" if v.model == "Keithley2450" else v.model
        if want not in idn.get("model", ""):
            chk.problems.append(f"*IDN? says {idn.get('manufacturer', '')} {idn.get('model', '')}; the rig file says "
                                f"{v.model}")
        else:
            check(drv)
    except OPEN_ERRORS as exc:
        chk.problems.append(str(exc))
    finally:
        try:
            res.close()
        except Exception:  # noqa: BLE001, S110 - closing after a failure: the failure is reported
            pass
    return chk


def identify(spec: RigSpec, sleep: Callable[[float], None] = time.sleep) -> list[InstrumentCheck]:
    """Open, identify and compare every instrument of a wired rig (module docstring)."""
    ins = spec.instruments
    if ins is None:
        return []
    out = [_board(spec, sleep)]
    managers: dict[str, Any] = {}
    m = ins.meter
    chans = [spec.network.meter_channels[n] for n in metered_nodes(spec.network)]
    meter_cls = DAQ970A if m.model == "DAQ970A" else Keysight34970A
    out.append(_scpi("meter", m, lambda r: meter_cls(r, nplc=m.options["nplc"], range_v=m.options["range_v"],
                                                     label=f"meter ({m.model})", retries=m.options["retries"],
                                                     sleep=sleep),
                     lambda d: d.configure(chans), managers))
    for p, v in ins.sources.items():
        cls = E36312A if v.model == "E36312A" else Keithley2450
        limits = {ch: spec.limits.channel_limit(f"{p}.{ch}") for ch in SOURCES[v.model].channels}

        def make(r: Any, cls: Any = cls, v: VisaSpec = v, p: str = p, limits: dict[str, float] = limits) -> Any:
            if v.options.get("function") == "current":  # a 2450 sourcing current: set up in current mode
                return Keithley2450Current(r, max_current_a=v.options["max_current_a"], vlim_v=v.options["vlim_v"],
                                           label=f"current source {p} ({v.model})", retries=v.options["retries"],
                                           sleep=sleep)
            return cls(r, max_v=limits, current_limit_a=v.options["current_limit_a"], label=f"source {p} ({v.model})",
                       retries=v.options["retries"], sleep=sleep)

        out.append(_scpi(p, v, make, lambda d: d.setup(), managers))
    for rm in managers.values():
        try:
            rm.close()
        except Exception:  # noqa: BLE001, S110 - a resource manager that will not close changes no finding
            pass
    return out


__all__ = ["InstrumentCheck", "identify", "serial_ports", "visa_resources"]
