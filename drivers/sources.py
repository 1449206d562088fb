"""Voltage sources: Keysight E36312A, Keithley 2450, and the composite that routes channel names.

Each source driver keeps the state of its outputs and sends only what changes, one message
per :meth:`apply` (commands joined by ``;:``) with ``;:SYST:ERR?`` appended, so a state change
costs one exchange per instrument and its error queue is checked in that same exchange. An
error in the queue, a timeout or a garbled reply make the (idempotent) message be sent again
until the queue is clean, a bounded number of times (``retries``, see :mod:`drivers.scpi`);
:meth:`ScpiSource.safe_state` is verified the same way. Every driver enforces its channels'
voltage limits (the instrument's own maximum and the rig's limit, whichever is lower) before
sending anything.

:class:`RoutedSources` is the :class:`~labnet.bench.roles.Sources` role of a rig: channel
``"psu1.2"`` is channel ``"2"`` of the instrument registered under prefix ``"psu1"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from drivers.scpi import ScpiInstrument
from drivers.scpi_params import Choice, Command, Query, Range, floats
from drivers.scpi_text import join_commands
from labnet.bench.catalog import SOURCES
from labnet.core.errors import InstrumentError, LimitError

__all__ = ["E36312A", "Keithley2450", "Routed", "RoutedSources", "ScpiSource", "join_commands", "refuse_non_scpi"]


def refuse_non_scpi(label: str, lang: str) -> None:
    """InstrumentError unless a Keithley 2450's ``*LANG?`` reply is SCPI (Model 2450 Reference
    Manual, Appendix B "*LANG": another command set takes effect only after a restart)."""
    lang = lang.upper()
    if lang != "SCPI":
        raise InstrumentError(
            f"{label}: the instrument runs the {lang} command set (*LANG? says {lang!r}), not SCPI; "
            "switch it: front panel MENU > System > Settings > Command Set > SCPI, or send '*LANG SCPI', "
            "then restart the instrument (the change takes effect at power-up)")


class ScpiSource(ScpiInstrument):
    """Common logic of a multi-channel voltage source.

    Parameters
    ----------
    resource : pyvisa-resource-like
    max_v : mapping channel -> V, optional
        The rig's limit per channel (tighter than the instrument's own maximum).
    current_limit_a : float
        Current limit (compliance) of every channel (A).
    """

    #: channel -> the instrument's own maximum |V|
    hw_max_v: dict[str, float] = {}
    hw_max_a: float = 1.0

    def __init__(self, resource: Any, *, max_v: Mapping[str, float] | None = None, current_limit_a: float = 0.01,
                 label: str = "", timeout_s: float = 5.0, **retry: Any) -> None:
        super().__init__(resource, label, timeout_s, **retry)
        self.channels = tuple(self.hw_max_v)
        self.max_v = {ch: float(self.hw_max_v[ch]) for ch in self.channels}
        for ch, v in (max_v or {}).items():
            if ch not in self.max_v:
                raise ValueError(f"{self.label}: no channel {ch!r} (channels: {', '.join(self.channels)})")
            self.max_v[ch] = min(self.max_v[ch], float(v))
        Range(1e-9, self.hw_max_a)("current_limit_a", current_limit_a)
        self.current_limit_a = float(current_limit_a)
        self.outputs: dict[str, tuple[float, bool]] = {ch: (0.0, False) for ch in self.channels}
        #: True when the outputs are not known (a setpoint or the safe state could not be
        #: verified): the next apply sends every channel's level and output state.
        self.unknown = False

    def check(self, voltages: Mapping[str, float]) -> dict[str, float]:
        """Validate a pattern (channel -> V) against this instrument's limits; send nothing."""
        out = {}
        for ch, v in voltages.items():
            ch = str(ch)
            if ch not in self.max_v:
                raise LimitError(f"{self.label}: no channel {ch!r} (channels: {', '.join(self.channels)})")
            fv = float(v)
            if not math.isfinite(fv) or abs(fv) > self.max_v[ch]:
                raise LimitError(f"{self.label} channel {ch}: {v} V exceeds its {self.max_v[ch]:g} V limit")
            out[ch] = fv
        return out

    def apply(self, voltages: Mapping[str, float]) -> None:
        """Drive exactly these channels (channel -> V), outputs on; every other output off.
        Sends one verified message with only the changes (nothing if nothing changes). If it
        cannot be verified, InstrumentError is raised and the outputs are marked
        :attr:`unknown` (the next apply sends every channel's level and output state)."""
        self._apply_checked(self.check(voltages))

    def _apply_checked(self, want: dict[str, float]) -> None:
        """:meth:`apply` of a pattern :meth:`check` has already validated."""
        cmds: list[str] = []
        new = dict(self.outputs)
        unknown = self.unknown
        for ch in self.channels:
            v_old, on_old = self.outputs[ch]
            if ch in want:
                if unknown or want[ch] != v_old or not on_old:
                    cmds += self._set_cmds(ch, want[ch], turn_on=unknown or not on_old)
                new[ch] = (want[ch], True)
            elif unknown or on_old:
                cmds += self._off_cmds(ch)
                new[ch] = (v_old, False)
        if cmds:
            self.unknown = True  # until the instrument confirms the message
            self.write_verified(join_commands(cmds))
        self.outputs = new
        self.unknown = False

    def safe_state(self) -> None:
        """Every channel to 0 V and its output off (sent unconditionally, verified)."""
        self.unknown = True  # until the instrument confirms the message
        self.write_verified(join_commands(self._safe_cmds()))
        self.outputs = {ch: (0.0, False) for ch in self.channels}
        self.unknown = False

    def setup(self) -> None:
        """Identify, reset to the factory state (``*RST``: whatever other software left — levels,
        limits, ranges, coupled or tracking outputs — is undone; ``*CLS``: the error queue
        cleared), set current limits, go to the safe state, check the error queue (the
        sequence is sent again if the queue was not clean)."""
        self.idn()
        self._check_mode()

        def steps() -> None:
            self.write("*RST;*CLS")
            for cmd in self._setup_cmds():
                self.write(cmd)
            self.write(join_commands(self._safe_cmds()))

        self.unknown = True
        self.configure_verified("setting up", steps)
        self.outputs = {ch: (0.0, False) for ch in self.channels}
        self.unknown = False

    def _check_mode(self) -> None:
        """Per model: refuse an instrument in a mode the driver cannot drive (before setup)."""

    # per-model command builders
    def _set_cmds(self, ch: str, v: float, turn_on: bool) -> list[str]:
        raise NotImplementedError

    def _off_cmds(self, ch: str) -> list[str]:
        raise NotImplementedError

    def _safe_cmds(self) -> list[str]:
        raise NotImplementedError

    def _setup_cmds(self) -> list[str]:
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        return {**self.idn_info, "current_limit_a": self.current_limit_a, "max_v": dict(self.max_v)}

    def read_currents(self, channels: Sequence[str]) -> np.ndarray:
        """Current (A) each of ``channels`` delivers, shape (len(channels),); per model."""
        raise NotImplementedError


class E36312A(ScpiSource):
    """Keysight E36312A triple supply: channel 1 0-6 V / 5 A, channels 2 and 3 0-25 V / 1 A.

    A channel whose output is off is disconnected from the network (the model's floating node).
    """

    models = ("E36312A", "E36311A", "E36313A")
    hw_max_v = dict(SOURCES["E36312A"].max_v)
    hw_max_a = SOURCES["E36312A"].max_current_limit_a

    set_voltage = Command("VOLT {voltage_v:.6g},(@{channel})", "Channel level (V).",
                          voltage_v=Range(0.0, max(hw_max_v.values())), channel=Choice(*hw_max_v))
    set_current = Command("CURR {current_a:.6g},(@{channel})", "Channel current limit (A).",
                          current_a=Range(0.0, 5.0), channel=Choice(*hw_max_v))
    output = Command("OUTP {state},(@{channel})", "Output on or off.", state=Choice("ON", "OFF"),
                     channel=Choice(*hw_max_v))
    measure_current = Query("MEAS:CURR? (@{channels})", floats, "Measured currents (A).", channels=lambda n, v: v)

    def check(self, voltages: Mapping[str, float]) -> dict[str, float]:
        out = super().check(voltages)
        for ch, v in out.items():
            if v < 0:
                raise LimitError(f"{self.label} channel {ch}: {v} V is negative (the E36312A sources 0 V and up)")
        return out

    def _set_cmds(self, ch: str, v: float, turn_on: bool) -> list[str]:
        cmds = [type(self).set_voltage.format(voltage_v=v, channel=ch)]
        if turn_on:
            cmds.append(type(self).output.format(state="ON", channel=ch))
        return cmds

    def _off_cmds(self, ch: str) -> list[str]:
        return [type(self).output.format(state="OFF", channel=ch)]

    def _safe_cmds(self) -> list[str]:
        return ["OUTP OFF,(@1:3)", "VOLT 0,(@1:3)"]

    def _setup_cmds(self) -> list[str]:
        return [f"CURR {self.current_limit_a:.6g},(@1:3)"]

    def read_currents(self, channels: Sequence[str]) -> np.ndarray:
        """Current (A) each channel delivers (0 for an output that is off, without asking)."""
        chans = [str(c) for c in channels]
        for c in chans:
            if c not in self.outputs:
                raise LimitError(f"{self.label}: no channel {c!r}")
        on = [c for c in chans if self.outputs[c][1]]
        out = np.zeros(len(chans))
        if on:
            vals = self.measure_current(channels=",".join(on))
            if len(vals) != len(on):
                raise InstrumentError(f"{self.label}: MEAS:CURR? returned {len(vals)} values for {len(on)} channels")
            for c, v in zip(on, vals):
                out[chans.index(c)] = v
        return out


class Keithley2450(ScpiSource):
    """Keithley 2450 SMU as a voltage source with a current limit; it measures current too.

    The output-off state is ``off_state`` (``:OUTP:SMOD``; 2450 Reference Manual, section 2
    "Output-off state"): ``"HIMP"`` (default) opens the output relay, so an output that is off
    leaves its node floating — but the relay operates at every output off/on, which the manual
    advises against for frequent switching (release through an analog switch instead);
    ``"NORM"``/``"ZERO"`` hold the terminals at 0 V.

    Setup checks ``*LANG?`` first: the 2450 answers SCPI only when booted with the SCPI command
    set (Model 2450 Reference Manual, Appendix B "*LANG"); in TSP or SCPI2400 mode setup stops
    with an InstrumentError saying how to switch. The source range is fixed (autorange off) at
    the smallest range that holds the channel's limit (:attr:`source_range_v`; ranges 20 mV,
    200 mV, 2 V, 20 V, 200 V): "If a manual source range is selected, the level cannot exceed
    the specified range" (:SOURce[1]:<function>[:LEVel][:IMMediate][:AMPLitude]), so every level
    :meth:`check` accepts is one the instrument accepts.
    """

    models = ("2450",)
    hw_max_v = dict(SOURCES["Keithley2450"].max_v)
    hw_max_a = SOURCES["Keithley2450"].max_current_limit_a
    #: Source voltage ranges (V), ascending (labnet.bench.catalog).
    ranges_v = SOURCES["Keithley2450"].ranges_v

    set_voltage = Command(":SOUR:VOLT {voltage_v:.6g}", "Source level (V).", voltage_v=Range(-210.0, 210.0))
    set_ilimit = Command(":SOUR:VOLT:ILIM {limit_a:.6g}", "Current limit (A).", limit_a=Range(1e-9, hw_max_a))
    set_range = Command(":SOUR:VOLT:RANG {range_v}", "Fixed source range (V).",
                        range_v=Choice(*(f"{r:g}" for r in ranges_v)))
    language = Query("*LANG?", str.strip, "The command set the instrument runs (SCPI, TSP, SCPI2400).")

    @property
    def source_range_v(self) -> float:
        """The fixed source range (V): the smallest that holds the channel's limit."""
        lim = self.max_v["1"]
        return next(r for r in self.ranges_v if r >= lim)

    def _check_mode(self) -> None:
        refuse_non_scpi(self.label, self.language())
    output = Command(":OUTP {state}", "Output on or off.", state=Choice("ON", "OFF"))
    measure_current = Query(":MEAS:CURR?", float, "Measured current (A).")
    off_mode = Command(":OUTP:SMOD {state}", "Output-off state.", state=Choice("HIMP", "NORM", "ZERO"))

    def __init__(self, resource: Any, *, off_state: str = "HIMP", **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)
        self.off_state = type(self).off_mode.format(state=off_state).rsplit(" ", 1)[1]

    def _set_cmds(self, ch: str, v: float, turn_on: bool) -> list[str]:
        cmds = [type(self).set_voltage.format(voltage_v=v)]
        if turn_on:
            cmds.append(":OUTP ON")
        return cmds

    def _off_cmds(self, ch: str) -> list[str]:
        return [":OUTP OFF"]

    def _safe_cmds(self) -> list[str]:
        return [":OUTP OFF", ":SOUR:VOLT 0"]

    def _setup_cmds(self) -> list[str]:
        return [":SOUR:FUNC VOLT", type(self).set_range.format(range_v=f"{self.source_range_v:g}"),
                type(self).set_ilimit.format(limit_a=self.current_limit_a),
                ':SENS:FUNC "CURR"', ":SENS:CURR:RANG:AUTO ON", f":OUTP:SMOD {self.off_state}"]

    def read_currents(self, channels: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(channels))
        for i, c in enumerate(channels):
            if str(c) not in self.outputs:
                raise LimitError(f"{self.label}: no channel {c!r}")
            if self.outputs[str(c)][1]:
                out[i] = self.measure_current()
        return out


class Routed:
    """Several instruments behind ``"<prefix>.<channel>"`` channel names: the routing and the
    every-instrument actions that the Sources and CurrentSources roles share.

    Parameters
    ----------
    instruments : mapping prefix -> driver (with ``channels``, ``safe_state``, ``identity``, ``close``)
    what : str
        How errors name a channel (``"source"``, ``"current source"``).
    """

    def __init__(self, instruments: Mapping[str, Any], what: str = "source") -> None:
        self.instruments = dict(instruments)
        self.what = what
        self.channels = tuple(f"{p}.{c}" for p, inst in self.instruments.items() for c in inst.channels)

    def _split(self, channel: str) -> tuple[str, str]:
        prefix, dot, ch = str(channel).partition(".")
        if not dot or prefix not in self.instruments:
            raise LimitError(f"{self.what} channel {channel!r}: expected <instrument>.<channel> with instrument "
                             f"one of {', '.join(self.instruments)}")
        return prefix, ch

    def _each(self, action: str) -> None:
        """``action`` on every instrument, each attempted even if another fails; the first error raised."""
        errors: list[Exception] = []
        for inst in self.instruments.values():
            try:
                getattr(inst, action)()
            except Exception as exc:  # noqa: BLE001 - every instrument must get its chance
                errors.append(exc)
        if errors:
            raise errors[0]

    def safe_state(self) -> None:
        """Every instrument to its safe state (0 V or 0 A, outputs off)."""
        self._each("safe_state")

    def identity(self) -> dict[str, Any]:
        return {p: inst.identity() for p, inst in self.instruments.items()}

    def close(self) -> None:
        self._each("close")


class RoutedSources(Routed):
    """The Sources role over several instruments: ``"<prefix>.<channel>"`` names.

    Parameters
    ----------
    instruments : mapping prefix -> source driver
    """

    def __init__(self, instruments: Mapping[str, ScpiSource]) -> None:
        super().__init__(instruments)
        self._splits: dict[str, tuple[str, str]] = {}  # channel name -> (instrument, channel)

    def apply(self, voltages: Mapping[str, float]) -> None:
        """Drive exactly these channels; all other outputs off. Every instrument checks its
        part of the pattern before any instrument is sent anything."""
        per: dict[str, dict[str, float]] = {p: {} for p in self.instruments}
        split = self._splits
        for name, v in voltages.items():
            pc = split.get(name) if type(name) is str else None
            if pc is None:
                pc = self._split(name)
                if type(name) is str:
                    split[name] = pc
            per[pc[0]][pc[1]] = v
        checked = {p: inst.check(per[p]) for p, inst in self.instruments.items()}
        for p, inst in self.instruments.items():
            if type(inst).apply is ScpiSource.apply:  # the check is not repeated
                inst._apply_checked(checked[p])
            else:
                inst.apply(per[p])

    def read_currents(self, channels: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(channels))
        for i, name in enumerate(channels):
            p, ch = self._split(name)
            out[i] = self.instruments[p].read_currents([ch])[0]
        return out

