"""Emulated sources: the E36312A triple supply and the Keithley 2450 SMU.

Output-off behaviour (what an output that is off does to its node) is published to the
breadboard model (:meth:`simulator.breadboard.Breadboard.set_off_resistance`):

* E36312A: ``off_resistance_ohm`` (an instrument property, the rig file's key; ``inf``: the node
  floats). Its predecessor's guide (Agilent E3631A User's Guide, ch. 4, OUTPut[:STATe]) says
  a disabled output is "less than 0.6 volts of opposite polarity with no load and less than
  60 mA of opposite direction with a short circuit": a low impedance to 0 V (≤ 0.6 V / 60 mA
  = 10 Ω), not an open circuit.
* Keithley 2450: ``:OUTP:SMOD`` — HIMP opens the output relay (the node floats; every output
  off/on operates the relay: :attr:`Keithley2450Emulator.relay_operations`), NORM and ZERO
  leave a 0 V voltage source on the terminals (2450 Reference Manual, section 2 "Output-off
  state"; modelled as :data:`labnet.core.release.SMU_ZERO_OFF_OHM` to 0 V).
"""

from __future__ import annotations

import math
from typing import Any

from labnet.core.release import SMU_ZERO_OFF_OHM
from simulator.scpi_core import ScpiEmulator, ScpiError, VisaTiming, need, number
from simulator.smu_current import CurrentFunction


class _SourceEmulator(ScpiEmulator):
    """Shared by the supplies: channel levels, outputs, current limits, the bench wiring."""

    max_v: dict[int, float] = {}

    def rst(self) -> None:
        self.level = dict.fromkeys(self.max_v, 0.0)
        self.on = dict.fromkeys(self.max_v, False)
        self.ilim = dict.fromkeys(self.max_v, 0.1)
        self._publish()

    def _publish(self) -> None:
        names = self.__dict__.get("_wired_names")
        if names is None:  # channel -> its name in the network, for the channels wired to a node
            wired = self._wired_sources()
            names = self._wired_names = {ch: f"{self.prefix}.{ch}" for ch in self.max_v
                                         if f"{self.prefix}.{ch}" in wired}
        level, on = self.level, self.on
        self.bench.set_outputs(self.device, {n: level[ch] for ch, n in names.items() if on[ch]})

    def _publish_off(self, ohm: float) -> None:
        """Tell the model what every wired channel's output-off state is (Ω to 0 V)."""
        for ch in self.max_v:
            name = f"{self.prefix}.{ch}"
            if name in self._wired_sources():
                self.bench.model.set_off_resistance(name, ohm)

    def _wired_sources(self) -> frozenset[str]:
        """Source channels of the model's network (the network never changes: kept)."""
        w = self.__dict__.get("_wired")
        if w is None:
            w = self._wired = frozenset(self.bench.model.network.source_channels.values())
        return w

    def currents(self, chans: list[int]) -> list[float]:
        names = [f"{self.prefix}.{ch}" for ch in chans]
        wired = self._wired_sources()
        out = []
        for ch, n in zip(chans, names):
            out.append(float(self.bench.model.source_currents([n])[0]) if self.on[ch] and n in wired else 0.0)
        return out


class E36312AEmulator(_SourceEmulator):
    idn_model = "E36312A"
    optional_roots = ("SOUR",)
    max_v = {1: 6.18, 2: 25.75, 3: 25.75}

    def __init__(self, bench: Any, device: str, prefix: str = "", timing: VisaTiming | None = None,
                 off_resistance_ohm: float = math.inf) -> None:
        super().__init__(bench, device, prefix, timing)
        self.off_resistance_ohm = float(off_resistance_ohm)
        self._publish_off(self.off_resistance_ohm)
        self.rst()
        self.handlers.update({
            ("VOLT", False): self._volt,
            ("CURR", False): self._curr,
            ("OUTP", False): self._outp,
            ("VOLT", True): lambda a, c: ",".join(f"{self.level[ch]:+.6E}" for ch in self._chans(c)),
            ("OUTP", True): lambda a, c: ",".join(str(int(self.on[ch])) for ch in self._chans(c)),
            ("MEAS:CURR", True): lambda a, c: ",".join(f"{i:+.6E}" for i in self.currents(self._chans(c))),
        })

    def _chans(self, chans: list[int] | None) -> list[int]:
        if not chans:
            raise ScpiError(-109)
        if any(ch not in self.max_v for ch in chans):
            raise ScpiError(-222)
        return chans

    def _volt(self, args: list[str], chans: list[int] | None) -> None:
        need(args, 1)
        v = number(args[0])
        chans = self._chans(chans)
        if any(not 0 <= v <= self.max_v[ch] for ch in chans):
            raise ScpiError(-222)
        for ch in chans:
            self.level[ch] = v
        self._publish()

    def _curr(self, args: list[str], chans: list[int] | None) -> None:
        need(args, 1)
        v = number(args[0])
        if not 0 <= v <= 5.15:
            raise ScpiError(-222)
        for ch in self._chans(chans):
            self.ilim[ch] = v

    def _outp(self, args: list[str], chans: list[int] | None) -> None:
        need(args, 1)
        s = args[0].upper()
        if s not in ("ON", "OFF", "1", "0"):
            raise ScpiError(-222)
        for ch in self._chans(chans):
            self.on[ch] = s in ("ON", "1")
        self._publish()


#: ``*LANG`` command sets of the 2450 (Model 2450 Reference Manual, Appendix B "*LANG").
LANGUAGES = {"SCPI": "SCPI", "TSP": "TSP", "SCPI2400": "SCPI2400"}
#: Source ranges of the 2450 (V); each sources up to 105 % of its range (Model 2450 Reference
#: Manual, ":SOURce[1]:<function>:RANGe"; datasheet: 2 V range, 2.1 V maximum).
SOURCE_RANGES_V = (0.02, 0.2, 2.0, 20.0, 200.0)


class Keithley2450Emulator(CurrentFunction, _SourceEmulator):
    """The Keithley 2450 SMU sourcing voltage, or current with a voltage limit
    (:mod:`simulator.smu_current`).

    ``lang`` is the command set it was last booted in (``*LANG?``; default ``"SCPI"``). In
    ``TSP`` (or ``SCPI2400``) mode only the IEEE 488.2 common commands (``*IDN?``, ``*LANG``,
    ``*RST``, ``*CLS``...) are understood; any other message unit is refused with -285 (the
    TSP parser's "Program syntax error") and the rest of the message is discarded. ``*LANG
    <set>`` takes effect at the next power-up (the manual: the instrument must be restarted),
    which the emulator models as :meth:`reboot`.
    """

    idn_model = "MODEL 2450"
    manufacturer = "KEITHLEY INSTRUMENTS INC."  # Model 2450 Reference Manual, *IDN? (B-5)
    max_v = {1: 210.0}

    def __init__(self, bench: Any, device: str, prefix: str = "", timing: VisaTiming | None = None,
                 lang: str = "SCPI") -> None:
        super().__init__(bench, device, prefix, timing)
        if lang not in LANGUAGES:
            raise ValueError(f"lang={lang!r}: expected one of {', '.join(LANGUAGES)}")
        self.lang = self.lang_next = lang
        self.rst()
        self.handlers.update({
            ("*LANG", True): lambda a, c: self.lang,
            ("*LANG", False): self._set_lang,
            ("SOUR:VOLT:RANG", True): lambda a, c: f"{self.range_v:+.6E}",
            ("SOUR:VOLT:ILIM", True): lambda a, c: f"{self.ilim[1]:+.6E}",
            ("SOUR:FUNC", False): self._func,
            ("SOUR:VOLT", False): self._volt,
            ("SOUR:VOLT:RANG", False): self._range,
            ("SOUR:VOLT:ILIM", False): self._ilim,
            ("SENS:FUNC", False): self._sens,
            ("SENS:CURR:RANG:AUTO", False): lambda a, c: self._onoff(a),
            ("OUTP:SMOD", False): self._smod,
            ("OUTP", False): self._outp,
            ("OUTP", True): lambda a, c: str(int(self.on[1])),
            ("SOUR:VOLT", True): lambda a, c: f"{self.level[1]:+.6E}",
            ("MEAS:CURR", True): lambda a, c: f"{self.currents([1])[0]:+.6E}",
            **self.current_handlers(),
        })

    #: Output relay operations (HIMP off-state: the relay opens at every output off and closes
    #: at every output on). The 2450 manual warns against HIMP for frequent switching.
    relay_operations = 0

    def _set_lang(self, a: list[str], c: list[int] | None) -> None:
        need(a, 1)
        v = LANGUAGES.get(a[0].upper())
        if v is None:
            raise ScpiError(-224)
        self.lang_next = v

    def reboot(self) -> None:
        """Power cycle: the command set chosen by ``*LANG`` takes effect; settings reset."""
        self.lang = self.lang_next
        self.error_queue.clear()
        self._out.clear()
        self._parsed.clear()
        self.rst()

    def write(self, data: bytes) -> None:
        """In TSP/SCPI2400 mode a message with anything but common commands is one chunk the
        instrument's parser rejects whole: -285 queued, nothing in it executed."""
        if self.lang != "SCPI":
            msg = data.decode("ascii", "replace").strip()
            parts = [p.strip().lstrip(":") for p in msg.split(";") if p.strip()]
            if any(not p.startswith("*") for p in parts):
                self.clock.charge(self.timing.write_s)
                self.messages.append(msg)
                self.n_writes += 1
                self._out.clear()
                self.push_error(-285, "TSP Syntax error at line 1: unexpected symbol near ':'" if self.lang == "TSP"
                                else "Program syntax error; not a SCPI2400 command")
                return
        super().write(data)

    def rst(self) -> None:
        self.rst_current()
        self.range_v = 20.0
        self.smod = "NORM"  # the 2450's *RST off-state (2450 Reference Manual: smu.OFFMODE_NORMAL default)
        super().rst()
        self.publish_current()
        self._publish_off(SMU_ZERO_OFF_OHM)

    def _publish(self) -> None:
        """Voltage outputs reach the model only while the function is voltage."""
        if self.__dict__.get("function", "VOLT") == "VOLT":
            super()._publish()
        else:
            self.bench.set_outputs(self.device, {})

    def _onoff(self, a: list[str]) -> bool:
        need(a, 1)
        if a[0].upper() not in ("ON", "OFF", "1", "0"):
            raise ScpiError(-222)
        return a[0].upper() in ("ON", "1")

    def _func(self, a: list[str], c: list[int] | None) -> None:
        need(a, 1)
        f = {"VOLT": "VOLT", "VOLTAGE": "VOLT", "CURR": "CURR", "CURRENT": "CURR"}.get(a[0].upper().strip('"'))
        if f is None:
            raise ScpiError(-224)
        self.set_function(f)
        self._publish()

    def _sens(self, a: list[str], c: list[int] | None) -> None:
        need(a, 1)
        f = {"CURR": "CURR", "CURRENT": "CURR", "CURR:DC": "CURR", "VOLT": "VOLT", "VOLTAGE": "VOLT",
             "VOLT:DC": "VOLT"}.get(a[0].upper().strip('"'))
        if f is None:
            raise ScpiError(-221, "Settings conflict; only current and voltage sensing are emulated")
        self.set_sense(f)

    def _volt(self, a: list[str], c: list[int] | None) -> None:
        need(a, 1)
        v = number(a[0])
        if abs(v) > 1.05 * self.range_v:
            raise ScpiError(-222)
        self.level[1] = v
        self._publish()

    def _range(self, a: list[str], c: list[int] | None) -> None:
        need(a, 1)
        v = number(a[0])
        ranges = (0.02, 0.2, 2.0, 20.0, 200.0)
        fit = [r for r in ranges if r >= abs(v)]
        if not fit:
            raise ScpiError(-222)
        self.range_v = fit[0]

    def _ilim(self, a: list[str], c: list[int] | None) -> None:
        need(a, 1)
        v = number(a[0])
        if not 1e-9 <= v <= 1.05:
            raise ScpiError(-222)
        self.ilim[1] = v

    def _smod(self, a: list[str], c: list[int] | None) -> None:
        need(a, 1)
        s = a[0].upper()
        if s not in ("HIMP", "NORM", "ZERO", "GUAR"):
            raise ScpiError(-222)
        if s == "GUAR":
            raise ScpiError(-221, "Settings conflict; the guard off-state (a 0 A current source) is not emulated")
        self.smod = s
        self._publish_off(math.inf if s == "HIMP" else SMU_ZERO_OFF_OHM)

    def _outp(self, a: list[str], c: list[int] | None) -> None:
        on = self._onoff(a)
        if on != self.on[1] and self.smod == "HIMP":
            self.relay_operations += 1
        self.on[1] = on
        self._publish()
        self.publish_current()
