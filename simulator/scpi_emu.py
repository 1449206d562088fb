"""Emulated SCPI instruments on the one physical model: DAQ970A/34970A, E36312A, Keithley 2450.

Each answers the SCPI subset the drivers use, with the real instruments' manners:

* short and long mnemonics (``VOLT`` / ``VOLTAGE``), optional nodes (``[SENSe:]``,
  ``[SOURce:]`` where the instrument has them), several commands per message (``;`` and
  ``;:``), channel lists ``(@101:105,107)``;
* an error queue of at most 20 entries with real SCPI error numbers: ``-113,"Undefined
  header"``, ``-102,"Syntax error"``, ``-108,"Parameter not allowed"``, ``-109,"Missing
  parameter"``, ``-222,"Data out of range"``, ``-221,"Settings conflict"``, ``-410,"Query
  INTERRUPTED"``, ``-420,"Query UNTERMINATED"``, ``-350,"Queue overflow"``;
* modelled time on the bench's virtual clock: each message costs ``write_s`` (USB-TMC
  transfer and parsing), each reply ``read_s``; ``READ?`` is ready after the scan time
  (channels x (NPLC x 1 PLC + switching) + trigger overhead).

The DAQ scans in ascending channel order whatever order the list was written in.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

PLC_S = 1 / 60
NPLC_VALUES = (0.02, 0.2, 1.0, 2.0, 10.0, 20.0, 100.0, 200.0)
LONG_FORMS = {
    "VOLTAGE", "CONFIGURE", "MEASURE", "SOURCE", "SENSE", "OUTPUT", "CURRENT", "ROUTE", "CHANNEL", "DELAY", "SYSTEM",
    "ERROR", "FUNCTION", "RANGE", "ILIMIT", "NPLCYCLES", "TRIGGER", "COUNT", "FORMAT", "READING", "SMODE", "LEVEL",
    "IMMEDIATE", "AMPLITUDE", "STATE", "NEXT",
}
ERRORS = {
    -102: "Syntax error", -108: "Parameter not allowed", -109: "Missing parameter", -113: "Undefined header",
    -221: "Settings conflict", -222: "Data out of range", -350: "Queue overflow", -410: "Query INTERRUPTED",
    -420: "Query UNTERMINATED",
}


_READING = "%+.8E"  # one reading on the wire
_READINGS: dict[int, str] = {}  # n -> the format of a scan of n readings


class ScpiError(Exception):
    def __init__(self, code: int, text: str | None = None) -> None:
        self.code = code
        self.text = text or ERRORS[code]
        super().__init__(f"{code},\"{self.text}\"")


class VisaTimeout(Exception):
    """No reply within the resource's timeout."""


#: Parsed commands are kept per emulator, at most this many (a handful of fixed strings plus
#: setpoints that change from state to state; the cache is emptied when full).
PARSE_CACHE_SIZE = 1024


def short_form(m: str) -> str:
    """SCPI short form of one mnemonic (``VOLTAGE`` -> ``VOLT``, ``DELAY`` -> ``DEL``); raises
    -113 for a mnemonic that is neither a short nor a known long form."""
    s = _SHORT.get(m)
    if s is None:
        s = _short_form(m)
        if len(_SHORT) < PARSE_CACHE_SIZE:
            _SHORT[m] = s
    return s


_SHORT: dict[str, str] = {}


def _short_form(m: str) -> str:
    m = m.upper()
    core = m.rstrip("0123456789") if not m.startswith("*") else m
    if core.startswith("*") or len(core) <= 4:
        s = core
    else:
        s = core[:4] if core[3] not in "AEIOU" else core[:3]
        if core != s and core not in LONG_FORMS:
            raise ScpiError(-113)
    return s


def parse_channels(text: str) -> list[int]:
    """``(@101:103,105)`` -> ``[101, 102, 103, 105]``; raises -102 on bad syntax."""
    m = re.fullmatch(r"\(@([0-9:,\s]+)\)", text.strip())
    if not m:
        raise ScpiError(-102)
    out: list[int] = []
    for part in m.group(1).split(","):
        a, _, b = part.strip().partition(":")
        if not a.isdigit() or (b and not b.isdigit()):
            raise ScpiError(-102)
        lo, hi = int(a), int(b or a)
        if hi < lo:
            raise ScpiError(-222)
        out += list(range(lo, hi + 1))
    return out


def split_args(text: str) -> tuple[list[str], list[int] | None]:
    """Arguments of one command: plain values and an optional channel list."""
    chans = None
    if text.count("(@") > 1 or ("(@" in text and not re.search(r"\(@[^)]*\)", text)):
        raise ScpiError(-102)
    m = re.search(r"\(@[^)]*\)", text)
    if m:
        chans = parse_channels(m.group(0))
        text = (text[: m.start()] + text[m.end():]).strip().strip(",").strip()
    args = [a.strip() for a in text.split(",")] if text.strip() else []
    if any(a == "" for a in args):
        raise ScpiError(-102)
    return args, chans


def number(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        raise ScpiError(-102) from None


@dataclass(frozen=True)
class VisaTiming:
    """Modelled times of one instrument's link (s): a written message, a reply read."""

    write_s: float = 3e-4
    read_s: float = 5e-4


class ScpiEmulator:
    """Base: error queue, output queue, message parsing, common commands."""

    idn_model = "instrument"
    manufacturer = "Keysight Technologies"
    optional_roots: tuple[str, ...] = ()
    #: :class:`labnet.core.state.Stateful`: the message counters. Settings (levels, outputs,
    #: scan list, ranges) are set again by the drivers on resume; the error and output queues
    #: are empty at a checkpoint (a complete step read every reply and checked the errors).
    STATE_SCHEMA: ClassVar[dict[str, Any]] = {"n_queries": int, "n_writes": int}

    def __init__(self, bench: Any, device: str, prefix: str = "", timing: VisaTiming | None = None) -> None:
        self.bench = bench
        self.device = device
        self.prefix = prefix
        self.clock = bench.clock
        self.faults = bench.faults
        self.timing = timing or VisaTiming()
        self.error_queue: list[tuple[int, str]] = []
        self._out: list[tuple[float, bytes]] = []
        self.messages: deque[str] = deque(maxlen=256)  # the latest messages received, for tests and campaigns
        self.n_queries = 0  # messages with a query in them
        self.n_writes = 0  # messages without
        self._parsed: dict[str, tuple[Any, Any]] = {}
        self.handlers: dict[tuple[str, bool], Callable[[list[str], list[int] | None], str | None]] = {
            ("*IDN", True): lambda a, c: f"{self.manufacturer},{self.idn_model},SIM-{bench.name}-{device},1.0",
            ("*RST", False): lambda a, c: self.rst(),
            ("*CLS", False): lambda a, c: self.error_queue.clear(),
            ("*OPC", True): lambda a, c: "1",
            ("*WAI", False): lambda a, c: None,
            ("SYST:ERR", True): lambda a, c: self.pop_error(),
        }

    # ------------------------------------------------------------------ run state
    def state(self) -> dict[str, Any]:
        return {"n_queries": self.n_queries, "n_writes": self.n_writes}

    def restore(self, state: dict[str, Any]) -> None:
        self.n_queries, self.n_writes = int(state["n_queries"]), int(state["n_writes"])

    # ------------------------------------------------------------------ error queue
    def push_error(self, code: int, text: str | None = None) -> None:
        """Fault hook too: put an error on the queue (the 20th entry becomes -350)."""
        if len(self.error_queue) >= 20:
            self.error_queue[-1] = (-350, ERRORS[-350])
            return
        self.error_queue.append((code, text or ERRORS.get(code, "Error")))

    def pop_error(self) -> str:
        if not self.error_queue:
            return '+0,"No error"'
        code, text = self.error_queue.pop(0)
        return f"{code:+d},\"{text}\""

    def rst(self) -> None:
        pass

    # ------------------------------------------------------------------ messages
    def write(self, data: bytes) -> None:
        """A message arrived (termination included or not)."""
        now = self.clock.now()
        self.clock.charge(self.timing.write_s)
        msg = data.decode("ascii", "replace").strip()
        self.messages.append(msg)
        if "?" in msg:
            self.n_queries += 1
        else:
            self.n_writes += 1
        if self._out:
            self._out.clear()
            self.push_error(-410)
        if self.faults.fire("scpi_error", now, device=self.device, message=msg):
            self.push_error(*self.faults.scpi_error)
        replies: list[str] = []
        ready = self.clock.now()
        for part in msg.split(";"):
            part = part.strip()
            if not part:
                continue
            try:
                parsed = self._parsed.get(part)
                if parsed is not None and type(parsed[0]) is tuple and type(parsed[1]) is tuple:
                    handler = self.handlers.get(parsed[0])  # the common case of _one, inline
                    if handler is None:
                        raise ScpiError(-113)
                    plain, chans = parsed[1]
                    r = handler(list(plain), None if chans is None else list(chans))
                    if not parsed[0][1]:
                        r = None
                else:
                    r = self._one(part)
            except ScpiError as e:
                self.push_error(e.code, e.text)
                continue
            if r is not None:
                if isinstance(r, tuple):
                    text, t_ready = r
                    if t_ready > ready:
                        ready = t_ready
                else:
                    text = r
                replies.append(text)
        if replies:
            if self.faults.fire("visa_timeout", now, device=self.device, message=msg):
                return
            self._out.append((ready, (";".join(replies) + "\n").encode("ascii")))

    def _one(self, cmd: str) -> Any:
        parsed = self._parsed.get(cmd)
        if parsed is None:
            parsed = self._parse(cmd)
            if len(self._parsed) >= PARSE_CACHE_SIZE:
                self._parsed.clear()
            self._parsed[cmd] = parsed
        key, args = parsed
        if isinstance(key, ScpiError):
            raise ScpiError(key.code, key.text)
        handler = self.handlers.get(key)
        if handler is None:
            raise ScpiError(-113)
        if isinstance(args, ScpiError):
            raise ScpiError(args.code, args.text)
        plain, chans = args
        r = handler(list(plain), None if chans is None else list(chans))
        return r if key[1] else None

    def _parse(self, cmd: str) -> tuple[Any, Any]:
        """``cmd`` -> (handler key, (arguments, channels)); a ScpiError in place of either part
        that does not parse (raised by ``_one`` in the order the instrument checks: the header,
        then whether it is known, then the arguments). Pure function of the text: cached."""
        head, _, rest = cmd.partition(" ")
        query = head.endswith("?")
        head = head.rstrip("?").lstrip(":")
        if not head:
            return ScpiError(-102), None
        try:
            path = [short_form(m) for m in head.split(":")]
        except ScpiError as e:
            return e, None
        while len(path) > 1 and path[0] in self.optional_roots:
            path = path[1:]
        key = (":".join(path), query)
        try:
            args: Any = split_args(rest)
        except ScpiError as e:
            args = e
        return key, args

    def read(self, timeout_s: float) -> bytes:
        """The host reads a reply; raises VisaTimeout (and queues -420) if none comes in time."""
        now = self.clock.now()
        if not self._out or self._out[0][0] > now + timeout_s:
            self.clock.charge(timeout_s)
            if not self._out:
                self.push_error(-420)
            raise VisaTimeout(f"{self.device}: no reply within {timeout_s} s")
        t, data = self._out.pop(0)
        self.clock.charge(max(0.0, t - now) + self.timing.read_s)
        return data


def _need(args: list[str], n: int) -> None:
    if len(args) < n:
        raise ScpiError(-109)
    if len(args) > n:
        raise ScpiError(-108)


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
                 switch_s: float = 3e-4, trigger_s: float = 5e-4, model: str = "DAQ970A") -> None:
        super().__init__(bench, device, prefix, timing)
        self.idn_model = model
        self.switch_s = switch_s
        self.trigger_s = trigger_s
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
        })
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
        self._figures: tuple[list[int], tuple[float, float, float]] | None = None
        self.dcv: dict[int, float] = {}
        self.nplc: dict[int, float] = {}
        self.autozero: dict[int, str] = {}
        self.delay: dict[int, float] = {}
        self.scan: list[int] = []

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
        for ch in chans:
            self.dcv[ch] = rng
            self.nplc[ch] = 1.0
            self.autozero[ch] = "ON"
        self.scan = sorted(chans)

    def _nplc(self, args: list[str], chans: list[int] | None) -> None:
        self._figures = None
        _need(args, 1)
        v = number(args[0])
        if v not in NPLC_VALUES:
            raise ScpiError(-222)
        for ch in self._chans(chans):
            self.nplc[ch] = v

    def _zero(self, args: list[str], chans: list[int] | None) -> None:
        self._figures = None
        _need(args, 1)
        mode = args[0].upper()
        mode = {"0": "OFF", "1": "ON"}.get(mode, mode)
        if mode not in ("OFF", "ONCE", "ON"):
            raise ScpiError(-222)
        for ch in self._chans(chans):
            self.autozero[ch] = mode

    def _delay(self, args: list[str], chans: list[int] | None) -> None:
        self._figures = None
        _need(args, 1)
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

    def _scan_figures(self) -> tuple[float, float, float]:
        """(lowest NPLC, integration time, scan time) of the present scan list, kept until the
        configuration changes (every configuring command and ``*RST`` drop them)."""
        c = self._figures
        if c is None or c[0] is not self.scan:
            nplc = min(self.nplc.get(ch, 1.0) for ch in self.scan)
            integ = sum(self.nplc.get(ch, 1.0) * PLC_S for ch in self.scan)
            c = self._figures = (self.scan, (nplc, integ, self.scan_time_s()))
        return c[1]

    def scan_time_s(self) -> float:
        """Modelled duration of one scan (s)."""
        t = self.trigger_s
        for ch in self.scan:
            n = self.nplc.get(ch, 1.0) * PLC_S
            t += self.switch_s + self.delay.get(ch, 0.0) + (2 * n if self.autozero.get(ch) == "ON" else n)
        return t

    def _read(self, args: list[str], chans: list[int] | None) -> tuple[str, float]:
        if args or chans:
            raise ScpiError(-108)
        if not self.scan:
            raise ScpiError(-221, "Settings conflict; no scan list")
        model = self.bench.model
        scan = tuple(self.scan)
        names, wired = self._wiring.get(scan) or self._wire(scan)
        nplc, integ, scan_s = self._scan_figures()
        if len(wired) == len(names):  # every scanned channel is wired to a node
            vals = model.meter_read(wired, nplc).tolist()
        else:
            got = dict(zip(wired, model.meter_read(wired, nplc).tolist())) if wired else {}
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

    def __init__(self, bench: Any, device: str, prefix: str = "", timing: VisaTiming | None = None) -> None:
        super().__init__(bench, device, prefix, timing)
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
        _need(args, 1)
        v = number(args[0])
        chans = self._chans(chans)
        if any(not 0 <= v <= self.max_v[ch] for ch in chans):
            raise ScpiError(-222)
        for ch in chans:
            self.level[ch] = v
        self._publish()

    def _curr(self, args: list[str], chans: list[int] | None) -> None:
        _need(args, 1)
        v = number(args[0])
        if not 0 <= v <= 5.15:
            raise ScpiError(-222)
        for ch in self._chans(chans):
            self.ilim[ch] = v

    def _outp(self, args: list[str], chans: list[int] | None) -> None:
        _need(args, 1)
        s = args[0].upper()
        if s not in ("ON", "OFF", "1", "0"):
            raise ScpiError(-222)
        for ch in self._chans(chans):
            self.on[ch] = s in ("ON", "1")
        self._publish()


class Keithley2450Emulator(_SourceEmulator):
    idn_model = "MODEL 2450"
    manufacturer = "KEITHLEY INSTRUMENTS"
    max_v = {1: 210.0}

    def __init__(self, bench: Any, device: str, prefix: str = "", timing: VisaTiming | None = None) -> None:
        super().__init__(bench, device, prefix, timing)
        self.rst()
        self.handlers.update({
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
        })

    def rst(self) -> None:
        self.range_v = 20.0
        self.smod = "NORM"
        super().rst()

    def _onoff(self, a: list[str]) -> bool:
        _need(a, 1)
        if a[0].upper() not in ("ON", "OFF", "1", "0"):
            raise ScpiError(-222)
        return a[0].upper() in ("ON", "1")

    def _func(self, a: list[str], c: list[int] | None) -> None:
        _need(a, 1)
        if a[0].upper().strip('"') not in ("VOLT", "VOLTAGE"):
            raise ScpiError(-221, "Settings conflict; only voltage sourcing is emulated")

    def _sens(self, a: list[str], c: list[int] | None) -> None:
        _need(a, 1)
        if a[0].upper().strip('"') not in ("CURR", "CURRENT", "CURR:DC"):
            raise ScpiError(-221, "Settings conflict; only current sensing is emulated")

    def _volt(self, a: list[str], c: list[int] | None) -> None:
        _need(a, 1)
        v = number(a[0])
        if abs(v) > 1.05 * self.range_v:
            raise ScpiError(-222)
        self.level[1] = v
        self._publish()

    def _range(self, a: list[str], c: list[int] | None) -> None:
        _need(a, 1)
        v = number(a[0])
        ranges = (0.02, 0.2, 2.0, 20.0, 200.0)
        fit = [r for r in ranges if r >= abs(v)]
        if not fit:
            raise ScpiError(-222)
        self.range_v = fit[0]

    def _ilim(self, a: list[str], c: list[int] | None) -> None:
        _need(a, 1)
        v = number(a[0])
        if not 1e-9 <= v <= 1.05:
            raise ScpiError(-222)
        self.ilim[1] = v

    def _smod(self, a: list[str], c: list[int] | None) -> None:
        _need(a, 1)
        s = a[0].upper()
        if s not in ("HIMP", "NORM", "ZERO", "GUAR"):
            raise ScpiError(-222)
        self.smod = s

    def _outp(self, a: list[str], c: list[int] | None) -> None:
        self.on[1] = self._onoff(a)
        self._publish()


EMULATORS: dict[str, Callable[..., ScpiEmulator]] = {
    "DAQ970A": lambda bench, device, prefix, **o: DAQ970AEmulator(bench, device, prefix, model="DAQ970A", **o),
    "34970A": lambda bench, device, prefix, **o: DAQ970AEmulator(bench, device, prefix, model="34970A", **o),
    "E36312A": E36312AEmulator,
    "Keithley2450": Keithley2450Emulator,
}

#: The class each model's emulator is (what a checkpoint's layout names).
EMULATOR_CLASSES: dict[str, type[ScpiEmulator]] = {"DAQ970A": DAQ970AEmulator, "34970A": DAQ970AEmulator,
                                                   "E36312A": E36312AEmulator, "Keithley2450": Keithley2450Emulator}


def make_emulator(model: str, bench: Any, device: str, prefix: str = "", **options: Any) -> ScpiEmulator:
    try:
        factory = EMULATORS[model]
    except KeyError:
        raise ValueError(f"no emulator for instrument model {model!r} (known: {', '.join(EMULATORS)})") from None
    return factory(bench, device, prefix, **options)
