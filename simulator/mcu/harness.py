"""The emulated MCU as a process: start/stop ``lndp_mcu``, read its side channel.

:class:`McuProcess` runs the real firmware binary in simavr (``lndp_mcu.c``). The board's
UART is a pty (:attr:`McuProcess.pty`): open it with pyserial as you would ``/dev/ttyACM0``
(opening it resets the MCU, as on an Uno). Wiper positions, EEPROM stores and datasheet
violations of the part models arrive on the side channel; :meth:`McuProcess.barrier` waits
until every event the harness produced so far has been read, and returns them.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from simulator.mcu.build import FirmwareBuild, build_harness
from simulator.mcu.wiring import WIRING, n_chips

F_CPU = 16_000_000


@dataclass(frozen=True)
class TimingCheck:
    """One datasheet limit a part model checks, with what the firmware achieved.

    ``kind`` "min": ``worst`` is the smallest measured value (ns), which must be >= ``limit``;
    "max": the largest measured (Hz), which must be <= ``limit``. ``count``: times checked.
    """

    name: str
    source: str
    kind: str
    count: int
    worst: float
    limit: float

    @property
    def margin(self) -> float:
        """worst - limit for a minimum, limit - worst for a maximum (>= 0: met)."""
        return self.worst - self.limit if self.kind == "min" else self.limit - self.worst


@dataclass(frozen=True)
class McuEvent:
    """A side-channel line: ``kind`` WIPER/STORE/SWITCH/RESET/ERR, ``fields`` the rest split on spaces."""

    kind: str
    fields: tuple[str, ...]
    text: str


class McuError(RuntimeError):
    """The harness died or did not answer."""


class McuProcess:
    """The firmware in an emulated ATmega328P with its digipots.

    Parameters
    ----------
    firmware : FirmwareBuild
    stored_code : int
        X9C: the EEPROM's content at the first power-up (default: the power-up code).
    """

    def __init__(self, firmware: FirmwareBuild, stored_code: int | None = None) -> None:
        self.firmware = firmware
        fam = firmware.family
        wiring = WIRING[fam]
        stored = firmware.power_up_code if stored_code is None else stored_code
        exe = build_harness()
        args = [str(exe), str(firmware.elf), fam, str(firmware.channels), str(firmware.max_code), str(stored),
                *wiring.harness_args(n_chips(fam, firmware.channels), firmware.switches)]
        self.log_path = Path(exe).with_name(f"lndp_mcu-{id(self):x}.log")
        self._log: IO[bytes] = open(self.log_path, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     text=True, bufsize=1)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().split()
        if first[:1] != ["PTY"]:
            self.close()
            raise McuError(f"harness did not start: {first!r} (log {self.log_path})")
        self.pty = first[1]
        self._events: queue.Queue[McuEvent] = queue.Queue()
        self._pongs: dict[int, tuple[int, int]] = {}
        self._stats: list[TimingCheck] = []
        self._cv = threading.Condition()
        self._k = 0
        self.resets = 0
        self.errors: list[str] = []
        self.cycles = 0
        self.busy_ns = 0
        self._reader = threading.Thread(target=self._read, name="lndp_mcu-reader", daemon=True)
        self._reader.start()
        self._send("EXPLICIT")  # resets come from dtr_reset() (the port's open), never missed

    # ------------------------------------------------------------------ side channel
    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            text = line.strip()
            kind, _, rest = text.partition(" ")
            if kind == "PONG":
                k, cyc, busy = rest.split()
                with self._cv:
                    self._pongs[int(k)] = (int(cyc), int(busy))
                    self._cv.notify_all()
            elif kind == "STAT":
                f = rest.split("|")
                with self._cv:
                    self._stats.append(TimingCheck(f[0], f[1], f[2], int(f[3]), float(f[4]), float(f[5])))
            elif kind == "RESET":
                with self._cv:
                    self.resets += 1
                    self._cv.notify_all()
                self._events.put(McuEvent(kind, tuple(rest.split()), text))
            else:
                if kind == "ERR":
                    self.errors.append(rest)
                self._events.put(McuEvent(kind, tuple(rest.split()), text))
        with self._cv:
            self._cv.notify_all()

    def _send(self, line: str) -> None:
        if self.proc.poll() is not None or self.proc.stdin is None:
            raise McuError(f"the emulated MCU has exited (code {self.proc.returncode}; log {self.log_path})")
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def barrier(self, timeout_s: float = 5.0) -> list[McuEvent]:
        """Every event up to now; also updates :attr:`cycles` (MCU cycles simulated) and
        :attr:`busy_ns` (wall time the harness spent simulating)."""
        with self._cv:
            self._k += 1
            k = self._k
        self._send(f"PING {k}")
        deadline = time.monotonic() + timeout_s
        with self._cv:
            while k not in self._pongs:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise McuError(f"the emulated MCU did not answer (log {self.log_path})")
                self._cv.wait(left)
            self.cycles, self.busy_ns = self._pongs.pop(k)
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def wait_reset(self, after: int, timeout_s: float = 5.0) -> bool:
        """Wait until more than ``after`` resets were seen (the port was opened)."""
        deadline = time.monotonic() + timeout_s
        with self._cv:
            while self.resets <= after:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return False
                self._cv.wait(left)
        return True

    def dtr_reset(self, timeout_s: float = 5.0) -> None:
        """Reset the MCU as the Uno's DTR line does when the host opens the port; returns
        once the harness has reset it (the firmware then boots and sends its ready line)."""
        n = self.resets
        self._send("DTR")
        if not self.wait_reset(n, timeout_s):
            raise McuError(f"the emulated MCU did not reset (log {self.log_path})")

    @property
    def mcu_seconds(self) -> float:
        """MCU time simulated so far (s), as of the last barrier."""
        return self.cycles / F_CPU

    def timing_checks(self) -> list[TimingCheck]:
        """Every datasheet check of the part models, with the worst value measured so far."""
        with self._cv:
            self._stats = []
        self._send("STATS")
        self.barrier()
        with self._cv:
            return list(self._stats)

    def power_cycle(self) -> None:
        """Power off and on: the parts recall (X9C EEPROM) or go to their POR value, the MCU boots."""
        self._send("POWER")

    def close(self) -> None:
        """Stop the harness (QUIT, then terminate if it does not exit)."""
        try:
            if self.proc.poll() is None and self.proc.stdin is not None:
                self.proc.stdin.write("QUIT\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=3)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()
        if self.proc.returncode == 0 and not self.errors:
            self.log_path.unlink(missing_ok=True)  # kept when something went wrong

    def describe(self) -> dict[str, object]:
        """What a session header says about the board: the firmware binary and the emulator."""
        fw = self.firmware
        return {"binary": fw.elf.name, "sha256": fw.sha256, "family": fw.family, "channels": fw.channels,
                "max_code": fw.max_code, "power_up_code": fw.power_up_code,
                "emulator": "simavr (ATmega328P, 16 MHz) with pin-level part models (simulator/mcu)"}
