"""Fuzzing both parsers: the firmware's (lndp.c, host build, libFuzzer + ASan + UBSan, a short
bounded run of drivers/firmware/host/fuzz.sh's target) and the Python side (the twin
BoardLogic and the host's reply parser, hypothesis): every accepted line is one
drivers/PROTOCOL.md allows."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers import digiproto as dp
from simulator.board import BoardConfig, BoardLogic

FW = Path(__file__).resolve().parent.parent / "drivers" / "firmware"

H2 = "[0-9A-F]{2}"
#: request lines PROTOCOL.md allows (body before "*KK"), per code width; X (switches) only on a
#: board with switches
REQUEST = {w: re.compile(rf"^{H2} (I|Y|W {H2} (?:[0-9A-F]{{{w}}})+|R {H2} {H2}|S {H2} {H2} STORE)$") for w in (2, 3)}
REQUEST_SW = {w: re.compile(rf"^{H2} (I|Y|W {H2} (?:[0-9A-F]{{{w}}})+|R {H2} {H2}|S {H2} {H2} STORE|X {H2})$")
              for w in (2, 3)}
REPLY_HEAD = re.compile(rf"^({H2}|--) (OK|ER) ")


def test_libfuzzer_on_the_firmware_parser_finds_nothing(tmp_path: Path):
    if shutil.which("clang") is None:
        if os.environ.get("CI"):
            raise RuntimeError("CI must install clang for the libFuzzer build")
        pytest.skip("clang not installed (CI installs it)")
    exe = tmp_path / "fuzz_lndp"
    subprocess.run(["clang", "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
                    "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(FW / "host" / "fuzz_lndp.c"), str(FW / "lndp.c")],
                   check=True, capture_output=True)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    fam = {"X9C": 0, "MCP41": 1, "MCP42": 2}
    for i, v in enumerate(json.loads((FW / "vectors.json").read_text())):
        (corpus / f"seed{i}").write_bytes(bytes([fam[v["config"][0]]]) + v["in"].encode("latin-1"))
    r = subprocess.run([str(exe), "-runs=40000", "-seed=11", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1",
                        str(corpus)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Done 40000 runs" in r.stderr
    assert not list(tmp_path.glob("crash-*"))
    cov = re.findall(r"cov: (\d+)", r.stderr)
    print(f"libFuzzer: 40000 runs, coverage {cov[-1] if cov else '?'} edges")


_TOKENS = st.sampled_from(["00", "01", "02", "0F", "10", "FF", "1A", "1a", "a1", "+1", "-1", " ", "  ", "I", "Y", "W",
                           "R", "S", "STORE", "store", "080", "100", "0A0B", "63", "64", "x", "X", "0F", "F0", "\r",
                           "*"])


@st.composite
def _lines(draw: st.DrawFn) -> bytes:
    """A request-like line with a correct checksum (so it reaches the parser proper)."""
    seq = draw(st.sampled_from(["00", "01", "02", "03", "0a", "+1", "-1", " 1", "1 "]))
    body = seq + "".join(draw(st.lists(_TOKENS, max_size=8)))
    if draw(st.booleans()):
        body = seq + " " + draw(st.sampled_from("IYWRSQX")) + "".join(draw(st.lists(_TOKENS, max_size=6)))
    return dp.seal(body)


@pytest.mark.parametrize("family,n,mx,pu,sw", [("X9C", 16, 99, 49, 0), ("MCP42", 16, 256, 128, 0),
                                               ("MCP42", 16, 256, 128, 4), ("X9C", 14, 99, 49, 2)])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_lines(), min_size=1, max_size=12))
def test_python_twin_accepts_only_protocol_lines(family: str, n: int, mx: int, pu: int, sw: int, lines: list[bytes]):
    twin = BoardLogic(BoardConfig(family, n, mx, pu, sw))
    grammar = (REQUEST_SW if sw else REQUEST)[dp.code_width(mx)]
    sync = dp.request(0, "Y")
    last_ok = twin.handle(sync[:-1])  # a line with the same SS and CRC-8 as this sync is, by PROTOCOL.md's
    assert last_ok.startswith(b"00 OK Y")  # rule, its retransmission: the Y reply is replayed (e.g. "00 R   ")
    for line in lines:
        reply = twin.handle(line.rstrip(b"\n"))
        assert REPLY_HEAD.match(reply.decode("ascii")), reply
        if b" OK " in reply and reply != last_ok:
            body = line.rstrip(b"\n").rsplit(b"*", 1)[0].rstrip(b"\r").decode("latin-1")
            assert grammar.match(body), f"accepted {line!r} -> {reply!r}"
            if body[3:4] == "X":  # a switch mask within the board's switches, applied and repeated
                assert int(body[5:7], 16) >> sw == 0 and twin.switches == int(body[5:7], 16), (line, reply)
                assert reply.startswith(f"{body[:2]} OK X {body[5:7]}*".encode())
        if b" OK " in reply:
            last_ok = reply


@settings(max_examples=300, deadline=None)
@given(body=st.text(alphabet="0123456789ABCDEFabcdef+- OKER*xRDY!", max_size=24))
def test_host_reply_parser_takes_only_upper_case_hex_fields(body: str):
    line = dp.seal(body)
    try:
        fr = dp.parse_line(line)
    except dp.FrameError:
        return
    if fr.seq is not None:
        assert re.match(rf"^{H2} ", body), f"sequence field of {line!r} accepted"


@pytest.mark.parametrize("line", [b"0a OK Y*", b"+1 OK Y*", b"-1 OK Y*", b" 1 OK Y*"])
def test_host_reply_parser_rejects_lower_case_and_signed_fields(line: bytes):
    body = line[:-1]
    with pytest.raises(dp.FrameError):
        dp.parse_line(body + b"*%02X\n" % dp.crc8(body))
    with pytest.raises(dp.FrameError):
        dp.parse_line(body + b"*%02x\n" % dp.crc8(body) if dp.crc8(body) > 9 else body + b"*+%X\n" % dp.crc8(body))
