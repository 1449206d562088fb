"""The digipot board's line protocol: framing, checksum and codes shared by host and emulator.

See ``drivers/PROTOCOL.md`` for the full description with byte examples. In short, every
line is ASCII and ends in ``\\n``::

    request   SS C[ ARG]...*KK\\n        SS: sequence number (2 hex digits), C: command letter
    reply     SS OK C[ DATA]...*KK\\n    or   SS ER NN NAME*KK\\n
    ready     !RDY LNDP <fw>*KK\\n         sent once by the board after every reset

``KK`` is the CRC-8 (polynomial 0x07, initial value 0, no reflection) of every byte before
``*``, as two upper-case hex digits. A request line including its ``\\n`` is at most
:data:`MAX_LINE` bytes, the size of the board's receive buffer.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

#: Board receive buffer and longest request line, bytes (including the final ``\n``).
MAX_LINE = 64
#: Firmware identification in the ready line and the ``I`` reply.
FIRMWARE = "LNDP"
READY_PREFIX = b"!RDY"

# error codes (two decimal digits on the wire)
E_CRC, E_OVERFLOW, E_SYNTAX, E_UNKNOWN, E_SEQ, E_NOSYNC, E_CHANNEL, E_CODE, E_NOTSUP = range(1, 10)
ERROR_NAMES = {
    E_CRC: "CRC",
    E_OVERFLOW: "OVERFLOW",
    E_SYNTAX: "SYNTAX",
    E_UNKNOWN: "UNKNOWN",
    E_SEQ: "SEQ",
    E_NOSYNC: "NOSYNC",
    E_CHANNEL: "CHANNEL",
    E_CODE: "CODE",
    E_NOTSUP: "NOTSUP",
}
#: Token a STORE request must carry so that no stray byte sequence can wear out an EEPROM.
STORE_TOKEN = "STORE"


def _crc8_bitwise(byte: int) -> int:
    crc = byte
    for _ in range(8):
        crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


#: CRC of every single byte (the firmware computes the same bit by bit).
_CRC8_TABLE = bytes(_crc8_bitwise(b) for b in range(256))


def crc8(data: bytes) -> int:
    """CRC-8, polynomial x^8 + x^2 + x + 1 (0x07), initial value 0, MSB first (table-driven)."""
    crc = 0
    table = _CRC8_TABLE
    for b in data:
        crc = table[crc ^ b]
    return crc


def seal(body: str) -> bytes:
    """``body`` + ``*KK\\n`` (ASCII)."""
    raw = body.encode("ascii")
    return raw + b"*%02X\n" % crc8(raw)


def request(seq: int, cmd: str, *args: str) -> bytes:
    """A framed request line, e.g. ``request(7, "R", "00", "10") == b"07 R 00 10*EB\\n"``."""
    return seal(" ".join([f"{seq & 0xFF:02X}", cmd, *args]))


def code_width(max_code: int) -> int:
    """Hex digits per code on the wire: 2 up to code 255, 3 up to 4095."""
    return 2 if max_code <= 0xFF else 3


def pack_codes(codes: Sequence[int], width: int) -> str:
    if width == 2 and type(codes) in (list, tuple):  # (bytes() of an array would take its buffer)
        try:
            return bytes(codes).hex().upper()  # every code 0..255: two digits each
        except (TypeError, ValueError):
            pass
    return "".join(f"{int(c):0{width}X}" for c in codes)


def unpack_codes(text: str, width: int) -> list[int]:
    if len(text) % width or text.strip("0123456789ABCDEF"):
        raise ValueError(f"bad code field {text!r}")
    return [int(text[i:i + width], 16) for i in range(0, len(text), width)]


def table_crc(codes: Sequence[int]) -> int:
    """CRC-8 over the board's whole code table (each code as 2 bytes, big-endian)."""
    try:
        raw = _pack_table(len(codes), *codes)
    except struct.error:  # out of 0..65535 (or not integers): the error to_bytes gives
        raw = b"".join(int(c).to_bytes(2, "big") for c in codes)
    return crc8(raw)


def _pack_table(n: int, *codes: int) -> bytes:
    fmt = _TABLE_FMT.get(n)
    if fmt is None:
        fmt = _TABLE_FMT[n] = struct.Struct(f">{n}H")
    return fmt.pack(*codes)


_TABLE_FMT: dict[int, struct.Struct] = {}


def max_codes_per_line(width: int) -> int:
    """Codes one ``W`` line can carry: ``SS W FF <codes>*KK\\n`` within :data:`MAX_LINE`."""
    return (MAX_LINE - len("SS W FF *KK\n")) // width


@dataclass(frozen=True)
class Frame:
    """A parsed line. ``seq`` is None for ``--`` (framing errors) and for the ready line."""

    seq: int | None
    kind: str  # "OK", "ER", "RDY" or a request command letter
    fields: tuple[str, ...]
    raw: bytes

    @property
    def error_code(self) -> int:
        return int(self.fields[0]) if self.kind == "ER" else 0


class FrameError(ValueError):
    """A line that is not a valid frame (garbled, bad checksum, truncated)."""


def _hex_field(s: str) -> int:
    """Two upper-case hex digits (PROTOCOL.md), else ValueError: ``int(s, 16)`` alone also takes
    lower case, a sign, a ``0x`` prefix or surrounding blanks, which no valid line carries."""
    if len(s) != 2 or s.strip("0123456789ABCDEF"):
        raise ValueError(f"not two upper-case hex digits: {s!r}")
    return int(s, 16)


def parse_line(line: bytes) -> Frame:
    """Check the checksum and split a line (with or without the final ``\\n``) into a Frame."""
    raw = line.rstrip(b"\r\n")
    star = raw.rfind(b"*")
    if star < 0 or len(raw) != star + 3:
        raise FrameError(f"no checksum in {line!r}")
    body, kk = raw[:star], raw[star + 1:]
    try:
        text = body.decode("ascii")
        want = _hex_field(kk.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise FrameError(f"non-ASCII or bad checksum digits in {line!r}") from None
    if crc8(body) != want:
        raise FrameError(f"checksum mismatch in {line!r} (computed {crc8(body):02X})")
    parts = text.split(" ")
    if parts[0] == "!RDY":
        return Frame(None, "RDY", tuple(parts[1:]), line)
    if len(parts) < 2:
        raise FrameError(f"truncated frame {line!r}")
    if parts[0] == "--":
        seq = None
    else:
        try:
            seq = _hex_field(parts[0])
        except ValueError:
            raise FrameError(f"bad sequence field in {line!r}") from None
    return Frame(seq, parts[1], tuple(parts[2:]), line)
