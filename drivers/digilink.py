"""The digipot board driver's link: one request/reply exchange with bounded retries, stale
replies skipped, board resets recovered (re-sync, codes re-written from the host record and
verified), a vanished port re-opened, and the multi-channel ``W``/``R`` spans.

:class:`BoardLink` is a base of :class:`drivers.digipot.DigipotBoard`, which sets the
attributes below in its ``__init__``. Events go to the ``drivers.digipot`` logger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from drivers import digiproto as dp
from drivers.events import EventCallback, emit_event
from labnet.core.errors import InstrumentError

log = logging.getLogger("drivers.digipot")

try:  # pyserial is a dependency, but the driver only needs its exception type
    from serial import SerialException
except ImportError:  # pragma: no cover
    SerialException = OSError


class BoardError(InstrumentError):
    """The board answered with an error code that retrying cannot fix (syntax, range)."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


class _Retry(Exception):
    """An exchange failed in a way a retransmission can fix."""


class _Reset(Exception):
    """The board has reset since the last exchange."""


class BoardLink:
    """Exchanges with the board (see the module docstring)."""

    port: Any
    timeout_s: float
    ready_timeout_s: float
    retries: int
    backoff_s: float
    reconnects: int
    sleep: Callable[[float], None]
    on_event: EventCallback | None
    seq: int
    n_channels: int
    width: int
    record: list[int] | None
    n_switches: int
    switch_mask: int
    stats: dict[str, int]
    _recovering: bool
    _board_crc: int
    #: The last ready line the board sent (``!RDY LNDP 1.0*KK``), None until one arrived.
    ready_line: str | None = None

    # ------------------------------------------------------------------ events
    def _event(self, kind: str, **detail: Any) -> None:
        emit_event(log, self.on_event, "digipots", kind, detail)

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
                    self.ready_line = line.decode("ascii", "replace").strip()
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
                    if self.n_switches:  # a reset opened every switch: close the recorded ones again
                        self._write_switches(self.switch_mask)
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

    def _write_switches(self, mask: int) -> None:
        """``X``: every switch at once (bit k: switch k closed), acknowledged with the mask."""
        fr = self._exchange("X", f"{mask:02X}")
        if fr.fields != ("X", f"{mask:02X}"):
            raise InstrumentError(f"digipot board: unexpected reply to X: {fr.raw!r}")

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
