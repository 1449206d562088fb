"""Write ``vectors.json``: the byte sequences the firmware parser (host build), the Python twin
(simulator/board.py) and the host driver tests share.

Expected replies are built from the protocol definition (drivers/digiproto.py: framing and
CRC), not from either implementation: ``python drivers/firmware/make_vectors.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from drivers import digiproto as dp

X9C = ["X9C", 16, 99, 49, 0, 1]
MCP = ["MCP41", 16, 256, 128, 1, 0]


def req(seq: int, cmd: str, *args: str) -> str:
    return dp.request(seq, cmd, *args).decode()


def rep(body: str) -> str:
    return dp.seal(body).decode()


def err(seq: str, code: int) -> str:
    return rep(f"{seq} ER {code:02d} {dp.ERROR_NAMES[code]}")


def hexcodes(codes: list[int], w: int = 2) -> str:
    return dp.pack_codes(codes, w)


def vectors() -> list[dict]:
    v: list[dict] = []

    def add(name: str, cfg: list, pairs: list[tuple[str, str]]) -> None:
        v.append({"name": name, "config": cfg, "in": "".join(a for a, _ in pairs), "out": "".join(b for _, b in pairs)})

    pu = [49] * 16
    add("identify", X9C, [(req(0, "I"), rep("00 OK I LNDP 1.0 X9C 16 99 0 1"))])
    add("nosync after reset", X9C, [(req(0, "R", "00", "10"), err("00", dp.E_NOSYNC))])
    add("sync then read all", X9C, [(req(0, "Y"), rep("00 OK Y")), (req(1, "R", "00", "10"), rep("01 OK R " + hexcodes(pu)))])
    codes = list(range(20, 36))
    add("write all 16 in one line", X9C, [
        (req(0, "Y"), rep("00 OK Y")),
        (req(1, "W", "00", hexcodes(codes)), rep(f"01 OK W 10 {dp.table_crc(codes):02X}")),
        (req(2, "R", "00", "10"), rep("02 OK R " + hexcodes(codes))),
    ])
    part = pu[:3] + [10, 11] + pu[5:]
    w = req(1, "W", "03", "0A0B")
    add("retransmission is replayed", X9C, [
        (req(0, "Y"), rep("00 OK Y")),
        (w, rep(f"01 OK W 02 {dp.table_crc(part):02X}")),
        (w, rep(f"01 OK W 02 {dp.table_crc(part):02X}")),
        (req(2, "R", "03", "02"), rep("02 OK R 0A0B")),
    ])
    add("out of sequence", X9C, [
        (req(0, "Y"), rep("00 OK Y")),
        (req(5, "R", "00", "01"), err("05", dp.E_SEQ)),
        (req(1, "W", "00", "01"), rep(f"01 OK W 01 {dp.table_crc([1] + pu[1:]):02X}")),
        (req(1, "W", "00", "02"), err("01", dp.E_SEQ)),
    ])
    add("resync with Y", X9C, [
        (req(0, "Y"), rep("00 OK Y")),
        (req(7, "Y"), rep("07 OK Y")),
        (req(8, "R", "00", "01"), rep("08 OK R 31")),
    ])
    add("bad checksum", X9C, [
        (req(0, "Y"), rep("00 OK Y")),
        ("01 W 00 01*00\n", err("--", dp.E_CRC)),
        ("01 W 00 01\n", err("--", dp.E_CRC)),
        ("01 W 00 01*5a\n", err("--", dp.E_CRC)),
        (req(1, "R", "00", "01"), rep("01 OK R 31")),
    ])
    long_body = "01 W 00 " + "31" * 30
    add("line longer than the receive buffer", X9C, [
        (req(0, "Y"), rep("00 OK Y")),
        (dp.seal(long_body).decode(), err("--", dp.E_OVERFLOW)),
        (req(1, "R", "00", "01"), rep("01 OK R 31")),
    ])
    add("receive ring overflow (marked by a NUL byte)", X9C, [
        (req(0, "Y"), rep("00 OK Y")),
        ("01 W 00\x00" + req(1, "R", "00", "01")[7:], err("--", dp.E_OVERFLOW)),
    ])
    add("syntax errors", X9C, [
        (req(0, "Y"), rep("00 OK Y")),
        (rep("1 W"), err("--", dp.E_SYNTAX)),
        (rep("01W 00 31"), err("--", dp.E_SYNTAX)),
        (req(1, "W", "00", "313"), err("01", dp.E_SYNTAX)),
        (req(2, "W", "0", "31"), err("02", dp.E_SYNTAX)),
        (req(3, "R", "00"), err("03", dp.E_SYNTAX)),
        (req(4, "W", "00", "3g"), err("04", dp.E_SYNTAX)),
        (req(5, "I", "X"), err("05", dp.E_SYNTAX)),
    ])
    add("unknown command", X9C, [(req(0, "Y"), rep("00 OK Y")), (req(1, "Q"), err("01", dp.E_UNKNOWN))])
    add("channel out of range", X9C, [
        (req(0, "Y"), rep("00 OK Y")),
        (req(1, "W", "0F", "0101"), err("01", dp.E_CHANNEL)),
        (req(2, "R", "00", "11"), err("02", dp.E_CHANNEL)),
        (req(3, "R", "10", "01"), err("03", dp.E_CHANNEL)),
        (req(4, "R", "00", "00"), err("04", dp.E_CHANNEL)),
    ])
    add("code out of range leaves every wiper", X9C, [
        (req(0, "Y"), rep("00 OK Y")),
        (req(1, "W", "00", "3264"), err("01", dp.E_CODE)),
        (req(2, "R", "00", "02"), rep("02 OK R 3131")),
    ])
    add("store needs its token", X9C, [
        (req(0, "Y"), rep("00 OK Y")),
        (req(1, "S", "00", "10"), err("01", dp.E_SYNTAX)),
        (req(2, "S", "00", "10", "STORE"), rep("02 OK S 10")),
    ])
    add("CR LF line ends", X9C, [(req(0, "Y").replace("\n", "\r\n"), rep("00 OK Y"))])
    mcp_pu = [128] * 16
    mc = [256, 0] + mcp_pu[2:]
    add("MCP41: 3-digit codes, readback, no store", MCP, [
        (req(0, "I"), rep("00 OK I LNDP 1.0 MCP41 16 256 1 0")),
        (req(0, "Y"), rep("00 OK Y")),
        (req(1, "W", "00", "100000"), rep(f"01 OK W 02 {dp.table_crc(mc):02X}")),
        (req(2, "R", "00", "03"), rep("02 OK R 100000080")),
        (req(3, "W", "00", "101"), err("03", dp.E_CODE)),
        (req(4, "S", "00", "01", "STORE"), err("04", dp.E_NOTSUP)),
        (req(5, "R", "00", "10"), rep("05 OK R " + hexcodes(mc, 3))),
    ])
    add("trailing space is an empty field", X9C, [  # found by fuzzing the twin (tests/test_fuzz_parsers.py)
        (dp.seal("00 I ").decode("ascii"), err("--", dp.E_SYNTAX)),
        (dp.seal("00 Y ").decode("ascii"), err("--", dp.E_SYNTAX)),
        (req(0, "Y"), rep("00 OK Y")),
    ])
    return v


if __name__ == "__main__":
    out = Path(__file__).with_name("vectors.json")
    out.write_text(json.dumps(vectors(), indent=1) + "\n", encoding="ascii")
    print(f"wrote {out} ({len(vectors())} vectors)")
