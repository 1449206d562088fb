"""The Keithley 2450 emulator's current-source function (mixed into
:class:`simulator.source_emu.Keithley2450Emulator`).

From the *Model 2450 Interactive SourceMeter Instrument Reference Manual* (2450-901-01 Rev. B,
section 6):

* ``:SOUR:FUNC CURR|VOLT`` (:SOURce[1]:FUNCtion[:MODE], 6-72) — the source function.
* ``:SOUR:CURR:RANG <n>`` (6-74/6-75): "The fixed current source ranges are 10 nA, 100 nA, 1 µA,
  10 µA, 100 µA, 1 mA, 10 mA, 100 mA, and 1 A"; the instrument "selects the lowest range that can
  accommodate that level"; beyond 1 A: -222.
* ``:SOUR:CURR <n>`` (:SOURce[1]:<function>[:LEVel][:IMMediate][:AMPLitude], 6-70): on a fixed
  range the level may not exceed the range (by more than the 5 % the 2450 sources beyond each
  range): -222 "Data out of range", the setting ignored.
* ``:SOUR:CURR:VLIM <n>`` (:SOURce[1]:<function>:<x>LIMit[:LEVel], 6-71): default 21 V; the
  instrument "cannot source levels that exceed this limit" — modelled exactly: the breadboard
  solves the network with the source held at ±VLIM when the set current would need more
  (:func:`labnet.core.currents.solve_compliant`). Limits outside 0.02…210 V: -222.
* ``:SOUR:CURR:VLIM:TRIP?`` (6-72): 1 if "the instrument clamps the source to keep the source
  within the set limits", else 0.
* ``:MEAS:VOLT?``: the terminal voltage (the node's voltage; the meter's noise model is not
  applied — the 2450's own voltmeter is ~10 µV at 1 PLC on the 2 V range, datasheet).

While the output is off, or the function is voltage, the channel injects nothing.
"""

from __future__ import annotations

from typing import Any

from simulator.scpi_core import ScpiError, need, number

#: Fixed current source ranges (A), Model 2450 Reference Manual 6-75.
CURRENT_RANGES_A = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0)
#: The voltage limit's default (V, after ``*RST``) and its bounds (V), manual 6-71.
VLIM_DEFAULT_V, VLIM_MIN_V, VLIM_MAX_V = 21.0, 0.02, 210.0


class CurrentFunction:
    """State and handlers of the 2450's current source; the emulator calls :meth:`rst_current`
    from its ``rst`` and routes its outputs through :meth:`publish_current`."""

    bench: Any
    device: str
    prefix: str
    on: dict[int, bool]

    def rst_current(self) -> None:
        """``*RST``: voltage function, 0 A, VLIM 21 V (manual 6-71), current sensing; the current
        range starts at 100 µA (the manual's reset range is not modelled: a driver sets its own)."""
        self.function = "VOLT"
        self.curr_level = 0.0
        self.curr_range = 1e-4
        self.vlim = VLIM_DEFAULT_V
        self.sense = "CURR"

    def current_handlers(self) -> dict[tuple[str, bool], Any]:
        return {
            ("SOUR:FUNC", True): lambda a, c: self.function,
            ("SOUR:CURR", False): self._curr,
            ("SOUR:CURR", True): lambda a, c: f"{self.curr_level:+.6E}",
            ("SOUR:CURR:RANG", False): self._curr_range,
            ("SOUR:CURR:RANG", True): lambda a, c: f"{self.curr_range:+.6E}",
            ("SOUR:CURR:VLIM", False): self._vlim,
            ("SOUR:CURR:VLIM", True): lambda a, c: f"{self.vlim:+.6E}",
            ("SOUR:CURR:VLIM:TRIP", True): lambda a, c: str(int(self._tripped())),
            ("SENS:VOLT:RANG:AUTO", False): lambda a, c: need(a, 1),
            ("MEAS:VOLT", True): lambda a, c: f"{self._terminal_v():+.6E}",
        }

    @property
    def _name(self) -> str:
        return f"{self.prefix}.1"

    def _wired_current(self) -> bool:
        return self._name in self.bench.model.network.current_channels.values()

    def publish_current(self) -> None:
        """Tell the bench what this channel injects (nothing unless current function and on)."""
        if not self._wired_current():
            return
        live = self.function == "CURR" and self.on[1]
        self.bench.set_currents(self.device, {self._name: (self.curr_level, self.vlim)} if live else {})

    def set_function(self, f: str) -> None:
        self.function = f
        self.publish_current()

    def set_sense(self, f: str) -> None:
        self.sense = f

    def _curr(self, a: list[str], c: list[int] | None) -> None:
        need(a, 1)
        v = number(a[0])
        if abs(v) > 1.05 * self.curr_range:
            raise ScpiError(-222)
        self.curr_level = v
        self.publish_current()

    def _curr_range(self, a: list[str], c: list[int] | None) -> None:
        need(a, 1)
        v = abs(number(a[0]))
        fit = [r for r in CURRENT_RANGES_A if r >= v * (1 - 1e-9)]
        if not fit:
            raise ScpiError(-222)
        if abs(self.curr_level) > 1.05 * fit[0]:
            self.curr_level = 0.0  # the 2450 would not keep a level beyond the new range
        self.curr_range = fit[0]
        self.publish_current()

    def _vlim(self, a: list[str], c: list[int] | None) -> None:
        need(a, 1)
        v = number(a[0])
        if not VLIM_MIN_V <= v <= VLIM_MAX_V:
            raise ScpiError(-222)
        self.vlim = v
        self.publish_current()

    def _tripped(self) -> bool:
        if not (self.function == "CURR" and self.on[1] and self._wired_current()):
            return False
        return bool(self.bench.model.current_tripped(self._name))

    def _terminal_v(self) -> float:
        if not (self.function == "CURR" and self.on[1] and self._wired_current()):
            return 0.0
        return float(self.bench.model.current_terminal_v(self._name))
