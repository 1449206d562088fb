"""pyserial URL handler ``simavr://<bench>[?family=MCP42]``: the real firmware on an emulated MCU.

``serial.serial_for_url("simavr://sim16fw")`` (after ``import simulator``, which registers
the ``simulator`` handler package) starts the firmware binary of the registered bench
``sim16fw`` in simavr (:class:`~simulator.mcu.board.McuBoard`, once per bench) and returns a
*real* ``serial.Serial`` opened on the emulator's pty. Opening it resets the MCU (DTR, as on
an Uno). Reads block in wall time, as on a real port; after each read the board's wipers
are applied to the bench's breadboard model and the modelled clock is charged.
"""

from __future__ import annotations

import atexit
import urllib.parse
from typing import Any

import serial
from serial.serialutil import SerialException

from simulator.bench import get_bench
from simulator.mcu.board import McuBoard

_BOARDS: dict[str, McuBoard] = {}


def board_for(name: str, family: str | None = None) -> McuBoard:
    """The :class:`McuBoard` of bench ``name`` (started on first use; a new bench of the
    same name gets a new one)."""
    bench = get_bench(name)
    b = _BOARDS.get(name)
    if b is not None and b.model is bench.model:
        return b
    if b is not None:
        b.close()
    b = _BOARDS[name] = McuBoard(bench.model, family=family)
    return b


def close_all() -> None:
    """Stop every emulated MCU (also run at interpreter exit)."""
    for b in _BOARDS.values():
        b.close()
    _BOARDS.clear()


atexit.register(close_all)


class Serial(serial.Serial):
    """A real pyserial port on the emulated board's pty."""

    _mcu_board: McuBoard | None = None

    def open(self) -> None:
        if self._mcu_board is None:
            parts = urllib.parse.urlsplit(str(self._port))
            if parts.scheme != "simavr" or not parts.netloc:
                raise SerialException(f"expected simavr://<bench>, got {self._port!r}")
            opts = urllib.parse.parse_qs(parts.query)
            for opt in opts:
                if opt != "family":
                    raise SerialException(f"unknown option {opt!r} in {self._port!r}")
            try:
                self._mcu_board = board_for(parts.netloc, opts.get("family", [None])[0])
            except KeyError as exc:
                raise SerialException(f"could not open port {self._port}: {exc.args[0]}") from None
            self.port = self._mcu_board.pty
        super().open()
        try:
            self._mcu_board.mcu.dtr_reset()  # DTR: an Uno resets when its port opens
        except RuntimeError as exc:
            raise SerialException(str(exc)) from None
        self._mcu_board.sync(0)

    def _after(self, got: bytes, want_line: bool) -> bytes:
        board = self._mcu_board
        if board is not None:
            complete = got.endswith(b"\n") if want_line else len(got) > 0
            board.sync(got.count(b"\n"), 0.0 if complete or self._timeout is None else float(self._timeout))
        return got

    def read(self, size: int = 1) -> bytes:
        return self._after(super().read(size), False)

    def read_until(self, expected: bytes = serial.LF, size: int | None = None) -> bytes:
        return self._after(super().read_until(expected, size), True)

    def firmware_info(self) -> dict[str, Any]:
        """The firmware binary in the loop (its build hash) and the emulator."""
        return self._mcu_board.describe() if self._mcu_board is not None else {}
