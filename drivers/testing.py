"""Message-level test doubles (PyMeasure ``expected_protocol`` spirit): scripted transports that
assert every byte a driver writes and feed it the replies — valid, erroneous, garbled or none.

Serial::

    port = ScriptedSerial([(b"00 I*68\\n", b"00 OK I ...*KK\\n"), ...], pending=b"!RDY LNDP 1.0*80\\n")
    board = DigipotBoard(port, sleep=lambda s: None).connect()
    port.assert_done()

VISA::

    with expected_protocol(DAQ970A, [("*IDN?", "Keysight Technologies,DAQ970A,MY1,A.03"), ("*CLS", None), ...]) as m:
        m.configure(["101", "102"])

A reply of ``None`` means "no reply": a serial read times out (returns what it has), a VISA
read raises pyvisa's timeout error. A VISA reply wrapped in :class:`Late` comes too late: the
read times out, then the reply arrives and waits to be read — unless a device clear drops it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class ScriptedSerial:
    """A pyserial-like port that expects exact writes and answers each with scripted bytes.

    Parameters
    ----------
    script : sequence of (expected write, reply bytes or None)
    pending : bytes
        Bytes already waiting to be read when the port is used (e.g. a ready line).
    """

    def __init__(self, script: Sequence[tuple[bytes, bytes | None]], pending: bytes = b"") -> None:
        self.script = list(script)
        self.buf = bytearray(pending)
        self.written: list[bytes] = []
        self.timeout: float | None = 1.0
        self.is_open = True
        self.reads_timed_out = 0
        self.fail_writes = 0  # raise SerialException on this many next writes (a vanished port)
        self.reopened = 0

    def write(self, data: bytes) -> int:
        from serial import SerialException

        if self.fail_writes:
            self.fail_writes -= 1
            self.is_open = False
            raise SerialException("device disconnected")
        data = bytes(data)
        self.written.append(data)
        if not self.script:
            raise AssertionError(f"unexpected write {data!r}: the script is exhausted")
        want, reply = self.script.pop(0)
        if data != want:
            raise AssertionError(f"wrote {data!r}, expected {want!r}")
        if reply is not None:
            self.buf += reply
        return len(data)

    def read_until(self, expected: bytes = b"\n", size: int | None = None) -> bytes:
        k = self.buf.find(expected)
        if k < 0:
            out = bytes(self.buf)
            self.buf.clear()
            self.reads_timed_out += 1
            return out
        out = bytes(self.buf[: k + len(expected)])
        del self.buf[: k + len(expected)]
        return out

    def read(self, size: int = 1) -> bytes:
        out = bytes(self.buf[:size])
        del self.buf[:size]
        return out

    @property
    def in_waiting(self) -> int:
        return len(self.buf)

    def reset_input_buffer(self) -> None:
        self.buf.clear()

    def open(self) -> None:
        self.is_open = True
        self.reopened += 1

    def close(self) -> None:
        self.is_open = False

    def queue(self, data: bytes) -> None:
        """Bytes arrive unsolicited (a ready line after a reset, a late reply)."""
        self.buf += data

    def assert_done(self) -> None:
        assert not self.script, f"expected writes never made: {[w for w, _ in self.script]}"


class Late(str):
    """A scripted VISA reply that arrives after the read waiting for it has timed out."""


class ScriptedResource:
    """A pyvisa-resource-like object: exact messages in, scripted replies out."""

    def __init__(self, script: Sequence[tuple[str, str | None]]) -> None:
        self.script = list(script)
        self.read_termination: str | None = None
        self.write_termination: str | None = None
        self.timeout: float = 2000.0
        self.written: list[str] = []
        self._replies: list[str] = []
        self._late: list[str] = []
        self.closed = False

    def write(self, message: str) -> int:
        self.written.append(message)
        if not self.script:
            raise AssertionError(f"unexpected message {message!r}: the script is exhausted")
        want, reply = self.script.pop(0)
        if message != want:
            raise AssertionError(f"wrote {message!r}, expected {want!r}")
        if isinstance(reply, Late):
            self._late.append(str(reply))
        elif reply is not None:
            self._replies.append(reply)
        return len(message)

    def read(self) -> str:
        from pyvisa import constants
        from pyvisa.errors import VisaIOError

        if not self._replies:
            self._replies += self._late  # a late reply arrives once the read has given up on it
            self._late.clear()
            raise VisaIOError(constants.VI_ERROR_TMO)
        return self._replies.pop(0)

    def query(self, message: str) -> str:
        self.write(message)
        return self.read()

    def clear(self) -> None:
        """Device clear: pending replies are dropped (recorded as a ``"<clear>"`` message)."""
        self.written.append("<clear>")
        self._replies.clear()
        self._late.clear()

    def close(self) -> None:
        self.closed = True

    def assert_done(self) -> None:
        assert not self.script, f"expected messages never sent: {[w for w, _ in self.script]}"


@contextmanager
def expected_protocol(cls: type, script: Sequence[tuple[str, str | None]], **kwargs: Any) -> Iterator[Any]:
    """Instantiate ``cls(resource, **kwargs)`` on a scripted resource; on exit assert that
    every scripted message was sent, in order, and nothing else."""
    res = ScriptedResource(script)
    inst = cls(res, **kwargs)
    yield inst
    res.assert_done()
