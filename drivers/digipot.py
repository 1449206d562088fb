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

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from drivers import digiproto as dp
from drivers.events import EventCallback, emit_event
from labnet.core.errors import InstrumentError, LimitError

log = logging.getLogger("drivers.digipot")

try:  # pyserial is a dependency, but the driver only needs its exception type
    from serial import SerialException
except ImportError:  # pragma: no cover
    SerialException = OSError  # type: ignore[misc,assignment]


class BoardError(InstrumentError):
    """The board answered with an error code that retrying cannot fix (syntax, range)."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


class _Retry(Exception):
    """An exchange failed in a way a retransmission can fix."""


class _Reset(Exception):
    """The board has reset since the last exchange."""


class DigipotBoard:
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
    STATE_SCHEMA: ClassVar[dict[str, Any]] = {"stats": dict}

    def state(self) -> dict[str, Any]:
        return {"stats": dict(self.stats)}

    def restore(self, state: dict[str, Any]) -> None:
        stats = state["stats"]
        if set(stats) != set(self.stats):
            raise ValueError(f"digipot board state: statistics {sorted(stats)}, expected {sorted(self.stats)}")
        self.stats = {k: int(stats[k]) for k in self.stats}

    # ------------------------------------------------------------------ events
    def _event(self, kind: str, **detail: Any) -> None:
        emit_event(log, self.on_event, "digipots", kind, detail)

    # ------------------------------------------------------------------ connecting
    def connect(self) -> DigipotBoard:
        """Wait for the ready line, identify the board, sync sequence numbers, read all codes."""
        self._wait_ready()
        reply = self._exchange("I")
        f = reply.fields[1:]
        if reply.fields[:1] != ("I",) or len(f) != 7 or f[0] != dp.FIRMWARE:
            raise InstrumentError(f"digipot board: unexpected identification {reply.raw!r}")
        try:
            n, mx = int(f[3]), int(f[4])
        except ValueError:
            raise InstrumentError(f"digipot board: unexpected identification {reply.raw!r}") from None
        self.info = {"model": f"{f[0]} digipot board", "firmware": f[1], "family": f[2], "channels": n,
                     "max_code": mx, "readback": f[5] == "1", "nonvolatile": f[6] == "1"}
        self.n_channels, self.max_code, self.width = n, mx, dp.code_width(mx)
        self._exchange("Y")
        self.record = self._read_span_all()
        return self

    def _wait_ready(self) -> None:
        """Read lines until the ready line or ``ready_timeout_s`` (a board that did not reset
        on open sends none; that is fine)."""
        if self.ready_timeout_s <= 0:
            return
        old = self.port.timeout
        self.port.timeout = self.ready_timeout_s
        try:
            while True:
                line = self.port.read_until(b"\n")
                if not line.endswith(b"\n"):
                    return
                if line.startswith(dp.READY_PREFIX):
                    return
        finally:
            self.port.timeout = old

    # ------------------------------------------------------------------ exchanges
    def _send_once(self, line: bytes, seq: int) -> dp.Frame:
        self.port.write(line)
        self.stats["bytes_out"] += len(line)
        while True:
            got = self.port.read_until(b"\n")
            self.stats["bytes_in"] += len(got)
            if not got.endswith(b"\n"):
                raise _Retry(f"timeout after {self.timeout_s} s" + (f" (partial {got!r})" if got else ""))
            if got.startswith(dp.READY_PREFIX):
                raise _Reset("ready line received")
            try:
                fr = dp.parse_line(got)
            except dp.FrameError as exc:
                raise _Retry(f"garbled reply: {exc}") from None
            if fr.kind == "RDY":
                raise _Reset("ready line received")
            if fr.seq is None:
                if fr.kind == "ER" and fr.error_code in (dp.E_CRC, dp.E_OVERFLOW):
                    raise _Retry(f"board reports {dp.ERROR_NAMES[fr.error_code]} error on our request")
                raise _Retry(f"unexpected reply {got!r}")
            if fr.seq != seq:
                self._event("stale_reply", expected=f"{seq:02X}", got=got.decode("ascii", "replace").strip())
                continue
            return fr

    def _exchange(self, cmd: str, *args: str) -> dp.Frame:
        """One request/reply with bounded retries; handles resets and vanished ports."""
        line, line_seq = dp.request(self.seq, cmd, *args), self.seq
        if len(line) > dp.MAX_LINE:
            raise ValueError(f"request {cmd} {' '.join(args)} exceeds the board's {dp.MAX_LINE}-byte buffer")
        last = ""
        need_sync = False
        attempt = -1
        restored = 0  # recoveries during this exchange: each gives the request a fresh retry budget
        while attempt < self.retries:
            attempt += 1
            if attempt:
                self.stats["retries"] += 1
                wait = self.backoff_s * 2 ** (attempt - 1)
                self._event("retry", command=cmd, attempt=attempt, reason=last, backoff_s=wait)
                self.sleep(wait)
                if self._reset_input() and not self._recovering:
                    self._recover("ready line among discarded input", cmd)
                    attempt, restored = self._fresh_budget(restored, cmd)
            try:
                if need_sync:
                    self._sync()
                    need_sync = False
                self.stats["exchanges"] += 1
                if line_seq != self.seq:
                    line, line_seq = dp.request(self.seq, cmd, *args), self.seq
                fr = self._send_once(line, self.seq)
            except _Retry as exc:
                last = str(exc)
                continue
            except _Reset as exc:
                last = str(exc)
                if self._recovering:
                    raise
                self._recover(last, cmd)
                attempt, restored = self._fresh_budget(restored, cmd)
                continue
            except (SerialException, OSError) as exc:
                last = f"port error: {exc}"
                if self._recovering:
                    raise _Reset(last) from None
                self._reconnect(last)
                attempt, restored = self._fresh_budget(restored, cmd)
                continue
            if fr.kind == "OK":
                self.seq = (self.seq + 1) & 0xFF
                return fr
            code = fr.error_code
            name = dp.ERROR_NAMES.get(code, str(code))
            if code == dp.E_NOSYNC:
                last = "board reports NOSYNC (it has reset)"
                if self._recovering:
                    raise _Reset(last)
                self._recover(last, cmd)
                attempt, restored = self._fresh_budget(restored, cmd)
                continue
            if code == dp.E_SEQ:
                last = "board reports SEQ (out of sequence)"
                self.seq = (self.seq + 1) & 0xFF
                need_sync = True
                continue
            self.seq = (self.seq + 1) & 0xFF
            raise BoardError(code, f"digipot board: {cmd} refused with error {code:02d} {name} ({fr.raw!r})")
        self.seq = (self.seq + 1) & 0xFF  # never reuse the number of a request that may have run
        raise InstrumentError(f"digipot board: no valid reply to {cmd} after {self.retries + 1} attempts ({last})")

    max_restores = 3

    def _fresh_budget(self, restored: int, cmd: str) -> tuple[int, int]:
        """After a successful recovery the interrupted request gets its retries again, at most
        ``max_restores`` times per request (a board that keeps resetting ends in an error)."""
        if restored + 1 > self.max_restores:
            raise InstrumentError(f"digipot board: {cmd} interrupted by {restored + 1} resets or port losses in a row")
        return 0, restored + 1

    def _reset_input(self) -> bool:
        """Discard pending input (late or garbled replies); True if a ready line was among it."""
        try:
            n = self.port.in_waiting
            junk = self.port.read(n) if n else b""
            self.stats["bytes_in"] += len(junk)
        except (SerialException, OSError, AttributeError):
            return False
        return dp.READY_PREFIX in junk

    def _sync(self) -> None:
        """``Y``: the board takes our present sequence number as its last one."""
        fr = self._send_once(dp.request(self.seq, "Y"), self.seq)
        if fr.kind != "OK":
            raise _Retry(f"sync refused: {fr.raw!r}")
        self.seq = (self.seq + 1) & 0xFF

    def _recover(self, reason: str, during: str) -> None:
        """The board reset: sync, re-write every code from the host's record, verify by readback.

        Tried ``retries + 1`` times (a board can reset again while it is being restored)."""
        self.stats["recoveries"] += 1
        self._event("board_reset", reason=reason, during=during)
        if self.record is None:  # not connected yet: nothing to restore
            self._wait_ready()
            return
        self._recovering = True
        try:
            for attempt in range(self.retries + 1):
                try:
                    self._wait_ready()
                    self._reset_input()
                    self._exchange("Y")
                    self._write_span(0, list(self.record))
                    back = self._read_span_all()
                except _Reset as exc:
                    self._event("recovery_interrupted", attempt=attempt, reason=str(exc))
                    continue
                if back != self.record:
                    raise InstrumentError(f"digipot board: codes after recovery {back} differ from the host record "
                                          f"{self.record}")
                self._event("recovered", codes=len(self.record))
                return
            raise InstrumentError(f"digipot board: could not restore the codes after a reset ({reason})")
        finally:
            self._recovering = False

    def _reconnect(self, reason: str) -> None:
        self._event("port_lost", reason=reason)
        for attempt in range(1, self.reconnects + 1):
            self.stats["reconnects"] += 1
            self.sleep(self.backoff_s * 2 ** attempt * 10)
            try:
                self.port.close()
                self.port.open()
            except (SerialException, OSError) as exc:
                self._event("reconnect_failed", attempt=attempt, reason=str(exc))
                continue
            self._event("reconnected", attempt=attempt)
            try:
                self._recover("port re-opened (the board resets on open)", "reconnect")
            except (SerialException, OSError) as exc:
                self._event("reconnect_failed", attempt=attempt, reason=str(exc))
                continue
            return
        raise InstrumentError(f"digipot board: port lost and {self.reconnects} reconnect attempts failed ({reason})")

    # ------------------------------------------------------------------ spans
    def _write_span(self, first: int, codes: list[int]) -> None:
        per = dp.max_codes_per_line(self.width)
        for i in range(0, len(codes), per):
            chunk = codes[i:i + per]
            fr = self._exchange("W", f"{first + i:02X}", dp.pack_codes(chunk, self.width))
            if len(fr.fields) != 3 or fr.fields[0] != "W":
                raise InstrumentError(f"digipot board: unexpected reply to W: {fr.raw!r}")
            if int(fr.fields[1], 16) != len(chunk):
                raise InstrumentError(f"digipot board: W acknowledged {fr.fields[1]} codes, sent {len(chunk)}")
            self._board_crc = int(fr.fields[2], 16)

    def _read_span(self, first: int, count: int) -> list[int]:
        per = dp.max_codes_per_line(self.width)
        out: list[int] = []
        for i in range(0, count, per):
            n = min(per, count - i)
            fr = self._exchange("R", f"{first + i:02X}", f"{n:02X}")
            try:
                if len(fr.fields) != 2 or fr.fields[0] != "R":
                    raise ValueError
                got = dp.unpack_codes(fr.fields[1], self.width)
                if len(got) != n:
                    raise ValueError
            except ValueError:
                raise InstrumentError(f"digipot board: unexpected reply to R: {fr.raw!r}") from None
            out += got
        return out

    def _read_span_all(self) -> list[int]:
        return self._read_span(0, self.n_channels)

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

    def adopt_codes(self) -> np.ndarray:
        """Read every channel and take the board's codes as the host record (no recovery)."""
        self.record = self._read_span_all()
        return np.array(self.record, dtype=np.int64)

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

    def close(self) -> None:
        self.port.close()
