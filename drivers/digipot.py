"""Host driver of the digipot board (``drivers/PROTOCOL.md``): the :class:`~labnet.bench.roles.Digipots` role.

It talks to any pyserial-like port (``write``, ``read_until``, ``reset_input_buffer``,
``close``; ``open`` for reconnecting) and

* checks every argument before a byte is sent (channels, codes, the part's range);
* writes many channels per line (contiguous spans, never more than the board's 64-byte
  receive buffer per line, one line in flight at a time), so a full 16-channel update is one
  round trip;
* keeps the host's record of every code; each ``W`` ack carries the CRC of the board's whole
  code table, so a board that lost its codes (reset, brown-out) is noticed without an extra
  round trip;
* retries a timed-out, garbled or out-of-sequence exchange a bounded number of times with
  exponential backoff (the board replays, not re-executes, a retransmitted request);
* on a board reset (ready line, ``NOSYNC`` reply, code-table or readback mismatch) re-syncs,
  re-writes every code from the host's record and verifies it by readback;
* on a vanished port (``SerialException``) closes and re-opens it a bounded number of times.

Every retry and recovery is logged (``logging.getLogger("drivers.digipot")``, tagged with its
event kind) and passed to ``on_event`` as a dict, which a session connects to its
``events.jsonl`` (:mod:`drivers.events`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from drivers import digiproto as dp
from drivers.digilink import BoardError, BoardLink, SerialException
from drivers.events import EventCallback
from drivers.runstats import StatsState
from labnet.core.errors import InstrumentError, LimitError

F = TypeVar("F", bound=Callable[..., Any])


def _port_guard(method: F) -> F:
    """Let no raw port error (``serial.SerialException`` such as ``PortNotOpenError``, or
    ``OSError``) escape a public method, e.g. one raised while a recovery was under way: it
    becomes an :class:`InstrumentError` naming the board."""

    @functools.wraps(method)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (SerialException, OSError) as exc:
            raise InstrumentError(f"digipot board: port error during {method.__name__}: "
                                  f"{type(exc).__name__}: {exc}") from exc

    return guarded  # type: ignore[return-value]


class DigipotBoard(StatsState, BoardLink):
    """The digipot board on a serial port.

    Parameters
    ----------
    port : pyserial-like
        An open port (``serial.Serial``, ``serial.serial_for_url(...)``). Its ``timeout``
        is set to ``timeout_s``.
    timeout_s : float
        Longest wait for one reply (s).
    ready_timeout_s : float
        Longest wait for the ready line after the port opens (s); 0 skips the wait.
    retries : int
        Retransmissions of one request before giving up.
    backoff_s : float
        Wait before the first retry (s); doubles with every further retry.
    reconnects : int
        Attempts to re-open a vanished port.
    sleep : callable
        ``sleep(seconds)``; the simulator passes its virtual clock's.
    on_event : callable, optional
        Called with a dict for every retry, recovery and reconnect.
    """

    def __init__(self, port: Any, *, timeout_s: float = 0.5, ready_timeout_s: float = 3.0, retries: int = 4,
                 backoff_s: float = 0.02, reconnects: int = 3, sleep: Callable[[float], None] = time.sleep,
                 on_event: EventCallback | None = None) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.ready_timeout_s = ready_timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.reconnects = reconnects
        self.sleep = sleep
        self.on_event = on_event
        self.seq = 0
        self.info: dict[str, Any] = {}
        self.n_channels = 0
        self.max_code = 0
        self.width = 2
        self.record: list[int] | None = None
        self.n_switches = 0
        #: host record of the analog switches (bit k: switch k closed)
        self.switch_mask = 0
        self.stats = {"exchanges": 0, "bytes_out": 0, "bytes_in": 0, "retries": 0, "recoveries": 0, "reconnects": 0}
        self._recovering = False
        try:
            port.timeout = timeout_s
        except AttributeError:
            pass

    # ------------------------------------------------------------------ run state
    #: :class:`labnet.core.state.Stateful`: the run's exchange statistics (exchanges, bytes each
    #: way, retries, recoveries, reconnects). The sequence number belongs to the present
    #: connection (``connect`` syncs the board to it) and the host record of the codes is
    #: re-written on resume (``Rig.restore_codes``): neither is restored.
    def state_name(self) -> str:
        return "digipot board"

    # ------------------------------------------------------------------ connecting
    @_port_guard
    def connect(self) -> DigipotBoard:
        """Wait for the ready line, identify the board, sync sequence numbers, read all codes."""
        self._wait_ready()
        reply = self._exchange("I")
        f = reply.fields[1:]
        if reply.fields[:1] != ("I",) or len(f) not in (7, 8) or f[0] != dp.FIRMWARE:
            raise InstrumentError(f"digipot board: unexpected identification {reply.raw!r}")
        try:
            n, mx = int(f[3]), int(f[4])
            sw = int(f[7]) if len(f) == 8 else 0  # the switch field only on boards with switches
        except ValueError:
            raise InstrumentError(f"digipot board: unexpected identification {reply.raw!r}") from None
        self.info = {"model": f"{f[0]} digipot board", "firmware": f[1], "family": f[2], "channels": n,
                     "max_code": mx, "readback": f[5] == "1", "nonvolatile": f[6] == "1"}
        if sw:
            self.info["switches"] = sw
        self.n_channels, self.max_code, self.width, self.n_switches = n, mx, dp.code_width(mx), sw
        self._exchange("Y")
        self.record = self._read_span_all()
        if sw:  # a known state: every switch open
            self._write_switches(0)
            self.switch_mask = 0
        return self

    # ------------------------------------------------------------------ Switches role
    @_port_guard
    def set_switches(self, closed: Mapping[int, bool]) -> None:
        """Close (True) or open (False) the given switch channels, the others as they are:
        one ``X`` exchange, only if something changes (the board waits out the switching time)."""
        if self.record is None:
            raise InstrumentError("digipot board: not connected (call connect())")
        mask = self.switch_mask
        for k, c in closed.items():
            if not 0 <= int(k) < self.n_switches:
                raise LimitError(f"switch channel {k} outside 0..{self.n_switches - 1} (the board has "
                                 f"{self.n_switches} switches)")
            mask = mask | (1 << int(k)) if c else mask & ~(1 << int(k))
        if mask != self.switch_mask:
            self._write_switches(mask)
            self.switch_mask = mask

    def open_switches(self) -> None:
        """Every switch open (sent even if the record says so: the safe state trusts nothing)."""
        if self.n_switches:
            self._guarded_open()

    @_port_guard
    def _guarded_open(self) -> None:
        self._write_switches(0)
        self.switch_mask = 0

    # ------------------------------------------------------------------ Digipots role
    def _check(self, channels: Sequence[int], codes: Sequence[int] | None = None) -> tuple[list[int], list[int]]:
        if self.record is None:
            raise InstrumentError("digipot board: not connected (call connect())")
        chs = [int(c) for c in channels]
        if len(set(chs)) != len(chs):
            raise ValueError(f"digipot channels repeated: {chs}")
        for c in chs:
            if not 0 <= c < self.n_channels:
                raise LimitError(f"digipot channel {c} outside 0..{self.n_channels - 1}")
        cds: list[int] = []
        if codes is not None:
            if len(codes) != len(chs):
                raise ValueError(f"{len(chs)} channels but {len(codes)} codes")
            for c, v in zip(chs, codes):
                iv = int(v)
                if iv != v or not 0 <= iv <= self.max_code:
                    raise LimitError(f"digipot channel {c}: code {v} outside 0..{self.max_code}")
                cds.append(iv)
        return chs, cds

    @_port_guard
    def write_codes(self, channels: Sequence[int], codes: Sequence[int]) -> None:
        """Set ``codes[i]`` on ``channels[i]``: one ``W`` line per contiguous span of changed
        channels (a gap of unchanged channels shorter than a span header is filled from the
        host record instead), so 16 channels take one round trip."""
        chs, cds = self._check(channels, codes)
        assert self.record is not None
        new = list(self.record)
        for c, v in zip(chs, cds):
            new[c] = v
        todo = sorted(c for c in chs if self.record[c] != new[c])
        if not todo:
            return
        spans: list[list[int]] = [[todo[0], todo[0]]]
        gap_cost = len("SS W FF *KK\n") // self.width  # an extra line costs this many codes
        for c in todo[1:]:
            if c - spans[-1][1] - 1 <= gap_cost:
                spans[-1][1] = c
            else:
                spans.append([c, c])
        for a, b in spans:
            self._write_span(a, new[a:b + 1])
            self.record[a:b + 1] = new[a:b + 1]
        if self._board_crc != dp.table_crc(self.record):
            self._recover("code-table checksum in the W ack differs from the host record", "W")

    _board_crc = -1

    @_port_guard
    def read_codes(self, channels: Sequence[int]) -> np.ndarray:
        """Codes of ``channels`` as the board reports them (the part's register where it can be
        read back, the firmware's record otherwise). A difference from the host record means
        the board lost its codes: they are restored from the host record and verified."""
        chs, _ = self._check(channels)
        if not chs:
            return np.zeros(0, dtype=np.int64)
        lo, hi = min(chs), max(chs)
        got = self._read_span(lo, hi - lo + 1)
        assert self.record is not None
        if any(got[c - lo] != self.record[c] for c in chs):
            self._recover("readback differs from the host record", "R")
            return np.array([self.record[c] for c in chs], dtype=np.int64)
        return np.array([got[c - lo] for c in chs], dtype=np.int64)

    @_port_guard
    def adopt_codes(self) -> np.ndarray:
        """Read every channel and take the board's codes as the host record (no recovery)."""
        self.record = self._read_span_all()
        return np.array(self.record, dtype=np.int64)

    @_port_guard
    def store(self, channels: Sequence[int]) -> None:
        """Store the present codes of ``channels`` in the parts' non-volatile memory.

        Explicit only: training never calls it (an X9C EEPROM survives ~100 000 stores).
        Raises BoardError (``NOTSUP``) on volatile parts.
        """
        chs, _ = self._check(channels)
        if not chs:
            return
        lo, hi = min(chs), max(chs)
        self._exchange("S", f"{lo:02X}", f"{hi - lo + 1:02X}", dp.STORE_TOKEN)

    def identity(self) -> dict[str, Any]:
        return dict(self.info)

    @_port_guard
    def close(self) -> None:
        self.port.close()


__all__ = ["BoardError", "DigipotBoard"]
