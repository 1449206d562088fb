"""The analog switch command ``X`` (drivers/PROTOCOL.md) in every implementation of the board:
byte sequences built from the protocol (not from an implementation) against the firmware's
parser (host build), the Python twin and the host driver's exact writes; then the firmware
binary in simavr with the ADG412 pin model (simulator/mcu/switches.c), and a training dry run
through it identical to the twin's.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from external import need

from drivers import digiproto as dp
from drivers.digipot import BoardError, DigipotBoard
from drivers.testing import ScriptedSerial
from labnet.core.errors import LimitError
from simulator.board import BoardConfig, BoardLogic

ROOT = Path(__file__).resolve().parent.parent
FW = ROOT / "drivers" / "firmware"


def req(seq: int, cmd: str, *args: str) -> bytes:
    return dp.request(seq, cmd, *args)


def rep(body: str) -> bytes:
    return dp.seal(body)


def err(seq: int, code: int) -> bytes:
    return rep(f"{seq:02X} ER {code:02d} {dp.ERROR_NAMES[code]}")


#: (board: family, channels, max code, power-up, readback, nonvolatile, switches), request/reply pairs
SWITCH_VECTORS = {
    "identify-with-switches": (("MCP42", 16, 256, 128, 1, 0, 4), [
        (req(0, "I"), rep("00 OK I LNDP 1.0 MCP42 16 256 1 0 4"))]),
    "identify-without-switches": (("X9C", 16, 99, 49, 0, 1, 0), [
        (req(0, "I"), rep("00 OK I LNDP 1.0 X9C 16 99 0 1"))]),
    "set-and-clear": (("MCP42", 16, 256, 128, 1, 0, 4), [
        (req(0, "Y"), rep("00 OK Y")), (req(1, "X", "0F"), rep("01 OK X 0F")), (req(2, "X", "05"), rep("02 OK X 05")),
        (req(3, "X", "00"), rep("03 OK X 00"))]),
    "bit-above-the-switches": (("X9C", 14, 99, 49, 0, 1, 2), [
        (req(0, "Y"), rep("00 OK Y")), (req(1, "X", "04"), err(1, dp.E_CHANNEL)), (req(2, "X", "03"), rep("02 OK X 03"))]),
    "all-eight": (("MCP42", 16, 256, 128, 1, 0, 8), [(req(0, "Y"), rep("00 OK Y")), (req(1, "X", "FF"), rep("01 OK X FF"))]),
    "malformed": (("MCP42", 16, 256, 128, 1, 0, 4), [
        (req(0, "Y"), rep("00 OK Y")), (req(1, "X"), err(1, dp.E_SYNTAX)), (req(2, "X", "1"), err(2, dp.E_SYNTAX)),
        (req(3, "X", "0f"), err(3, dp.E_SYNTAX)), (req(4, "X", "01", "02"), err(4, dp.E_SYNTAX)),
        (req(5, "X", "001"), err(5, dp.E_SYNTAX))]),
    "no-switches": (("X9C", 16, 99, 49, 0, 1, 0), [(req(0, "Y"), rep("00 OK Y")), (req(1, "X", "00"), err(1, dp.E_NOTSUP))]),
    "before-sync": (("MCP42", 16, 256, 128, 1, 0, 4), [(req(0, "X", "01"), err(0, dp.E_NOSYNC))]),
    "retransmission-replays": (("MCP42", 16, 256, 128, 1, 0, 4), [
        (req(0, "Y"), rep("00 OK Y")), (req(1, "X", "01"), rep("01 OK X 01")), (req(1, "X", "01"), rep("01 OK X 01")),
        (req(1, "X", "02"), err(1, dp.E_SEQ))]),
}


@pytest.fixture(scope="module")
def host_parser(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("gcc", "make", apt="gcc make libc6-dev", why="the host build of the firmware parser")
    build = tmp_path_factory.mktemp("fw-host")
    subprocess.run(["make", "-s", "-C", str(FW), f"BUILD={build}", "host"], check=True, capture_output=True)
    return build / "host_lndp"


@pytest.mark.parametrize("name", sorted(SWITCH_VECTORS))
def test_firmware_parser_and_twin_answer_the_switch_vectors(name: str, host_parser: Path):
    cfg, pairs = SWITCH_VECTORS[name]
    data = b"".join(a for a, _ in pairs)
    want = b"".join(b for _, b in pairs)
    out = subprocess.run([str(host_parser), *map(str, cfg[:6]), f"--switches={cfg[6]}"], input=data,
                         capture_output=True, check=True)
    assert out.stdout == want
    applied = [int(line.split()[1], 16) for line in out.stderr.decode().splitlines() if line.startswith("switch")]
    oks = [int(b[8:10], 16) for a, b in pairs if b[3:7] == b"OK X"]
    assert applied == list(dict.fromkeys(oks)) if name == "retransmission-replays" else applied == oks
    fam, n, mx, pu, _rb, _nv, sw = cfg
    twin = BoardLogic(BoardConfig(fam, n, mx, pu, sw))
    assert b"".join(twin.handle(a[:-1]) for a, _ in pairs) == want
    if oks:
        assert twin.switches == oks[-1]


# ---------------------------------------------------------------- the host driver's bytes
READY = b"!RDY LNDP 1.0*80\n"
IDENT_SW = (req(0, "I"), rep("00 OK I LNDP 1.0 MCP42 16 256 1 0 4"))
SYNC = (req(1, "Y"), rep("01 OK Y"))
READ_ALL = (req(2, "R", "00", "10"), rep("02 OK R " + dp.pack_codes([128] * 16, 3)))


def test_driver_opens_every_switch_at_connect_and_sends_only_changes():
    port = ScriptedSerial([IDENT_SW, SYNC, READ_ALL, (req(3, "X", "00"), rep("03 OK X 00")),
                           (req(4, "X", "03"), rep("04 OK X 03")),
                           (req(5, "X", "02"), rep("05 OK X 02")),
                           (req(6, "X", "00"), rep("06 OK X 00"))], pending=READY)
    board = DigipotBoard(port, sleep=lambda s: None).connect()
    assert board.n_switches == 4 and board.identity()["switches"] == 4
    board.set_switches({0: True, 1: True})
    board.set_switches({0: True, 1: True})  # no change: nothing sent
    board.set_switches({0: False})
    board.open_switches()
    port.assert_done()
    with pytest.raises(LimitError, match="switch channel 4"):
        board.set_switches({4: True})


def test_driver_without_switches_sends_no_x_and_a_refused_x_is_an_error():
    port = ScriptedSerial([(req(0, "I"), rep("00 OK I LNDP 1.0 X9C 16 99 0 1")), SYNC,
                           (req(2, "R", "00", "10"), rep("02 OK R " + "31" * 16))], pending=READY)
    board = DigipotBoard(port, sleep=lambda s: None).connect()
    assert board.n_switches == 0 and "switches" not in board.identity()
    board.open_switches()  # nothing to open: nothing sent
    port.assert_done()
    port = ScriptedSerial([IDENT_SW, SYNC, READ_ALL, (req(3, "X", "00"), err(3, dp.E_NOTSUP))], pending=READY)
    with pytest.raises(BoardError, match="NOTSUP"):
        DigipotBoard(port, sleep=lambda s: None).connect()


def test_driver_recovery_after_a_reset_closes_the_recorded_switches_again():
    codes = dp.pack_codes([128] * 16, 3)
    port = ScriptedSerial([IDENT_SW, SYNC, READ_ALL, (req(3, "X", "00"), rep("03 OK X 00")),
                           (req(4, "X", "01"), rep("04 OK X 01")),
                           (req(5, "R", "00", "01"), err(5, dp.E_NOSYNC)),  # the board reset meanwhile
                           (req(5, "Y"), rep("05 OK Y")),  # NOSYNC consumed no number
                           (req(6, "W", "00", codes), rep(f"06 OK W 10 {dp.table_crc([128] * 16):02X}")),
                           (req(7, "R", "00", "10"), rep("07 OK R " + codes)),
                           (req(8, "X", "01"), rep("08 OK X 01")),
                           (req(9, "R", "00", "01"), rep("09 OK R 080"))], pending=READY)
    board = DigipotBoard(port, sleep=lambda s: None).connect()
    board.set_switches({0: True})
    assert list(board.read_codes([0])) == [128]
    port.assert_done()


# ---------------------------------------------------------------- the binary in simavr
def _mcu_missing() -> list[str]:
    from simulator.mcu.build import missing_tools

    missing = missing_tools()
    if missing and os.environ.get("CI"):
        raise RuntimeError(f"CI must install the emulator toolchain; missing: {missing}")
    return missing


def test_firmware_binary_drives_the_switch_pins_and_waits_out_the_switching_time():
    """MCP42, 16 channels, 4 switches (sim16-switch's board): X moves exactly the control pins
    A0..A3 (README table), the reply comes after the ADG412's tON (Table 2: 250 ns max)."""
    if _mcu_missing():
        pytest.skip(f"emulated MCU needs {', '.join(_mcu_missing())}")
    import serial

    from simulator.mcu.build import build_firmware
    from simulator.mcu.harness import McuProcess

    fw = build_firmware("MCP42", 16, 256, 128, switches=4)
    mcu = McuProcess(fw)
    try:
        port = serial.Serial(mcu.pty, 115200, timeout=2.0)
        mcu.dtr_reset()
        assert port.read_until(b"\n") == rep("!RDY LNDP 1.0")
        mcu.barrier()
        for a, b in [(req(0, "I"), rep("00 OK I LNDP 1.0 MCP42 16 256 1 0 4")), (req(1, "Y"), rep("01 OK Y")),
                     (req(2, "X", "05"), rep("02 OK X 05")), (req(3, "X", "06"), rep("03 OK X 06")),
                     (req(4, "X", "10"), err(4, dp.E_CHANNEL))]:
            port.write(a)
            assert port.read_until(b"\n") == b
        events = [e for e in mcu.barrier() if e.kind == "SWITCH"]
        assert [(int(e.fields[0]), e.fields[1]) for e in events] == [(0, "1"), (2, "1"), (0, "0"), (1, "1")]
        check = next(c for c in mcu.timing_checks() if c.name.startswith("adg412"))
        assert check.count == 2 and check.margin >= 0, check
        assert not mcu.errors
        mcu.dtr_reset()  # the MCU resets: pins float, the pull-downs open the switches
        port.read_until(b"\n")
        events = [e for e in mcu.barrier() if e.kind == "SWITCH"]
        assert sorted((int(e.fields[0]), e.fields[1]) for e in events) == [(1, "0"), (2, "0")]
        port.close()
    finally:
        mcu.close()


def test_switch_rig_dry_run_through_the_firmware_matches_the_twin(tmp_path: Path):
    """sim16-switch with the board address simavr:// (the binary) and sim:// (the twin): the same rows."""
    if _mcu_missing():
        pytest.skip(f"emulated MCU needs {', '.join(_mcu_missing())}")
    import pandas as pd

    from labnet.app.cli import main

    text = (ROOT / "protocols" / "rigs" / "sim16-switch.toml").read_text()
    rows = {}
    for name, t in (("twin", text), ("fw", text.replace('"sim://sim16sw"', '"simavr://sim16sw"'))):
        (tmp_path / f"{name}.toml").write_text(t)
        assert main(["run", str(ROOT / "protocols" / "allostery.toml"), "--rig", str(tmp_path / f"{name}.toml"),
                     "--steps", "20", "--out", str(tmp_path / name), "--quiet"]) == 0
        (folder,) = list((tmp_path / name).iterdir())
        rows[name] = pd.read_csv(folder / "session.csv", comment="#").drop(columns=["time_s", "bench_s"])
        if name == "fw":
            assert '"family": "MCP42"' in (folder / "session.csv").read_text().split("\n# run_ended", 1)[0]
    assert len(rows["fw"]) > 40
    pd.testing.assert_frame_equal(rows["fw"], rows["twin"])
