"""Driver checks on real hardware, skipped unless an environment variable names the device:

    LABNET_TEST_BOARD=/dev/ttyUSB0                                   the digipot board
    LABNET_TEST_METER=USB0::0x2A8D::0x5101::MY58001234::INSTR        a DAQ970A (channels 101, 102)
    LABNET_TEST_PSU=USB0::0x2A8D::0x1102::MY59001234::INSTR          an E36312A (left at 0 V, off)

Each check also runs against the emulated transports, so the check itself is exercised in
every test run. Nothing here stores a code (no ``S``) or applies more than 0.1 V.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import pyvisa
import serial

import simulator  # noqa: F401 - registers sim://
from drivers.daq970a import DAQ970A
from drivers.digipot import DigipotBoard
from drivers.sources import E36312A
from labnet.config.rigfile import load_rig
from simulator.bench import SimBench, register, unregister
from simulator.breadboard import Breadboard, SimSettings
from simulator.visa import library

RIG = Path(__file__).resolve().parent.parent / "protocols" / "rigs" / "sim16.toml"
_ids = itertools.count()


@pytest.fixture
def sim_bench():
    spec = load_rig(RIG)
    b = SimBench(f"hw{next(_ids)}", Breadboard(spec.network, spec.part, SimSettings(**spec.sim)))
    b.add_instrument("daq", "DAQ970A")
    b.add_instrument("psu", "E36312A", "psu1")
    register(b)
    yield b
    unregister(b.name)


def _targets(env: str) -> list:
    real = os.environ.get(env)
    return ["sim", pytest.param(real, id="hardware")] if real else ["sim", pytest.param(None, id="hardware",
                                                                                      marks=pytest.mark.skip(f"set {env}"))]


@pytest.mark.parametrize("address", _targets("LABNET_TEST_BOARD"))
def test_board_identifies_writes_and_reads_back(sim_bench, address):
    url = f"sim://{sim_bench.name}" if address == "sim" else address
    port = serial.serial_for_url(url, baudrate=115200, timeout=0.5)
    sleep = sim_bench.clock.sleep if address == "sim" else None
    board = DigipotBoard(port, **({"sleep": sleep} if sleep else {})).connect()
    try:
        info = board.identity()
        assert info["channels"] >= 1 and info["max_code"] >= 1
        n = info["channels"]
        before = board.read_codes(range(n))
        target = (before + 1) % (info["max_code"] + 1)
        board.write_codes(range(n), target.tolist())
        assert board.read_codes(range(n)).tolist() == target.tolist()
        board.write_codes(range(n), before.tolist())
    finally:
        board.close()


@pytest.mark.parametrize("address", _targets("LABNET_TEST_METER"))
def test_meter_scans(sim_bench, address):
    rm = pyvisa.ResourceManager(library()) if address == "sim" else pyvisa.ResourceManager()
    res = rm.open_resource(f"TCPIP0::{sim_bench.name}::daq::INSTR" if address == "sim" else address)
    meter = DAQ970A(res, nplc=1)
    try:
        meter.configure(["102", "101"])
        v = meter.read()
        assert v.shape == (2,) and np.all(np.isfinite(v)) and np.all(np.abs(v) < 10)
    finally:
        meter.close()


@pytest.mark.parametrize("address", _targets("LABNET_TEST_PSU"))
def test_supply_sets_up_and_returns_to_the_safe_state(sim_bench, address):
    rm = pyvisa.ResourceManager(library()) if address == "sim" else pyvisa.ResourceManager()
    res = rm.open_resource(f"TCPIP0::{sim_bench.name}::psu::INSTR" if address == "sim" else address)
    psu = E36312A(res, max_v={"1": 0.1, "2": 0.1, "3": 0.1})
    try:
        psu.setup()
        psu.apply({"1": 0.05})
        assert psu.read_currents(["1", "2"]).shape == (2,)
    finally:
        psu.safe_state()
        psu.check_errors("the test")
        psu.close()
