"""The emulated DAQ970A / 34970A: a scanning DMM with a 20-channel multiplexer (101-120).

It scans in ascending channel order whatever order the list was written in; ``READ?`` is
ready after the scan time (channels x (NPLC x 1 PLC + switching) + trigger overhead), one PLC
being 1/``mains_hz`` s (60 Hz unless the rig says 50).

The trigger model follows the Keysight DAQ970A/DAQ973A Programming Guide (and the 34970A
User's Guide, chapter 5 "Scanning Overview"):

* ``TRIGger:SOURce {IMMediate|BUS|EXTernal|INTernal|TIMer|ALARm1..4}`` (default IMMediate,
  also after ``*RST``). "The READ? and MEASure commands and queries cannot be used to take
  readings when the selected trigger source is BUS. This is called a trigger deadlock
  condition": ``READ?`` then queues -214 "Trigger deadlock" and gives no reply (the host's read
  times out). EXTernal, INTernal and ALARm wait for a trigger no emulated bench gives: no
  reply either (a device clear drops the pending scan).
* ``TRIGger:COUNt {<count>|MIN|MAX|DEF|INFinity}`` (default 1): the number of sweeps through the
  scan list one ``READ?`` takes; ``READ?`` returns count x channels readings. INFinity never
  completes. ``TRIGger:TIMer <s>`` paces the sweeps of the TIMer source.
* ``SAMPle:COUNt`` (DAQ970A only; "for single channel DMM digitizing") is kept and reported but
  does not multiply scan readings.
* ``CONFigure`` redefines the scan list and the channels' settings, not the trigger settings;
  ``*RST`` resets them all.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from simulator.scpi_core import NPLC_VALUES, ScpiEmulator, ScpiError, VisaTiming, choice, need, number, plc_s

_READING = "%+.8E"  # one reading on the wire
_READINGS: dict[int, str] = {}  # n -> the format of a scan of n readings
TRIGGER_SOURCES = {**{k: v for v in ("IMM", "BUS", "EXT", "INT", "TIM") for k in (v, {"IMM": "IMMEDIATE",
                   "EXT": "EXTERNAL", "INT": "INTERNAL", "TIM": "TIMER", "BUS": "BUS"}[v])},
                   **{f"{a}{n}": f"ALAR{n}" for n in "1234" for a in ("ALAR", "ALARM")}}
MAX_TRIGGER_COUNT = 1_000_000
#: A/D resolution (bits) per integration time (NPLC): Agilent 34970A/34972A User's Guide, ch. 7
#: (the integration time / resolution table; labnet.bench.catalog.MeterModel.bits is the same).
#: One count over a range with its 20 % overrange is 2.4 · range / 2^bits (:func:`count_v`).
A_D_BITS = {0.02: 15, 0.2: 18, 1.0: 20, 2.0: 21, 10.0: 24, 20.0: 25, 100.0: 26, 200.0: 26}


def count_v(nplc: float, range_v: float) -> float:
    """One A/D count (V) at ``nplc`` on the ``range_v`` range."""
    return 2.4 * range_v / 2 ** A_D_BITS[float(nplc)]


class DAQ970AEmulator(ScpiEmulator):
    """Scanning DMM with a 20-channel multiplexer in slot 1 (channels 101-120)."""

    idn_model = "DAQ970A"
    optional_roots = ("SENS",)
    #: The message counters, scans taken and their total integration time (s).
    STATE_SCHEMA: ClassVar[dict[str, Any]] = {**ScpiEmulator.STATE_SCHEMA, "scans": int, "integration_s": float}

    def state(self) -> dict[str, Any]:
        return {**super().state(), "scans": self.scans, "integration_s": float(self.integration_total_s)}

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        self.scans, self.integration_total_s = int(state["scans"]), float(state["integration_s"])

    def __init__(self, bench: Any, device: str, prefix: str = "", timing: VisaTiming | None = None,
                 switch_s: float = 3e-4, trigger_s: float = 5e-4, model: str = "DAQ970A",
                 mains_hz: float = 60.0) -> None:
        super().__init__(bench, device, prefix, timing)
        if mains_hz not in (50, 60):
            raise ValueError(f"mains_hz={mains_hz!r}: expected 50 or 60")
        self.idn_model = model
        self.switch_s = switch_s
        self.trigger_s = trigger_s
        self.mains_hz = float(mains_hz)
        self.plc_s = plc_s(mains_hz)
        self.rst()
        self.handlers.update({
            ("CONF:VOLT:DC", False): self._conf,
            ("VOLT:DC:NPLC", False): self._nplc,
            ("ZERO:AUTO", False): self._zero,
            ("ROUT:CHAN:DEL", False): self._delay,
            ("ROUT:SCAN", False): self._scan,
            ("ROUT:SCAN", True): lambda a, c: ",".join(map(str, self.scan)),
            ("VOLT:DC:NPLC", True): lambda a, c: ",".join(f"{self.nplc.get(ch, 1.0):+.8E}" for ch in (c or [])),
            ("READ", True): self._read,
            ("TRIG:SOUR", False): self._trig_source,
            ("TRIG:SOUR", True): lambda a, c: self.trig_source,
            ("TRIG:COUN", False): self._trig_count,
            ("TRIG:COUN", True): lambda a, c: "9.9E+37" if math.isinf(self.trig_count) else f"{self.trig_count:+d}",
            ("TRIG:TIM", False): self._trig_timer,
            ("TRIG:TIM", True): lambda a, c: f"{self.trig_timer_s:+.8E}",
            ("*TRG", False): self._trg,
        })
        if model == "DAQ970A":
            self.handlers.update({("SAMP:COUN", False): self._samp_count,
                                  ("SAMP:COUN", True): lambda a, c: f"{self.samp_count:+d}"})
        self.scans = 0
        self.integration_total_s = 0.0
        self._wiring: dict[tuple[int, ...], tuple[list[str], list[str]]] = {}

    def _wire(self, scan: tuple[int, ...]) -> tuple[list[str], list[str]]:
        """Channel names of a scan list and the ones wired to a node of the model (cached)."""
        names = [str(ch) for ch in scan]
        wired_set = set(self.bench.model.network.meter_channels.values())
        self._wiring[scan] = (names, [n for n in names if n in wired_set])
        return self._wiring[scan]

    def rst(self) -> None:
        self._figures: tuple[list[int], tuple[float, float, float, list[float]]] | None = None
        self.dcv: dict[int, float] = {}
        self.nplc: dict[int, float] = {}
        self.autozero: dict[int, str] = {}
        self.delay: dict[int, float] = {}
        self.scan: list[int] = []
        self.trig_source = "IMM"
        self.trig_count: float | int = 1
        self.trig_timer_s = 1.0
        self.samp_count = 1

    # ------------------------------------------------------------------ trigger model
    def _trig_source(self, args: list[str], chans: list[int] | None) -> None:
        need(args, 1)
        if chans:
            raise ScpiError(-108)
        self.trig_source = choice(args[0], TRIGGER_SOURCES)

    def _count(self, args: list[str], lo: int, hi: int, inf: bool) -> float | int:
        need(args, 1)
        a = args[0].upper()
        if a in ("MIN", "MINIMUM", "DEF", "DEFAULT"):
            return lo
        if a in ("MAX", "MAXIMUM"):
            return hi
        if inf and a in ("INF", "INFINITY"):
            return math.inf
        v = number(args[0])
        if v != int(v) or not lo <= v <= hi:
            raise ScpiError(-222)
        return int(v)

    def _trig_count(self, args: list[str], chans: list[int] | None) -> None:
        self.trig_count = self._count(args, 1, MAX_TRIGGER_COUNT, inf=True)

    def _samp_count(self, args: list[str], chans: list[int] | None) -> None:
        self.samp_count = int(self._count(args, 1, 50_331_648, inf=False))

    def _trig_timer(self, args: list[str], chans: list[int] | None) -> None:
        need(args, 1)
        v = number(args[0])
        if not 0 <= v <= 359_999.0:
            raise ScpiError(-222)
        self.trig_timer_s = v

    def _trg(self, args: list[str], chans: list[int] | None) -> None:
        # *TRG is accepted only in the wait-for-trigger state (INITiate), which READ? cannot
        # reach with the BUS source; the emulator has no INITiate: the trigger is ignored.
        raise ScpiError(-211)

    def _chans(self, chans: list[int] | None) -> list[int]:
        if not chans:
            raise ScpiError(-109)
        for ch in chans:
            if not (100 < ch <= 120):
                raise ScpiError(-222, "Data out of range; channel not in slot 1 (101-120)")
        return chans

    def _conf(self, args: list[str], chans: list[int] | None) -> None:
        self._figures = None
        chans = self._chans(chans)
        if len(args) > 2:
            raise ScpiError(-108)
        rng = 10.0 if not args or args[0].upper() in ("AUTO", "DEF") else number(args[0])
        if rng not in (0.1, 1.0, 10.0, 100.0, 300.0):
            raise ScpiError(-222)
        for ch in chans:  # 34970A guide: a reconfigured channel's range, resolution and delay are reset
            self.dcv[ch] = rng
            self.nplc[ch] = 1.0
            self.autozero[ch] = "ON"
            self.delay.pop(ch, None)
        self.scan = sorted(chans)

    def _nplc(self, args: list[str], chans: list[int] | None) -> None:
        self._figures = None
        need(args, 1)
        v = number(args[0])
        if v not in NPLC_VALUES:
            raise ScpiError(-222)
        for ch in self._chans(chans):
            self.nplc[ch] = v

    def _zero(self, args: list[str], chans: list[int] | None) -> None:
        self._figures = None
        need(args, 1)
        mode = args[0].upper()
        mode = {"0": "OFF", "1": "ON"}.get(mode, mode)
        if mode not in ("OFF", "ONCE", "ON"):
            raise ScpiError(-222)
        for ch in self._chans(chans):
            self.autozero[ch] = mode

    def _delay(self, args: list[str], chans: list[int] | None) -> None:
        self._figures = None
        need(args, 1)
        v = number(args[0])
        if not 0 <= v <= 60:
            raise ScpiError(-222)
        for ch in self._chans(chans):
            self.delay[ch] = v

    def _scan(self, args: list[str], chans: list[int] | None) -> None:
        self._figures = None
        if args:
            raise ScpiError(-108)
        chans = self._chans(chans)
        if any(ch not in self.dcv for ch in chans):
            raise ScpiError(-221, "Settings conflict; channel not configured")
        self.scan = sorted(set(chans))

    def _scan_figures(self) -> tuple[float, float, float, list[float]]:
        """(lowest NPLC, integration time, scan time, one A/D count (V) of each channel at its NPLC
        and range) of the present scan list, kept until the configuration changes (every
        configuring command and ``*RST`` drop them)."""
        c = self._figures
        if c is None or c[0] is not self.scan:
            nplc = min(self.nplc.get(ch, 1.0) for ch in self.scan)
            integ = sum(self.nplc.get(ch, 1.0) * self.plc_s for ch in self.scan)
            counts = [count_v(self.nplc.get(ch, 1.0), self.dcv[ch]) for ch in self.scan]
            c = self._figures = (self.scan, (nplc, integ, self.scan_time_s(), counts))
        return c[1]

    def scan_time_s(self) -> float:
        """Modelled duration of one scan (s)."""
        t = self.trigger_s
        for ch in self.scan:
            n = self.nplc.get(ch, 1.0) * self.plc_s
            t += self.switch_s + self.delay.get(ch, 0.0) + (2 * n if self.autozero.get(ch) == "ON" else n)
        return t

    def _read(self, args: list[str], chans: list[int] | None) -> tuple[str, float]:
        if args or chans:
            raise ScpiError(-108)
        if not self.scan:
            raise ScpiError(-221, "Settings conflict; no scan list")
        src, count = self.trig_source, self.trig_count
        if src == "BUS":
            raise ScpiError(-214)  # trigger deadlock: READ? cannot be used with the BUS source
        if src != "IMM" and src != "TIM" or math.isinf(count):
            return "", math.inf  # waits for a trigger (or sweeps) that never comes: no reply
        if count != 1 or src == "TIM":
            return self._sweeps(int(count), src == "TIM")
        return self._sweep()

    def _sweeps(self, count: int, timed: bool) -> tuple[str, float]:
        """``count`` sweeps through the scan list: every reading of each, one reply; sweeps of
        the TIMer source start ``TRIG:TIM`` apart (or back to back if a sweep takes longer)."""
        texts: list[str] = []
        ready = self.clock.now()
        for k in range(count):
            text, t = self._sweep()
            texts.append(text)
            ready = t if k == 0 else ready + max(self.trig_timer_s if timed else 0.0, t - self.clock.now())
        return ",".join(texts), ready

    def _sweep(self) -> tuple[str, float]:
        """One sweep through the scan list: its readings and when they are ready."""
        model = self.bench.model
        scan = tuple(self.scan)
        names, wired = self._wiring.get(scan) or self._wire(scan)
        nplc, integ, scan_s, counts = self._scan_figures()  # counts: the manual's bits per NPLC and range
        if len(wired) == len(names):  # every scanned channel is wired to a node
            vals = model.meter_read(wired, nplc, counts).tolist()
        else:
            wc = [c for c, n in zip(counts, names) if n in set(wired)]
            got = dict(zip(wired, model.meter_read(wired, nplc, wc).tolist())) if wired else {}
            vals = [got.get(n, 0.0) for n in names]
        dcv = self.dcv
        out = [9.9e37 if abs(v) > 1.2 * dcv[ch] else v for v, ch in zip(vals, scan)]  # overload
        if self.faults.fire("outlier", self.clock.now(), device=self.device):
            out[self.faults.randint(len(out))] = self.faults.outlier_v
        self.scans += 1
        self.integration_total_s += integ
        fmt = _READINGS.get(len(out))
        if fmt is None:
            fmt = _READINGS[len(out)] = ",".join([_READING] * len(out))
        return fmt % tuple(out), self.clock.now() + scan_s
