"""An emulated digipot board: the firmware's protocol logic with the real board's quirks.

:class:`BoardLogic` is the Python twin of ``drivers/firmware/parser.c`` (the same replies to
the same bytes; the shared byte-sequence tests check both). :class:`EmulatedBoard` puts it on
a modelled wire, backed by the one physical model (:class:`~simulator.breadboard.Breadboard`):

* a reset when the port opens (DTR), a boot time, then the ready line ``!RDY LNDP 1.0``;
  bytes that arrive while the board boots are lost, wipers go to the power-up code;
* a 64-byte receive ring: bytes that arrive while the firmware is busy (executing a command,
  sending its blocking reply) queue there, and the ones that find it full are lost
  (the next reply is then ``-- ER 02 OVERFLOW``);
* modelled time on the breadboard's virtual clock: bytes at the baud rate (10 bits a byte),
  a USB round-trip latency, command execution (X9C wipers step at ``x9c_step_s`` a tap).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from simulator.board_logic import FW_VERSION, BoardConfig, BoardLogic
from simulator.breadboard import Breadboard
from simulator.faults import FaultPlan


class _ModelBoardLogic(BoardLogic):
    """BoardLogic whose wipers are the breadboard model's digipots."""

    def __init__(self, cfg: BoardConfig, model: Breadboard) -> None:
        super().__init__(cfg)
        self.model = model
        self._edge = {int(ch): i for i, ch in enumerate(model.network.edge_channels)}
        self._switch_node = {k: n for n, k in model.release.switches.items()}
        self.taps_moved = 0

    def hw_switch(self, mask: int) -> None:
        self.model.set_switches({n: bool(mask >> k & 1) for k, n in self._switch_node.items()})

    def hw_set(self, ch: int, code: int) -> None:
        self.taps_moved += abs(code - self.codes[ch])
        self.codes[ch] = code
        e = self._edge.get(ch)
        if e is not None:
            self.model.set_code(e, code)

    def hw_read(self, ch: int) -> int:
        if self.cfg.readback and ch in self._edge:
            return int(self.model.codes[self._edge[ch]])  # the part's own register
        return self.codes[ch]


@dataclass(frozen=True)
class BoardTiming:
    """Modelled times of the board and its USB-serial link.

    Attributes
    ----------
    baud : int
        UART rate; a byte takes 10 bits (8N1).
    usb_rtt_s : float
        Round-trip latency the USB-serial bridge adds (half each way), s.
    boot_s : float
        From reset to the ready line (bootloader wait + X9C homing), s.
    parse_s : float
        Firmware time to check and parse one line, s.
    x9c_step_s : float
        One X9C up/down step (INC low + high), s.
    spi_write_s : float
        One SPI wiper write, s.
    """

    baud: int = 115200
    usb_rtt_s: float = 1e-3
    boot_s: float = 1.6
    parse_s: float = 1e-4
    x9c_step_s: float = 2e-6
    spi_write_s: float = 1e-5

    @property
    def byte_s(self) -> float:
        return 10.0 / self.baud


class EmulatedBoard:
    """The board on its wire: bytes in at modelled times, replies out at modelled times.

    Parameters
    ----------
    model : Breadboard
    faults : FaultPlan
    timing : BoardTiming
    """

    RX_RING = 64

    #: :class:`labnet.core.state.Stateful`: the wire counters (bytes each way, request lines,
    #: taps moved) and when the firmware is busy, booting and the host->board line free (s of
    #: modelled time). The protocol's sequence state is the present connection's (the driver
    #: syncs it when it connects), and the wipers are re-written on resume: neither is restored.
    STATE_SCHEMA: ClassVar[dict[str, Any]] = {"bytes_in": int, "bytes_out": int, "lines": int, "taps_moved": int,
                                              "busy_until": float, "booting_until": float, "wire_free": float}

    def state(self) -> dict[str, Any]:
        return {"bytes_in": self.bytes_in, "bytes_out": self.bytes_out, "lines": self.lines,
                "taps_moved": self.logic.taps_moved, "busy_until": self._busy_until,
                "booting_until": self._booting_until, "wire_free": self._wire_free}

    def restore(self, state: dict[str, Any]) -> None:
        self.bytes_in, self.bytes_out, self.lines = int(state["bytes_in"]), int(state["bytes_out"]), int(state["lines"])
        self.logic.taps_moved = int(state["taps_moved"])
        self._busy_until = float(state["busy_until"])
        self._booting_until = float(state["booting_until"])
        self._wire_free = float(state["wire_free"])

    def __init__(self, model: Breadboard, faults: FaultPlan | None = None, timing: BoardTiming | None = None) -> None:
        part = model.part
        family = "X9C" if part.interface == "updown" else "MCP41"
        n = max(model.network.edge_channels) + 1
        self.cfg = BoardConfig(family, n, part.max_code, part.power_up_code, model.release.n_switches)
        self.model = model
        self.clock = model.clock
        self.faults = faults or FaultPlan()
        self.timing = timing or BoardTiming()
        self.logic = _ModelBoardLogic(self.cfg, model)
        self._ring: list[tuple[float, int]] = []
        self._busy_until = 0.0
        self._booting_until = 0.0
        self._wire_free = 0.0  # when the host->board line is free again
        self.tx: list[tuple[float, bytes]] = []  # (time available to the host, bytes)
        self.bytes_in = 0
        self.bytes_out = 0
        self.lines = 0

    # ------------------------------------------------------------------ resets
    def power_on_reset(self, t: float | None = None) -> None:
        """Reset as DTR or a brown-out does: wipers to power-up, ready line after the boot time."""
        t = self.clock.now() if t is None else t
        self.model.reset()
        self.logic.reset()
        self._ring.clear()
        self.tx = [(a, b) for a, b in self.tx if a <= t]  # what was already in the host's buffer stays
        self._booting_until = t + self.timing.boot_s
        ready = self.logic.ready_line()
        self._busy_until = self._booting_until + len(ready) * self.timing.byte_s
        self._emit(self._busy_until, ready)

    def reset_now(self) -> None:
        """Fault hook: the board resets at the present modelled time."""
        self.power_on_reset()

    # ------------------------------------------------------------------ wire
    def _emit(self, t_sent: float, data: bytes) -> None:
        self.bytes_out += len(data)
        self.tx.append((t_sent + self.timing.usb_rtt_s / 2, data))

    def host_write(self, data: bytes, t: float) -> None:
        """The host wrote ``data`` at modelled time ``t``; deliver it byte by byte."""
        tm = self.timing
        buf = bytearray(data)
        if t + tm.usb_rtt_s / 2 < self._booting_until:  # the bootloader swallows it: no fault to inject
            self.bytes_in += len(buf)
            self._wire_free = max(self._wire_free, t + tm.usb_rtt_s / 2 + len(buf) * tm.byte_s)
            return
        if buf.endswith(b"\n") and self.faults.fire("reset", t, line=bytes(buf)):
            self.power_on_reset(t)
            return
        if buf and self.faults.fire("drop", t, line=bytes(buf)):
            del buf[self.faults.randint(len(buf))]
        start = max(t + tm.usb_rtt_s / 2, self._wire_free)
        if not self._ring and len(buf) <= self.RX_RING and start + tm.byte_s >= self._booting_until:
            self._deliver_fast(buf, start)
            return
        for i, b in enumerate(buf):
            ta = start + (i + 1) * tm.byte_s
            self._advance(ta)
            self.bytes_in += 1
            if ta < self._booting_until:
                continue  # the bootloader swallows it
            if len(self._ring) >= self.RX_RING:
                self.logic.overflow()
                continue
            self._ring.append((ta, b))
        self._wire_free = start + len(buf) * tm.byte_s
        self._advance(float("inf"))

    def _deliver_fast(self, data: bytearray, start: float) -> None:
        """``host_write``'s byte loop when no byte can be lost: the ring is empty, the data fits
        in it, and the boot is over before the first byte arrives. The firmware then takes the
        bytes in order; a line ends (and executes) at max(arrival of its newline, the end of the
        previous command) — exactly what the byte-by-byte loop computes, without the per-byte work."""
        tm = self.timing
        logic = self.logic
        n = len(data)
        self.bytes_in += n
        pos = 0
        while pos < n:
            k = data.find(b"\n", pos)
            if k < 0:
                logic.feed_segment(data[pos:])
                break
            if k > pos:
                logic.feed_segment(data[pos:k])
            ta = start + (k + 1) * tm.byte_s
            now = max(ta, self._busy_until)
            line = bytes(logic._line)
            moved0 = logic.taps_moved
            reply = logic.feed(0x0A)
            self._execute(line, reply, logic.taps_moved - moved0, now)
            pos = k + 1
        self._wire_free = start + n * tm.byte_s

    def _advance(self, t: float) -> None:
        """Let the firmware take bytes from the ring while it is free, up to time ``t``."""
        while self._ring:
            ta, b = self._ring[0]
            now = max(ta, self._busy_until)
            if now > t:
                return
            self._ring.pop(0)
            if b == 0x0A:
                line = bytes(self.logic._line)
                moved0 = self.logic.taps_moved
                reply = self.logic.feed(b)
                self._execute(line, reply, self.logic.taps_moved - moved0, now)
            else:
                self.logic.feed(b)

    def _execute(self, line: bytes, reply: bytes, moved: int, now: float) -> None:
        tm = self.timing
        self.lines += 1
        exec_s = tm.parse_s + (moved * tm.x9c_step_s if self.cfg.family == "X9C" else 0.0)
        sw = self.model.release.switch_part
        if sw is not None and line[3:4] == b"X" and reply[3:5] == b"OK":
            exec_s += sw.settle_s  # the firmware waits the switch's tON/tOFF before it replies
        if self.cfg.family != "X9C" and line[3:4] == b"W":
            exec_s += tm.spi_write_s * max(1, (len(line) - 12) // self.cfg.width)
        t_done = now + exec_s + len(reply) * tm.byte_s
        self._busy_until = t_done
        if self.faults.fire("garble", now, reply=reply):
            r = bytearray(reply)
            k = self.faults.randint(len(r) - 1)
            r[k] ^= 0x20 if r[k] != 0x0A else 0x01
            reply = bytes(r)
        if self.faults.fire("delay", now, reply=reply):
            t_done += self.faults.delay_s
        self._emit(t_done, reply)

    def host_read(self, size: int, timeout_s: float | None, until: bytes | None = None) -> bytes:
        """Block (in modelled time) like a pyserial read: up to ``size`` bytes or ``until``."""
        now = self.clock.now()
        deadline = float("inf") if timeout_s is None else now + timeout_s
        got = bytearray()
        t_last = now
        while self.tx and len(got) < size:
            ta, chunk = self.tx[0]
            if ta > deadline:
                break
            take = chunk[: size - len(got)]
            if until is not None:
                k = (bytes(got) + take).find(until)
                if k >= 0:
                    take = take[: k + len(until) - len(got)]
            got += take
            t_last = max(t_last, ta)
            rest = chunk[len(take):]
            if rest:
                self.tx[0] = (ta, rest)
            else:
                self.tx.pop(0)
            if until is not None and got.endswith(until):
                break
        done = len(got) >= size or (until is not None and got.endswith(until))
        end = t_last if done else deadline
        if end == float("inf"):
            raise RuntimeError("blocking read with no timeout and nothing to read (would hang forever)")
        self.clock.charge(end - now)
        return bytes(got)

    def in_waiting(self) -> int:
        now = self.clock.now()
        return sum(len(c) for t, c in self.tx if t <= now)

    def flush_input(self) -> None:
        """Drop what the host has received (pyserial ``reset_input_buffer``)."""
        now = self.clock.now()
        self.tx = [(t, c) for t, c in self.tx if t > now]


__all__ = ["FW_VERSION", "BoardConfig", "BoardLogic", "BoardTiming", "EmulatedBoard"]
