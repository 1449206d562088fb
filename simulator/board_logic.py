"""The digipot board's firmware logic, hardware-free: the Python twin of
``drivers/firmware/parser.c`` (the same replies to the same bytes; the shared byte-sequence
tests check both). :mod:`simulator.board` puts it on a modelled wire.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers import digiproto as dp

FW_VERSION = "1.0"


@dataclass(frozen=True)
class BoardConfig:
    """What the firmware was built for.

    Attributes
    ----------
    family : str
        ``"X9C"`` (up/down, no readback, non-volatile) or ``"MCP41"``/``"MCP42"`` (SPI, readback).
    n_channels : int
    max_code : int
    power_up_code : int
    n_switches : int
        Analog switch channels (``X`` command); 0: none (the ``I`` reply then has no field for them).
    """

    family: str
    n_channels: int
    max_code: int
    power_up_code: int
    n_switches: int = 0

    @property
    def readback(self) -> bool:
        return self.family != "X9C"

    @property
    def nonvolatile(self) -> bool:
        return self.family == "X9C"

    @property
    def width(self) -> int:
        return dp.code_width(self.max_code)


def _is_hex(s: str) -> bool:
    return len(s) > 0 and not s.strip("0123456789ABCDEF")  # nothing left: every character is a digit


class BoardLogic:
    """The firmware's command handling, hardware-free: one request line in, one reply line out.

    ``codes`` is the firmware's record of every wiper (what it last set; after a reset the
    power-up code). ``hw_set``/``hw_read`` are overridden to reach a physical model.
    """

    def __init__(self, cfg: BoardConfig) -> None:
        self.cfg = cfg
        self.codes = [cfg.power_up_code] * cfg.n_channels
        self.switches = 0  # bit k: switch k closed
        self.synced = False
        self.last_seq = 0
        self.last_req_crc = -1
        self.last_reply = b""
        self.stored: list[int] = []  # channels stored (STORE), for inspection
        self._line = bytearray()
        self._overflow = False

    def feed(self, byte: int) -> bytes:
        """One received byte; the reply when it completes a line, else ``b""`` (as ``lndp_feed``)."""
        if byte != 0x0A:
            if len(self._line) < dp.MAX_LINE:
                self._line.append(byte)
            else:
                self._overflow = True
            return b""
        line, over = bytes(self._line).rstrip(b"\r"), self._overflow
        self._line.clear()
        self._overflow = False
        return self.handle(line, over)

    def feed_segment(self, data: bytes | bytearray) -> None:
        """Several received bytes, none of them ``\\n``: ``feed`` of each, at once."""
        room = dp.MAX_LINE - len(self._line)
        if room > 0:
            self._line += data[:room]
        if len(data) > room:
            self._overflow = True

    def overflow(self) -> None:
        """The receive ring overflowed: the line being received is incomplete."""
        self._overflow = True

    # hardware hooks (the firmware's hw_* functions)
    def hw_set(self, ch: int, code: int) -> None:
        self.codes[ch] = code

    def hw_read(self, ch: int) -> int:
        return self.codes[ch]

    def hw_store(self, ch: int) -> None:
        self.stored.append(ch)

    def hw_switch(self, mask: int) -> None:
        """Set every switch (bit k: switch k closed)."""

    def reset(self) -> None:
        self.codes = [self.cfg.power_up_code] * self.cfg.n_channels
        self.switches = 0
        self.synced = False
        self.last_seq = 0
        self.last_req_crc = -1
        self.last_reply = b""
        self._line = bytearray()
        self._overflow = False

    def ready_line(self) -> bytes:
        return dp.seal(f"!RDY {dp.FIRMWARE} {FW_VERSION}")

    @staticmethod
    def _err(seq: str, code: int) -> bytes:
        return dp.seal(f"{seq} ER {code:02d} {dp.ERROR_NAMES[code]}")

    def handle(self, line: bytes, overflow: bool = False) -> bytes:
        """Reply to one request line (without its ``\\n``); ``overflow``: bytes of it were lost."""
        if overflow or len(line) + 1 > dp.MAX_LINE:
            return self._err("--", dp.E_OVERFLOW)
        star = line.rfind(b"*")
        if star < 0 or len(line) != star + 3:
            return self._err("--", dp.E_CRC)
        body = line[:star]
        try:
            kk = line[star + 1:].decode("ascii")
            text = body.decode("ascii")
        except UnicodeDecodeError:
            return self._err("--", dp.E_CRC)
        if not _is_hex(kk) or int(kk, 16) != dp.crc8(body):
            return self._err("--", dp.E_CRC)
        req_crc = int(kk, 16)
        if (len(text) < 4 or text[2] != " " or not _is_hex(text[:2]) or (len(text) > 4 and text[4] != " ")
                or len(text) == 5):  # "SS C " : a trailing space is an empty field
            return self._err("--", dp.E_SYNTAX)
        sseq, cmd = text[:2], text[3]
        seq = int(sseq, 16)
        args = text[5:].split(" ") if len(text) > 5 else []
        if cmd == "I":
            if args:
                return self._err(sseq, dp.E_SYNTAX)
            c = self.cfg
            sw = f" {c.n_switches}" if c.n_switches else ""
            return dp.seal(f"{sseq} OK I {dp.FIRMWARE} {FW_VERSION} {c.family} {c.n_channels} {c.max_code} "
                           f"{int(c.readback)} {int(c.nonvolatile)}{sw}")
        if cmd == "Y":
            if args:
                return self._err(sseq, dp.E_SYNTAX)
            self.synced = True
            self.last_seq = seq
            self.last_req_crc = req_crc
            self.last_reply = dp.seal(f"{sseq} OK Y")
            return self.last_reply
        if not self.synced:
            return self._err(sseq, dp.E_NOSYNC)
        if seq == self.last_seq:
            if req_crc == self.last_req_crc:
                return self.last_reply  # a retransmission: replay, do not execute again
            return self._err(sseq, dp.E_SEQ)
        if seq != (self.last_seq + 1) & 0xFF:
            return self._err(sseq, dp.E_SEQ)
        reply = self._execute(sseq, cmd, args)
        self.last_seq = seq
        self.last_req_crc = req_crc
        self.last_reply = reply
        return reply

    def _span(self, sseq: str, first: str, count: int) -> tuple[int, bytes | None]:
        if not (len(first) == 2 and _is_hex(first)):
            return 0, self._err(sseq, dp.E_SYNTAX)
        f = int(first, 16)
        if count < 1 or f + count > self.cfg.n_channels:
            return f, self._err(sseq, dp.E_CHANNEL)
        return f, None

    def _execute(self, sseq: str, cmd: str, args: list[str]) -> bytes:
        w = self.cfg.width
        if cmd == "W":
            if len(args) != 2 or not _is_hex(args[1]) or len(args[1]) % w:
                return self._err(sseq, dp.E_SYNTAX)
            codes = dp.unpack_codes(args[1], w)
            f, err = self._span(sseq, args[0], len(codes))
            if err:
                return err
            if any(c > self.cfg.max_code for c in codes):
                return self._err(sseq, dp.E_CODE)
            for i, c in enumerate(codes):
                self.hw_set(f + i, c)
            return dp.seal(f"{sseq} OK W {len(codes):02X} {dp.table_crc(self.codes):02X}")
        if cmd in "RS" and len(cmd) == 1:
            want = 3 if cmd == "S" else 2
            if len(args) != want or not (len(args[1]) == 2 and _is_hex(args[1])):
                return self._err(sseq, dp.E_SYNTAX)
            if cmd == "S" and args[2] != dp.STORE_TOKEN:
                return self._err(sseq, dp.E_SYNTAX)
            n = int(args[1], 16)
            if cmd == "R" and n > dp.max_codes_per_line(w):
                return self._err(sseq, dp.E_CHANNEL)
            f, err = self._span(sseq, args[0], n)
            if err:
                return err
            if cmd == "S":
                if not self.cfg.nonvolatile:
                    return self._err(sseq, dp.E_NOTSUP)
                for ch in range(f, f + n):
                    self.hw_store(ch)
                return dp.seal(f"{sseq} OK S {n:02X}")
            return dp.seal(f"{sseq} OK R {dp.pack_codes([self.hw_read(ch) for ch in range(f, f + n)], w)}")
        if cmd == "X":  # SS X MM: every switch at once (bit k: switch k closed)
            if len(args) != 1 or not (len(args[0]) == 2 and _is_hex(args[0])):
                return self._err(sseq, dp.E_SYNTAX)
            mask = int(args[0], 16)
            if not self.cfg.n_switches:
                return self._err(sseq, dp.E_NOTSUP)
            if mask >> self.cfg.n_switches:
                return self._err(sseq, dp.E_CHANNEL)
            self.hw_switch(mask)
            self.switches = mask
            return dp.seal(f"{sseq} OK X {mask:02X}")
        return self._err(sseq, dp.E_UNKNOWN)
