"""Current sources: the Keithley 2450 sourcing current with a voltage limit, and the composite
that routes channel names (the :class:`~labnet.bench.roles.CurrentSources` role of a rig).

Every message follows the *Model 2450 Interactive SourceMeter Instrument Reference Manual*
(2450-901-01 Rev. B, section 6 "SCPI command reference"; rows in ``drivers/SCPI.md``):

* ``:SOUR:FUNC CURR`` — :SOURce[1]:FUNCtion[:MODE] (6-72): the source function is current.
* ``:SOUR:CURR:RANG <r>`` — :SOURce[1]:<function>:RANGe (6-74/6-75): a fixed range (autorange off)
  of 10 nA … 1 A; the driver picks the smallest that holds the rig's ``max_current_a``, so every
  level it accepts is one the instrument accepts (a level may exceed a fixed range by 5 % only).
* ``:SOUR:CURR:VLIM <v>`` — :SOURce[1]:<function>:<x>LIMit[:LEVel] (6-71): "The Model 2450 cannot
  source levels that exceed this limit": the voltage at the terminals stays within ±VLIM and the
  delivered current falls short (the limit has *tripped*).
* ``:SOUR:CURR:VLIM:TRIP?`` — :SOURce[1]:<function>:<x>LIMit[:LEVel]:TRIPped? (6-72): 1 when "the
  instrument clamps the source to keep the source within the set limits", else 0.
* ``:SENS:FUNC "VOLT"``, ``:SENS:VOLT:RANG:AUTO ON``, ``:MEAS:VOLT?`` — the 2450 measures the
  voltage it needs (the terminal voltage of the current input).
* ``:OUTP:SMOD HIMP`` (6-32, "Setting the output-off state" 2-84) and ``:OUTP ON|OFF``: with the
  high-impedance off-state the output relay opens, the node floats while the output is off.

Each :meth:`Keithley2450Current.apply_currents` is one verified exchange (``;:SYST:ERR?``
appended, as every source driver does) with only what changed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from drivers.scpi import ScpiInstrument
from drivers.scpi_params import Choice, Command, Query, Range
from drivers.scpi_text import join_commands
from drivers.sources import Routed, refuse_non_scpi
from labnet.bench.catalog import SOURCES
from labnet.core.errors import LimitError

__all__ = ["Keithley2450Current", "RoutedCurrentSources"]

_FACTS = SOURCES["Keithley2450"]


def _flag(reply: str) -> bool:
    """``"0"``/``"1"`` -> bool (a :SOURce:...:TRIPped? reply)."""
    s = reply.strip()
    if s not in ("0", "1"):
        raise ValueError(f"expected 0 or 1, got {s!r}")
    return s == "1"


class Keithley2450Current(ScpiInstrument):
    """Keithley 2450 SMU as a current source with a voltage limit (one channel, ``"1"``).

    Parameters
    ----------
    resource : pyvisa-resource-like
    max_current_a : float
        Largest |current| (A) the rig may source; sets the fixed source range.
    vlim_v : float
        The voltage limit VLIM (V, > 0): the largest |voltage| the output may reach, and the
        largest :meth:`apply_currents` may ask for.
    off_state : str
        ``:OUTP:SMOD`` while the output is off: ``"HIMP"`` (default; the node floats) or
        ``"NORM"``/``"ZERO"`` (the terminals held at 0 V).
    """

    models = ("2450",)
    ranges_a = _FACTS.ranges_a

    set_function = Command(":SOUR:FUNC {function}", "Source function.", function=Choice("CURR"))
    set_range = Command(":SOUR:CURR:RANG {range_a}", "Fixed source current range (A).",
                        range_a=Choice(*(f"{r:g}" for r in ranges_a)))
    set_level = Command(":SOUR:CURR {current_a:.6g}", "Source level (A).", current_a=Range(-1.05, 1.05))
    set_vlim = Command(":SOUR:CURR:VLIM {vlim_v:.6g}", "Voltage limit of the current source (V).",
                       vlim_v=Range(*_FACTS.vlim_v))
    output = Command(":OUTP {state}", "Output on or off.", state=Choice("ON", "OFF"))
    off_mode = Command(":OUTP:SMOD {state}", "Output-off state.", state=Choice("HIMP", "NORM", "ZERO"))
    measure_voltage = Query(":MEAS:VOLT?", float, "Measured terminal voltage (V).")
    limit_tripped = Query(":SOUR:CURR:VLIM:TRIP?", _flag, "Whether the voltage limit clamps the source.")
    language = Query("*LANG?", str.strip, "The command set the instrument runs (SCPI, TSP, SCPI2400).")

    def __init__(self, resource: Any, *, max_current_a: float, vlim_v: float, off_state: str = "HIMP",
                 label: str = "", timeout_s: float = 5.0, **retry: Any) -> None:
        super().__init__(resource, label, timeout_s, **retry)
        Range(1e-12, _FACTS.ranges_a[-1] * 1.05)("max_current_a", max_current_a)
        Range(*_FACTS.vlim_v)("vlim_v", vlim_v)
        self.channels = ("1",)
        self.max_current_a = float(max_current_a)
        self.vlim_max_v = float(vlim_v)
        self.off_state = type(self).off_mode.format(state=off_state).rsplit(" ", 1)[1]
        #: channel -> (level A, output on, VLIM V); ``unknown`` until the instrument confirms.
        self.outputs: dict[str, tuple[float, bool, float]] = {"1": (0.0, False, self.vlim_max_v)}
        self.unknown = False

    @property
    def source_range_a(self) -> float:
        """The fixed source range (A): the smallest that holds ``max_current_a``."""
        return next((r for r in self.ranges_a if r >= self.max_current_a), self.ranges_a[-1])

    # ------------------------------------------------------------------ set-up and safety
    def setup(self) -> None:
        """Identify, check the SCPI command set (``*LANG?``), ``*RST;*CLS``, current function,
        fixed range, VLIM, voltage sensing, the off-state, then the safe state; verified."""
        self.idn()
        refuse_non_scpi(self.label, self.language())
        cls = type(self)

        def steps() -> None:
            self.write("*RST;*CLS")
            for cmd in (cls.set_function.format(function="CURR"),
                        cls.set_range.format(range_a=f"{self.source_range_a:g}"),
                        cls.set_vlim.format(vlim_v=self.vlim_max_v), ':SENS:FUNC "VOLT"',
                        ":SENS:VOLT:RANG:AUTO ON", f":OUTP:SMOD {self.off_state}"):
                self.write(cmd)
            self.write(join_commands(self._safe_cmds()))

        self.unknown = True
        self.configure_verified("setting up", steps)
        self.outputs = {"1": (0.0, False, self.vlim_max_v)}
        self.unknown = False

    def _safe_cmds(self) -> list[str]:
        return [":OUTP OFF", ":SOUR:CURR 0"]

    def safe_state(self) -> None:
        """Output off and 0 A (sent unconditionally, verified)."""
        self.unknown = True
        self.write_verified(join_commands(self._safe_cmds()))
        vlim = self.outputs["1"][2]
        self.outputs = {"1": (0.0, False, vlim)}
        self.unknown = False

    # ------------------------------------------------------------------ the role
    def check(self, currents: Mapping[str, float], vlim: Mapping[str, float]) -> dict[str, tuple[float, float]]:
        """Validate (channel -> A, channel -> V) against the limits; send nothing."""
        out = {}
        for ch, i in currents.items():
            ch = str(ch)
            if ch not in self.outputs:
                raise LimitError(f"{self.label}: no channel {ch!r} (channels: 1)")
            fi = float(i)
            if not math.isfinite(fi) or abs(fi) > self.max_current_a:
                raise LimitError(f"{self.label} channel {ch}: {i} A exceeds its {self.max_current_a:g} A limit")
            v = float(vlim.get(ch, self.vlim_max_v))
            if not (math.isfinite(v) and _FACTS.vlim_v[0] <= v <= self.vlim_max_v):
                raise LimitError(f"{self.label} channel {ch}: voltage limit {v} V outside "
                                 f"{_FACTS.vlim_v[0]:g}..{self.vlim_max_v:g} V")
            out[ch] = (fi, v)
        return out

    def apply_currents(self, currents: Mapping[str, float], vlim: Mapping[str, float] | None = None) -> None:
        """Drive exactly the given channels (channel -> A, with channel -> VLIM V; default the
        configured VLIM), outputs on; every other output off. One verified exchange with only
        the changes; unverified: InstrumentError and the next call sends everything."""
        want = self.check(currents, vlim or {})
        cls = type(self)
        cmds: list[str] = []
        i_old, on_old, v_old = self.outputs["1"]
        unknown = self.unknown
        if "1" in want:
            i_new, v_new = want["1"]
            if unknown or v_new != v_old:
                cmds.append(cls.set_vlim.format(vlim_v=v_new))
            if unknown or i_new != i_old or not on_old:
                cmds.append(cls.set_level.format(current_a=i_new))
            if unknown or not on_old:
                cmds.append(":OUTP ON")
            new = (i_new, True, v_new)
        else:
            if unknown or on_old:
                cmds.append(":OUTP OFF")
            new = (i_old, False, v_old)
        if cmds:
            self.unknown = True
            self.write_verified(join_commands(cmds))
        self.outputs = {"1": new}
        self.unknown = False

    def read_voltages(self, channels: Sequence[str]) -> np.ndarray:
        """Terminal voltage (V) of each channel (NaN for an output that is off, without asking)."""
        out = np.full(len(channels), np.nan)
        for i, c in enumerate(channels):
            if str(c) not in self.outputs:
                raise LimitError(f"{self.label}: no channel {c!r}")
            if self.outputs[str(c)][1]:
                out[i] = self.measure_voltage()
        return out

    def tripped(self, channels: Sequence[str]) -> np.ndarray:
        """Whether each channel's voltage limit clamps it (False for an output that is off)."""
        out = np.zeros(len(channels), dtype=bool)
        for i, c in enumerate(channels):
            if str(c) not in self.outputs:
                raise LimitError(f"{self.label}: no channel {c!r}")
            if self.outputs[str(c)][1]:
                out[i] = self.limit_tripped()
        return out

    def identity(self) -> dict[str, Any]:
        return {**self.idn_info, "function": "current", "max_current_a": self.max_current_a,
                "vlim_v": self.vlim_max_v, "source_range_a": self.source_range_a}


class RoutedCurrentSources(Routed):
    """The CurrentSources role over several instruments: ``"<prefix>.<channel>"`` names."""

    def __init__(self, instruments: Mapping[str, Keithley2450Current]) -> None:
        super().__init__(instruments, "current source")

    def _per(self, values: Mapping[str, float]) -> dict[str, dict[str, float]]:
        per: dict[str, dict[str, float]] = {p: {} for p in self.instruments}
        for name, v in values.items():
            p, ch = self._split(name)
            per[p][ch] = v
        return per

    def apply_currents(self, currents: Mapping[str, float], vlim: Mapping[str, float] | None = None) -> None:
        """Drive exactly these channels; all other outputs off. Every instrument checks its part
        before any instrument is sent anything."""
        per, lim = self._per(currents), self._per(vlim or {})
        for p, inst in self.instruments.items():
            inst.check(per[p], lim[p])
        for p, inst in self.instruments.items():
            inst.apply_currents(per[p], lim[p])

    def read_voltages(self, channels: Sequence[str]) -> np.ndarray:
        return np.array([self.instruments[p].read_voltages([c])[0] for p, c in map(self._split, channels)])

    def tripped(self, channels: Sequence[str]) -> np.ndarray:
        return np.array([bool(self.instruments[p].tripped([c])[0]) for p, c in map(self._split, channels)], dtype=bool)
