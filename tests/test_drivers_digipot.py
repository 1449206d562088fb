"""Message-level tests of the digipot board driver: exact bytes out, every reply parsed,
error replies, timeouts, garbage, resets and vanished ports."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from drivers import digiproto as dp
from drivers.digipot import BoardError, DigipotBoard
from drivers.testing import ScriptedSerial
from labnet.core.errors import InstrumentError, LimitError

READY = b"!RDY LNDP 1.0*80\n"
IDENT = (b"00 I*1E\n", b"00 OK I LNDP 1.0 X9C 16 99 0 1*68\n")
SYNC = (b"01 Y*05\n", b"01 OK Y*9F\n")
READ_ALL = (b"02 R 00 10*71\n", b"02 OK R 31313131313131313131313131313131*36\n")
PU = [49] * 16


def r(seq: int, cmd: str, *args: str) -> bytes:
    return dp.request(seq, cmd, *args)


def ok(body: str) -> bytes:
    return dp.seal(body)


def w_ack(seq: int, n: int, table: list[int]) -> bytes:
    return ok(f"{seq:02X} OK W {n:02X} {dp.table_crc(table):02X}")


def connected(script: list, *, events: list | None = None, sleeps: list | None = None, **kw) -> tuple[DigipotBoard, ScriptedSerial]:
    port = ScriptedSerial([IDENT, SYNC, READ_ALL, *script], pending=READY)
    board = DigipotBoard(port, sleep=(sleeps.append if sleeps is not None else lambda s: None),
                         on_event=(events.append if events is not None else None), **kw)
    board.connect()
    return board, port


# ---------------------------------------------------------------------- framing
def test_crc8_check_value():
    assert dp.crc8(b"123456789") == 0xF4  # CRC-8 (poly 0x07, init 0): the catalogued check value


def test_request_framing_literal_bytes():
    assert dp.request(0, "I") == b"00 I*1E\n"
    assert dp.request(3, "S", "00", "02", "STORE") == b"03 S 00 02 STORE*89\n"
    assert dp.max_codes_per_line(2) == 26 and dp.max_codes_per_line(3) == 17


def test_parse_line_rejects_garbage():
    for bad in (b"01 OK Y*9E\n", b"01 OK Y\n", b"\xff\xfe*00\n", b"1 OK Y*" + b"%02X" % dp.crc8(b"1 OK Y") + b"\n"):
        with pytest.raises(dp.FrameError):
            dp.parse_line(bad)
    assert dp.parse_line(READY).kind == "RDY"


# ---------------------------------------------------------------------- connect / identify
def test_connect_waits_for_ready_identifies_syncs_and_reads_codes():
    board, port = connected([])
    port.assert_done()
    assert port.written == [IDENT[0], SYNC[0], READ_ALL[0]]
    assert board.identity() == {"model": "LNDP digipot board", "firmware": "1.0", "family": "X9C", "channels": 16,
                                "max_code": 99, "readback": False, "nonvolatile": True}
    assert board.record == PU


def test_connect_without_ready_line_still_works():
    port = ScriptedSerial([IDENT, SYNC, READ_ALL])
    DigipotBoard(port, sleep=lambda s: None).connect()
    port.assert_done()


def test_connect_rejects_a_foreign_identification():
    port = ScriptedSerial([(b"00 I*1E\n", ok("00 OK I OTHER 2.0 X 1 1 0 0"))], pending=READY)
    with pytest.raises(InstrumentError, match="unexpected identification"):
        DigipotBoard(port, sleep=lambda s: None).connect()


# ---------------------------------------------------------------------- write
def test_write_all_16_channels_is_one_line_and_one_round_trip():
    codes = list(range(20, 36))
    board, port = connected([(b"03 W 00 1415161718191A1B1C1D1E1F20212223*5A\n", w_ack(3, 16, codes))])
    board.write_codes(list(range(16)), codes)
    port.assert_done()
    assert board.record == codes


def test_write_merges_short_gaps_and_splits_long_ones():
    # channels 2 and 4 changed: one span 2..4 with channel 3 re-sent from the record
    new = PU.copy()
    new[2], new[4] = 60, 48
    new2 = new.copy()
    new2[15] = 10
    board, port = connected([
        (b"03 W 02 3C3130*D0\n", w_ack(3, 3, new)),
        (r(4, "W", "0F", "0A"), w_ack(4, 1, new2)),
    ])
    board.write_codes([2, 4], [60, 48])
    board.write_codes([15, 0], [10, 49])  # channel 0 unchanged: not sent
    port.assert_done()


def test_write_of_unchanged_codes_sends_nothing():
    board, port = connected([])
    board.write_codes([0, 1], [49, 49])
    assert port.written == [IDENT[0], SYNC[0], READ_ALL[0]]


@pytest.mark.parametrize("channels,codes,match", [
    ([0], [100], "outside 0..99"),
    ([0], [-1], "outside 0..99"),
    ([16], [10], "channel 16 outside"),
    ([0], [10.5], "outside"),
])
def test_bad_arguments_raise_before_any_byte(channels, codes, match):
    board, port = connected([])
    n = len(port.written)
    with pytest.raises(LimitError, match=match):
        board.write_codes(channels, codes)
    assert len(port.written) == n


def test_repeated_channels_and_length_mismatch_raise_before_any_byte():
    board, port = connected([])
    with pytest.raises(ValueError, match="repeated"):
        board.write_codes([1, 1], [10, 11])
    with pytest.raises(ValueError, match="2 channels but 1 codes"):
        board.write_codes([1, 2], [10])
    assert len(port.written) == 3


def test_code_error_reply_is_raised_without_retry():
    board, port = connected([(r(3, "W", "00", "0A"), ok("03 ER 08 CODE"))])
    with pytest.raises(BoardError, match="08 CODE") as e:
        board.write_codes([0], [10])
    assert e.value.code == dp.E_CODE
    port.assert_done()
    assert board.seq == 4 and board.record == PU  # the record keeps what the board has


# ---------------------------------------------------------------------- read / store
def test_read_codes_reads_the_span_and_returns_the_requested_order():
    board, port = connected([(r(3, "R", "03", "03"), ok("03 OK R 313131"))])
    assert board.read_codes([5, 3]).tolist() == [49, 49]
    port.assert_done()


def test_read_codes_with_a_bad_reply_field_is_an_instrument_error():
    board, port = connected([(r(3, "R", "00", "02"), ok("03 OK R 31"))])
    with pytest.raises(InstrumentError, match="unexpected reply to R"):
        board.read_codes([0, 1])


def test_store_is_explicit_and_sends_the_token():
    board, port = connected([(b"03 S 00 02 STORE*89\n", ok("03 OK S 02"))])
    board.store([0, 1])
    port.assert_done()


def test_store_on_a_volatile_part_is_refused():
    board, port = connected([(r(3, "S", "00", "01", "STORE"), ok("03 ER 09 NOTSUP"))])
    with pytest.raises(BoardError, match="NOTSUP"):
        board.store([0])


# ---------------------------------------------------------------------- retries
def confirm(seq: int, table: list[int]) -> tuple[bytes, bytes]:
    """The readback that follows an exchange acknowledged only on a retransmission (the ack may be
    the late reply to an earlier transmission while the retransmission reset the board)."""
    return r(seq, "R", "00", "10"), ok(f"{seq:02X} OK R " + dp.pack_codes(table, 2))


def test_timeout_is_retried_with_the_same_sequence_number_and_backoff(caplog):
    events: list = []
    sleeps: list = []
    line = r(3, "W", "00", "0A")
    table = [10] + PU[1:]
    board, port = connected([(line, None), (line, None), (line, w_ack(3, 1, table)), confirm(4, table)],
                            events=events, sleeps=sleeps)
    with caplog.at_level(logging.WARNING, logger="drivers.digipot"):
        board.write_codes([0], [10])
    port.assert_done()
    assert sleeps == [0.02, 0.04]
    assert [e["event"] for e in events] == ["retry", "retry"] and "timeout" in events[0]["reason"]
    assert "retry" in caplog.text
    assert board.stats["retries"] == 2


def test_garbled_reply_is_retried_and_the_replay_accepted():
    line = r(3, "W", "00", "0A")
    table = [10] + PU[1:]
    good = w_ack(3, 1, table)
    garbled = good.replace(b"OK", b"oK")
    board, port = connected([(line, garbled), (line, good), confirm(4, table)])
    board.write_codes([0], [10])
    port.assert_done()


def test_stale_reply_with_an_old_sequence_number_is_skipped():
    events: list = []
    board, port = connected([(r(3, "R", "00", "01"), ok("02 OK R 31") + ok("03 OK R 31"))], events=events)
    assert board.read_codes([0]).tolist() == [49]
    assert events[0]["event"] == "stale_reply"


def test_board_reporting_a_crc_error_gets_the_request_again():
    line = r(3, "R", "00", "01")
    board, port = connected([(line, ok("-- ER 01 CRC")), (line, ok("03 OK R 31"))])
    assert board.read_codes([0]).tolist() == [49]
    port.assert_done()


def test_out_of_sequence_reply_resyncs_then_retries():
    board, port = connected([
        (r(3, "R", "00", "01"), ok("03 ER 05 SEQ")),
        (r(4, "Y"), ok("04 OK Y")),
        (r(5, "R", "00", "01"), ok("05 OK R 31")),
    ])
    assert board.read_codes([0]).tolist() == [49]
    port.assert_done()


def test_retries_are_bounded_then_a_clear_error():
    line = r(3, "R", "00", "01")
    board, port = connected([(line, None)] * 3, retries=2)
    with pytest.raises(InstrumentError, match="no valid reply to R after 3 attempts"):
        board.read_codes([0])
    port.assert_done()
    assert board.seq == 4  # the number of a request that may have run is never reused


def test_garbage_bytes_without_a_line_end_are_a_timeout():
    line = r(3, "R", "00", "01")
    board, port = connected([(line, b"\x00\xff garbage"), (line, ok("03 OK R 31")), confirm(4, PU)])
    assert board.read_codes([0]).tolist() == [49]


# ---------------------------------------------------------------------- resets
def recovery(seq: int, record: list[int]) -> list:
    """What the driver sends to restore a reset board: sync, all codes, readback."""
    return [
        (r(seq, "Y"), ok(f"{seq:02X} OK Y")),
        (r(seq + 1, "W", "00", dp.pack_codes(record, 2)), w_ack(seq + 1, 16, record)),
        (r(seq + 2, "R", "00", "10"), ok(f"{seq + 2:02X} OK R " + dp.pack_codes(record, 2))),
    ]


def test_nosync_reply_means_a_reset_codes_are_restored_and_verified():
    events: list = []
    codes = list(range(20, 36))
    c2 = codes.copy()
    c2[0] = 11
    board, port = connected([
        (r(3, "W", "00", dp.pack_codes(codes, 2)), w_ack(3, 16, codes)),
        (r(4, "W", "00", "0B"), ok("04 ER 06 NOSYNC")),
        *recovery(4, codes),
        (r(7, "W", "00", "0B"), w_ack(7, 1, c2)),
    ], events=events)
    board.write_codes(list(range(16)), codes)
    board.write_codes([0], [11])
    port.assert_done()
    kinds = [e["event"] for e in events]
    assert kinds[0] == "board_reset" and "recovered" in kinds
    assert board.record == c2 and board.stats["recoveries"] == 1


def test_ready_line_in_place_of_a_reply_triggers_recovery():
    board, port = connected([
        (r(3, "R", "00", "01"), READY),
        *recovery(3, PU),
        (r(6, "R", "00", "01"), ok("06 OK R 31")),
    ])
    assert board.read_codes([0]).tolist() == [49]
    port.assert_done()


def test_table_checksum_mismatch_in_the_ack_triggers_recovery():
    table = [10] + PU[1:]
    wrong = [10] + [50] * 15  # the board's table is not what the host believes
    board, port = connected([(r(3, "W", "00", "0A"), w_ack(3, 1, wrong)), *recovery(4, table)])
    board.write_codes([0], [10])
    port.assert_done()


def test_readback_mismatch_triggers_recovery_and_returns_the_record():
    board, port = connected([(r(3, "R", "00", "02"), ok("03 OK R 3131")),
                             (r(4, "R", "00", "02"), ok("04 OK R 6363")), *recovery(5, PU)])
    board.read_codes([0, 1])
    assert board.read_codes([0, 1]).tolist() == [49, 49]
    port.assert_done()


def test_recovery_that_cannot_verify_is_an_error():
    bad = [0] * 16
    board, port = connected([
        (r(3, "R", "00", "01"), ok("03 ER 06 NOSYNC")),
        (r(3, "Y"), ok("03 OK Y")),
        (r(4, "W", "00", dp.pack_codes(PU, 2)), w_ack(4, 16, PU)),
        (r(5, "R", "00", "10"), ok("05 OK R " + dp.pack_codes(bad, 2))),
    ])
    with pytest.raises(InstrumentError, match="after recovery"):
        board.read_codes([0])


def test_vanished_port_is_reopened_and_the_board_restored():
    events: list = []
    board, port = connected([*recovery(3, PU), (r(6, "R", "00", "01"), ok("06 OK R 31"))], events=events)
    port.fail_writes = 1
    assert board.read_codes([0]).tolist() == [49]
    assert port.reopened == 1
    assert [e["event"] for e in events][:2] == ["port_lost", "reconnected"]


def test_port_that_stays_away_ends_in_a_clear_error():
    board, port = connected([], reconnects=2)

    def nope() -> None:
        from serial import SerialException

        raise SerialException("no such device")

    port.open = nope
    port.fail_writes = 1
    with pytest.raises(InstrumentError, match="2 reconnect attempts failed"):
        board.read_codes([0])


# ---------------------------------------------------------------------- shared vectors
VECTORS = json.loads((Path(__file__).resolve().parent.parent / "drivers" / "firmware" / "vectors.json").read_text())


def test_driver_requests_are_the_vector_bytes():
    """The driver's connect/write/read lines are those the firmware vectors feed the parser."""
    vec = {v["name"]: v for v in VECTORS}
    board, port = connected([(r(3, "W", "00", dp.pack_codes(list(range(20, 36)), 2)),
                              w_ack(3, 16, list(range(20, 36))))])
    board.write_codes(list(range(16)), list(range(20, 36)))
    sent = b"".join(port.written).decode()
    assert vec["identify"]["in"] in sent
    w_line = vec["write all 16 in one line"]["in"].splitlines(keepends=True)[1]
    assert w_line[2:-4] == port.written[-1].decode()[2:-4]  # same command; sequence numbers (and so CRCs) differ


def test_driver_against_the_python_twin_over_a_fake_wire():
    """End to end at byte level: the driver talks to the firmware's Python twin."""
    from simulator.board import BoardConfig, BoardLogic

    logic = BoardLogic(BoardConfig("X9C", 16, 99, 49))

    class Wire(ScriptedSerial):
        def write(self, data: bytes) -> int:
            self.written.append(bytes(data))
            for b in data:
                self.buf += logic.feed(b)
            return len(data)

    port = Wire([], pending=logic.ready_line())
    board = DigipotBoard(port, sleep=lambda s: None).connect()
    board.write_codes([3, 9], [12, 77])
    assert logic.codes[3] == 12 and logic.codes[9] == 77
    logic.reset()  # the board resets behind the driver's back
    assert board.read_codes([3, 9]).tolist() == [12, 77]
    assert logic.codes[3] == 12 and board.stats["recoveries"] == 1
    assert np.array_equal(board.read_codes(list(range(16))), np.array(logic.codes))


def test_protocol_document_byte_examples_are_valid_frames():
    """Every example line in drivers/PROTOCOL.md has a correct checksum."""
    text = (Path(__file__).resolve().parent.parent / "drivers" / "PROTOCOL.md").read_text()
    block = text.split("## Byte examples", 1)[1]
    lines = [ln[2:].split("  ")[0].strip() for ln in block.splitlines() if ln.startswith(("> ", "< "))]
    lines += ["00 W 00 100080*E1", "00 OK R 100080*6B"]
    assert len(lines) >= 20
    for ln in lines:
        dp.parse_line(ln.encode() + b"\n")


def test_adopt_codes_takes_the_boards_codes_and_close_closes_the_port():
    board, port = connected([(r(3, "R", "00", "10"), ok("03 OK R " + dp.pack_codes(list(range(10, 26)), 2)))])
    assert board.adopt_codes().tolist() == list(range(10, 26)) and board.record == list(range(10, 26))
    board.close()
    assert not port.is_open


def test_commands_before_connect_are_refused_without_bytes():
    port = ScriptedSerial([])
    board = DigipotBoard(port, sleep=lambda s: None)
    with pytest.raises(InstrumentError, match="not connected"):
        board.write_codes([0], [1])
    assert port.written == []


def test_port_error_during_a_recovery_is_an_instrument_error_not_a_raw_serial_one():
    """A NOSYNC reply starts a recovery; the port then reports it is not open (pyserial's
    ``PortNotOpenError``) while the driver waits for the ready line: the caller sees an
    InstrumentError naming the board, never the raw pyserial exception."""
    import serial

    board, port = connected([(r(3, "R", "00", "01"), ok("03 ER 06 NOSYNC"))])
    replies = port.read_until

    def read_until(expected: bytes = b"\n", size: int | None = None) -> bytes:
        if board._recovering or board.stats["recoveries"]:
            raise serial.PortNotOpenError()
        return replies(expected, size)

    port.read_until = read_until
    with pytest.raises(InstrumentError, match="digipot board: port error") as info:
        board.read_codes([0])
    assert not isinstance(info.value, serial.SerialException)
    assert isinstance(info.value.__cause__, serial.PortNotOpenError)


def test_late_ack_then_reset_on_the_retransmission_is_caught_by_the_readback():
    """Fault campaign run 1314: the W ack comes late (the driver retransmits), the retransmitted
    line resets the board, and the late ack of the first transmission answers it. The readback
    that confirms a retransmitted exchange meets the reset (NOSYNC) and the codes are restored
    before anything is measured."""
    events: list = []
    line = r(3, "W", "00", "0A")
    table = [10] + PU[1:]
    board, port = connected([
        (line, None),  # the reply is late: timeout
        (line, w_ack(3, 1, table)),  # the late ack of the first transmission; the board resets meanwhile
        (r(4, "R", "00", "10"), ok("04 ER 06 NOSYNC")),
        *recovery(4, table),
        confirm(7, table),
    ], events=events)
    board.write_codes([0], [10])
    port.assert_done()
    assert [e["event"] for e in events if e["event"] in ("board_reset", "recovered")] == ["board_reset", "recovered"]
    assert board.record == table
