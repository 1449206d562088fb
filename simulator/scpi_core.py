"""The common part of every emulated SCPI instrument: mnemonics, channel lists, the error
queue, message parsing, modelled link time, ``*IDN?``/``*RST``/``*CLS``/``*OPC?``.

The instruments themselves are in :mod:`simulator.daq_emu` and :mod:`simulator.source_emu`;
:mod:`simulator.scpi_emu` names them by model.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

#: One power-line cycle at the default 60 Hz mains (s); a bench at 50 Hz has 1/50 s
#: (:func:`plc_s`, the rig's ``[rig] mains_hz``).
PLC_S = 1 / 60
#: Largest channel number an emulated channel list may name (``sccc``: slot 1-9, channel 01-99);
#: a range endpoint beyond it is refused before the range is expanded.
MAX_CHANNEL = 999
NPLC_VALUES = (0.02, 0.2, 1.0, 2.0, 10.0, 20.0, 100.0, 200.0)
LONG_FORMS = {
    "VOLTAGE", "CONFIGURE", "MEASURE", "SOURCE", "SENSE", "OUTPUT", "CURRENT", "ROUTE", "CHANNEL", "DELAY", "SYSTEM",
    "ERROR", "FUNCTION", "RANGE", "ILIMIT", "NPLCYCLES", "TRIGGER", "COUNT", "FORMAT", "READING", "SMODE", "LEVEL",
    "IMMEDIATE", "AMPLITUDE", "STATE", "NEXT", "TIMER", "SAMPLE",
}
ERRORS = {
    -100: "Command error", -101: "Invalid character", -102: "Syntax error", -108: "Parameter not allowed",
    -109: "Missing parameter", -113: "Undefined header",
    -211: "Trigger ignored", -214: "Trigger deadlock", -221: "Settings conflict", -222: "Data out of range",
    -224: "Illegal parameter value", -285: "Program syntax error", -350: "Queue overflow", -410: "Query INTERRUPTED",
    -420: "Query UNTERMINATED",
}



def plc_s(mains_hz: float) -> float:
    """One power-line cycle (s) at ``mains_hz`` (50 or 60 Hz): NPLC x this is the integration time."""
    return 1.0 / float(mains_hz)


def is_command_error(code: int) -> bool:
    """SCPI-99 / IEEE 488.2 §11.5.1.1.4: -100..-199 are *command errors* (the parser could not
    read the header or its data). The parser then discards the rest of the program message
    (the message units after the one in error are not executed)."""
    return -199 <= code <= -100


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
_HEADER_CHARS = re.compile(r"\*?[A-Za-z][A-Za-z0-9]*(:[A-Za-z][A-Za-z0-9]*)*")


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
    """``(@101:103,105)`` -> ``[101, 102, 103, 105]``; raises -102 on bad syntax, -222 for a
    channel number above :data:`MAX_CHANNEL` (checked on the endpoints, before a range is
    expanded: ``(@101:250000000)`` is refused at once, not enumerated)."""
    m = re.fullmatch(r"\(@([0-9:,\s]+)\)", text.strip())
    if not m:
        raise ScpiError(-102)
    out: list[int] = []
    for part in m.group(1).split(","):
        a, _, b = part.strip().partition(":")
        if not a.isdigit() or (b and not b.isdigit()):
            raise ScpiError(-102)
        if len(a) > 9 or len(b) > 9:
            raise ScpiError(-222, "Data out of range; channel number too large")
        lo, hi = int(a), int(b or a)
        if hi > MAX_CHANNEL or lo > MAX_CHANNEL:
            raise ScpiError(-222, f"Data out of range; channel number above {MAX_CHANNEL}")
        if hi < lo:
            raise ScpiError(-222)
        if len(out) + hi - lo >= MAX_CHANNEL:
            raise ScpiError(-222, "Data out of range; too many channels")
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


def choice(s: str, allowed: dict[str, str]) -> str:
    """A discrete (character) parameter: its canonical form from ``allowed`` (upper-cased
    spelling -> canonical); SCPI-99 -224 "Illegal parameter value" (an exact value from a list
    of possibles was expected) otherwise."""
    v = allowed.get(s.strip().upper())
    if v is None:
        raise ScpiError(-224)
    return v


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
        #: (mnemonic, is a query) -> handler(arguments, channels): a query's reply (or (reply, time
        #: ready)); what a command's handler returns is ignored
        self.handlers: dict[tuple[str, bool], Callable[[list[str], list[int] | None], object]] = {
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
                if is_command_error(e.code):
                    break  # IEEE 488.2: the rest of the program message is discarded
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
        if not _HEADER_CHARS.fullmatch(head):  # SCPI-99 -101: e.g. "a header containing an ampersand, SETUP&"
            return ScpiError(-101), None
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


def need(args: list[str], n: int) -> None:
    if len(args) < n:
        raise ScpiError(-109)
    if len(args) > n:
        raise ScpiError(-108)
