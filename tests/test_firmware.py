"""The board firmware: the parser's host build and its Python twin answer the shared byte
sequences (drivers/firmware/vectors.json) byte for byte; the ATmega328P build fits."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from external import need

from drivers.firmware.make_vectors import vectors as make_vectors
from simulator.board import BoardConfig, BoardLogic

FW = Path(__file__).resolve().parent.parent / "drivers" / "firmware"
VECTORS = json.loads((FW / "vectors.json").read_text(encoding="ascii"))


def test_vectors_file_is_current():
    assert VECTORS == make_vectors(), "run python drivers/firmware/make_vectors.py"


@pytest.fixture(scope="module")
def host_parser(tmp_path_factory) -> Path:
    need("gcc", "make", apt="gcc make libc6-dev", why="the host build of the firmware parser")
    build = tmp_path_factory.mktemp("fw-host")
    subprocess.run(["make", "-s", "-C", str(FW), f"BUILD={build}", "host"], check=True, capture_output=True)
    return build / "host_lndp"


@pytest.mark.parametrize("vec", VECTORS, ids=[v["name"] for v in VECTORS])
def test_host_build_of_the_parser(host_parser: Path, vec: dict):
    cfg = [str(x) for x in vec["config"]]
    out = subprocess.run([str(host_parser), *cfg], input=vec["in"].encode("latin-1"), capture_output=True, check=True)
    assert out.stdout.decode("latin-1") == vec["out"]


@pytest.mark.parametrize("vec", VECTORS, ids=[v["name"] for v in VECTORS])
def test_python_twin_of_the_parser(vec: dict):
    fam, n, mx, pu, _rb, _nv = vec["config"]
    logic = BoardLogic(BoardConfig(fam, n, mx, pu))
    got = bytearray()
    for b in vec["in"].encode("latin-1"):
        if b == 0:
            logic.overflow()
        else:
            got += logic.feed(b)
    assert got.decode("latin-1") == vec["out"]


def test_host_parser_ready_line_and_store(host_parser: Path):
    from drivers import digiproto as dp

    data = dp.request(0, "Y") + dp.request(1, "S", "02", "03", "STORE")
    out = subprocess.run([str(host_parser), "X9C", "16", "99", "49", "0", "1", "--ready"], input=data,
                         capture_output=True, check=True)
    assert out.stdout.startswith(dp.seal("!RDY LNDP 1.0"))
    assert out.stderr.decode().split() == ["store", "2", "store", "3", "store", "4"]


@pytest.mark.parametrize("family,max_code,power_up,extra", [("X9C", 99, 49, ()), ("MCP42", 256, 128, ()),
                                                      ("MCP42", 256, 128, ("SWITCHES=4",)),
                                                      ("X9C", 99, 49, ("CHANNELS=14", "SWITCHES=2"))])
def test_atmega328p_build_fits(tmp_path: Path, family: str, max_code: int, power_up: int, extra: tuple[str, ...]):
    need("avr-gcc", "avr-size", apt="gcc-avr avr-libc binutils-avr", why="the ATmega328P firmware build")
    res = subprocess.run(["make", "-s", "-C", str(FW), f"BUILD={tmp_path}", f"FAMILY={family}", f"MAX_CODE={max_code}",
                          f"POWER_UP_CODE={power_up}", *extra, "all", "size"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    m = re.search(r"flash (\d+) / 32768 bytes, RAM (\d+) / 2048 bytes", res.stdout)
    assert m, res.stdout
    flash, ram = int(m.group(1)), int(m.group(2))
    assert 0 < flash <= 32768 and 0 < ram <= 2048
    assert (tmp_path / "lndp.hex").read_text().startswith(":")
    print(f"{family} {' '.join(extra)}: flash {flash} B, RAM {ram} B")


def test_x9c_build_with_16_chips_refuses_a_switch(tmp_path: Path):
    """16 X9C chips take every chip-select slot: SWITCHES=1 is a compile-time error, not a silent pin clash."""
    need("avr-gcc", apt="gcc-avr avr-libc binutils-avr", why="the ATmega328P firmware build")
    res = subprocess.run(["make", "-s", "-C", str(FW), f"BUILD={tmp_path}", "SWITCHES=1", "all"], capture_output=True,
                         text=True)
    assert res.returncode != 0 and "the switches take the chip-select pins" in res.stderr


def _random_stream(seed: int, n: int, width: int) -> bytes:
    """Requests a host might send, valid and broken: random commands, sequence numbers,
    spans, codes, flipped and dropped bytes, over-long lines and ring overflows (NUL)."""
    import numpy as np

    from drivers import digiproto as dp

    rng = np.random.default_rng(seed)
    out = bytearray()
    seq = 0
    for _ in range(n):
        cmd = str(rng.choice(list("IYWRSQ")))
        first = f"{int(rng.integers(0, 20)):02X}"
        if cmd == "W":
            codes = rng.integers(0, 300 if width == 3 else 120, int(rng.integers(1, 20)))
            args = [first, dp.pack_codes(codes.tolist(), width)]
        elif cmd in "RS":
            args = [first, f"{int(rng.integers(0, 20)):02X}"] + (["STORE"] if cmd == "S" and rng.random() < 0.8 else [])
        else:
            args = []
        if rng.random() < 0.85:
            seq = (seq + 1) & 0xFF
        elif rng.random() < 0.5:
            seq = int(rng.integers(0, 256))
        line = bytearray(dp.request(seq, cmd, *args))
        r = rng.random()
        if r < 0.08:
            line[int(rng.integers(0, len(line) - 1))] ^= 1 << int(rng.integers(0, 7))
        elif r < 0.12:
            del line[int(rng.integers(0, len(line) - 1))]
        elif r < 0.14:
            line = line[:-1] + b"0" * 70 + b"\n"
        elif r < 0.16:
            line = line[:5] + b"\x00" + line[5:]
        elif r < 0.18:
            line = line.replace(b"\n", b"\r\n")
        out += line
    return bytes(out)


@pytest.mark.parametrize("config", [["X9C", 16, 99, 49, 0, 1], ["MCP41", 16, 256, 128, 1, 0], ["MCP42", 7, 255, 128, 1, 0]])
def test_c_parser_and_python_twin_agree_on_random_traffic(host_parser: Path, config: list):
    fam, n, mx, pu, _rb, _nv = config
    data = _random_stream(n + mx, 1500, 2 if mx <= 255 else 3)
    c_out = subprocess.run([str(host_parser), *map(str, config)], input=data, capture_output=True, check=True).stdout
    logic = BoardLogic(BoardConfig(fam, n, mx, pu))
    py_out = bytearray()
    for b in data:
        if b == 0:
            logic.overflow()
        else:
            py_out += logic.feed(b)
    assert c_out == bytes(py_out)
    kinds = {ln.split(b" ")[1] for ln in c_out.splitlines() if b" " in ln}
    assert {b"OK", b"ER"} <= kinds and c_out.count(b"\n") > 1000
