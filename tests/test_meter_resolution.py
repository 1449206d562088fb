"""The emulated DAQ970A/34970A quantises each reading to one A/D count of its integration time
and range: Agilent 34970A/34972A User's Guide, ch. 7 (integration time / resolution table: 15 bits
at 0.02 PLC, 18 at 0.2, 20 at 1, 21 at 2, 24 at 10, 25 at 20, 26 at 100 and 200 PLC), a count being
2.4 × range / 2^bits (the range with its 20 % overrange). The rig file's range must hold every
voltage a source may put on a node (a larger reading overloads: 9.9E+37)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labnet.app.build import build_rig
from labnet.bench.catalog import METERS
from labnet.config.rigfile import load_rig
from labnet.core.errors import ConfigError
from simulator.bench import get_bench
from simulator.daq_emu import A_D_BITS, count_v

ROOT = Path(__file__).resolve().parents[1]
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"


def test_the_simulator_and_the_planner_use_the_manuals_table() -> None:
    assert A_D_BITS == dict(METERS["DAQ970A"].bits) == dict(METERS["34970A"].bits)
    assert A_D_BITS[0.02] == 15 and A_D_BITS[1.0] == 20 and A_D_BITS[200.0] == 26
    assert count_v(0.02, 1.0) == pytest.approx(2.4 / 2 ** 15) == METERS["DAQ970A"].lsb_v(0.02, 1.0)


@pytest.mark.parametrize(("nplc", "range_v"), [(0.02, 1.0), (0.2, 1.0), (0.02, 10.0)])
def test_readings_are_whole_counts(tmp_path: Path, nplc: float, range_v: float) -> None:
    """sim16 through pyvisa: every reading of 20 scans is a whole number of counts at that NPLC and
    range, and the counts are coarse enough to see (the fixed 1 µV resolution would not be)."""
    text = SIM16.read_text().replace("range_v = 1.0 ", f"range_v = {range_v} ", 1)
    (tmp_path / "r.toml").write_text(text)
    spec = load_rig(tmp_path / "r.toml")
    rig = build_rig(spec)
    q = count_v(nplc, range_v)
    with rig:
        rig.set_nplc(nplc)
        rig.apply({"n1": 0.7, "n2": 0.3})
        rig.settle(0.05)
        raw = np.array([rig.meter.read() for _ in range(20)])
    assert get_bench(spec.name).instruments["daq"].nplc  # the emulator was configured
    k = raw / q
    assert np.max(np.abs(k - np.round(k))) < 1e-4  # the wire's %+.8E keeps 9 digits
    assert q > 1e-6


def test_a_range_too_small_for_the_sources_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text(SIM16.read_text().replace("range_v = 1.0 ", "range_v = 0.1 ", 1))
    with pytest.raises(ConfigError, match=r"instruments\.meter\.range_v.*0\.12 V.*1 V on a node.*0\.833"):
        load_rig(tmp_path / "r.toml")
