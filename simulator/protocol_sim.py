"""pyserial URL handler ``sim://<bench>[?option=value...]``: the emulated digipot board.

Registered by importing :mod:`simulator` (it appends ``"simulator"`` to
``serial.protocol_handler_packages``), after which ``serial.serial_for_url("sim://sim16")``
returns a :class:`Serial` — a real ``serial.SerialBase`` — whose bytes go to the
:class:`~simulator.board.EmulatedBoard` of the registered bench ``sim16``. Reads block in
*modelled* time (the bench's virtual clock), never in wall time.

Opening the port resets the board (DTR), as an Uno or Nano does.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import serial
from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from simulator.bench import SimBench, get_bench
from simulator.board import EmulatedBoard


class Serial(SerialBase):
    """A pyserial port onto an emulated board."""

    is_open: bool  # set by SerialBase.__init__

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # pyserial's signature
        self._bench: SimBench | None = None
        self._unplugged_until = -1.0
        super().__init__(*args, **kwargs)

    @property
    def bench(self) -> SimBench | None:
        """The simulated bench this port was opened onto (None before it was first opened)."""
        return self._bench

    # ------------------------------------------------------------------ pyserial API
    def open(self) -> None:
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise SerialException("Port is already open.")
        name = self.from_url(self.portstr)
        try:
            bench = self._bench = get_bench(name)
        except KeyError as exc:
            raise SerialException(f"could not open port {self.portstr}: {exc.args[0]}") from None
        if bench.clock.now() < self._unplugged_until:
            raise SerialException(f"could not open port {self.portstr}: device not present (unplugged)")
        self.is_open = True
        bench.board.power_on_reset()

    def from_url(self, url: str) -> str:
        """``sim://name?opt=v`` -> ``name``; unknown options are errors."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "sim" or not parts.netloc:
            raise SerialException(f"expected a URL of the form sim://<bench>, got {url!r}")
        for opt in urllib.parse.parse_qs(parts.query):
            raise SerialException(f"unknown option {opt!r} in {url!r}")
        return parts.netloc

    def close(self) -> None:
        self.is_open = False

    def _reconfigure_port(self) -> None:
        pass

    def _board(self) -> EmulatedBoard:
        if not self.is_open or self._bench is None:
            raise PortNotOpenError()
        now = self._bench.clock.now()
        if now < self._unplugged_until:
            self.is_open = False
            raise SerialException("device reports readiness to read but returned no data "
                                  "(device disconnected or multiple access on port?)")
        return self._bench.board

    def unplug(self, seconds: float) -> None:
        """Fault hook: the USB cable is pulled for ``seconds`` of modelled time."""
        self._unplugged_until = self._bench.clock.now() + seconds if self._bench else seconds

    def _check_unplug_fault(self) -> None:
        b = self._bench
        if b is not None and b.faults.fire("unplug", b.clock.now()):
            self.unplug(b.faults.unplug_s)

    @property
    def in_waiting(self) -> int:
        return self._board().in_waiting()

    def write(self, data: bytes) -> int:
        board = self._board()
        self._check_unplug_fault()
        board = self._board()
        data = bytes(data)
        board.host_write(data, board.clock.now())
        return len(data)

    def read(self, size: int = 1) -> bytes:
        return self._board().host_read(size, self._timeout)

    def read_until(self, expected: bytes = serial.LF, size: int | None = None) -> bytes:
        return self._board().host_read(size if size is not None else 1 << 30, self._timeout, until=expected)

    def reset_input_buffer(self) -> None:
        self._board().flush_input()

    def reset_output_buffer(self) -> None:
        self._board()

    def flush(self) -> None:
        self._board()

    def _update_dtr_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_break_state(self) -> None:
        pass
