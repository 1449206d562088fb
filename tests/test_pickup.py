"""Line-frequency pickup and the meter's normal-mode rejection (issue 17 item 5): the simulator's
model, the planner's bound with pickup, and the documented table they both follow — Agilent
34970A/34972A User's Guide ch. 7 "Rejecting Power-Line Noise Voltages" (DAQ970A User's Guide
ch. 4): NMR 0 dB at 0.02 and 0.2 PLC, 60 dB at 1, 90 at 2, 95 at 10, 100 at 20, 105 at 100,
110 dB at 200 PLC."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from labnet.bench.catalog import METERS
from labnet.config.rigfile import load_rig
from labnet.core.errors import ConfigError
from labnet.core.nonideal import SimSettings
from labnet.experiments.measureplan import plan_measurement, reading_sigma
from simulator.breadboard import Breadboard
from simulator.pickup import NMR_DB, pickup

ROOT = Path(__file__).resolve().parent.parent
MANUAL = {0.02: 0.0, 0.2: 0.0, 1.0: 60.0, 2.0: 90.0, 10.0: 95.0, 20.0: 100.0, 100.0: 105.0, 200.0: 110.0}


def test_both_tables_are_the_manuals() -> None:
    assert NMR_DB == MANUAL
    for m in METERS.values():
        assert dict(m.nmr_db) == MANUAL and set(m.nplc) == set(MANUAL)


def _integrated(n_plc: float, f_err: float, phase: np.ndarray) -> np.ndarray:
    """Mean of sin(2π f t + φ) over an aperture of n_plc nominal line cycles when the line runs
    at (1 + f_err) × nominal (closed form of the integral)."""
    x = 2 * np.pi * n_plc * (1 + f_err)
    return (np.cos(phase) - np.cos(phase + x)) / x


def test_an_integrating_converter_explains_the_table() -> None:
    """The ideal integrator: at 0.2 PLC a line sinusoid passes almost whole (worst phase
    −0.6 dB: the table's 0 dB); at 1 PLC it vanishes, and a 0.1 % line-frequency error leaves
    ≈ −60 dB (the table's 60 dB)."""
    phase = np.linspace(0, 2 * np.pi, 2001)
    g02 = np.max(np.abs(_integrated(0.2, 0.0, phase)))
    assert -1.0 < 20 * math.log10(g02) < 0.0
    assert np.max(np.abs(_integrated(1.0, 0.0, phase))) < 1e-12
    g1 = np.max(np.abs(_integrated(1.0, 1e-3, phase)))
    assert abs(20 * math.log10(g1) + 60.0) < 1.0


@pytest.mark.parametrize("nplc", sorted(MANUAL))
def test_pickup_rms_follows_the_rejection(nplc: float) -> None:
    rng = np.random.default_rng(1)
    x = pickup(rng, 1e-3, nplc, np.ones(200_000, dtype=bool))
    want = 1e-3 * 10 ** (-MANUAL[nplc] / 20) / math.sqrt(2)
    assert np.std(x) == pytest.approx(want, rel=0.01)
    assert np.all(pickup(rng, 1e-3, nplc, np.zeros(5, dtype=bool)) == 0)  # held nodes pick up nothing


def test_the_breadboard_adds_pickup_at_floating_nodes_only() -> None:
    """sim16 with 100 µV pickup: the held inputs read as without pickup, the floating nodes' scatter
    at 0.2 PLC is sqrt(σ²/0.2 + A²/2), at 1 PLC it is the meter noise alone."""
    spec = load_rig(ROOT / "protocols" / "rigs" / "sim16.toml")
    settings = {**spec.sim, "mains_pickup_v": 1e-4, "meter_resolution_v": 0.0, "drift_kelvin": 0.0}
    board = Breadboard(spec.network, spec.part, SimSettings(**settings), noise_seed=3)
    board.drive({"psu1.1": 1.0, "psu1.2": 0.3})
    chans = [spec.network.meter_channels[n] for n in ("n1", "n5", "n8")]
    for nplc, want in ((0.2, math.sqrt((2e-5) ** 2 / 0.2 + 0.5e-8)), (1.0, 2e-5)):
        reads = np.array([board.meter_read(chans, nplc) for _ in range(4000)])
        assert np.std(reads[:, 0]) == pytest.approx(2e-5 / math.sqrt(nplc), rel=0.06)  # n1 is held
        for j in (1, 2):
            assert np.std(reads[:, j]) == pytest.approx(want, rel=0.06)


def test_the_planner_picks_whole_plcs_when_pickup_would_swamp_the_dead_band() -> None:
    kw = {"alpha": 1e-3, "deadband_s": 1e-7, "sigma1_v": 2e-5, "v_scale": 1.0, "nplc_choices": METERS["DAQ970A"].nplc,
          "nplc_reread": 1.0, "plc_s": 1 / 60, "scan": ("a",), "nmr_db": METERS["DAQ970A"].nmr_db}
    assert plan_measurement(**kw).nplc_train == 0.2
    assert plan_measurement(**kw, pickup_v=2e-5).nplc_train == 0.2
    p = plan_measurement(**kw, pickup_v=1e-4)
    assert p.nplc_train == 1.0 and p.sigma_v == pytest.approx(reading_sigma(2e-5, 1.0, 1e-4, 60.0))
    with pytest.raises(ValueError, match="nmr_db"):
        plan_measurement(**{**kw, "nmr_db": None}, pickup_v=1e-4)


@pytest.mark.parametrize("pickup_v", [0.0, 2e-5, 1e-4, 3e-4])
def test_the_planners_noise_bound_holds_with_pickup(pickup_v: float) -> None:
    """Simulated readings (white noise + pickup at the plan's NPLC) of the two nodes of an edge in
    the free and clamped state: the spread of D = (ΔV^F)² − (ΔV^C)² stays within the plan's σ_D."""
    plan = plan_measurement(alpha=1e-3, deadband_s=1e-7, sigma1_v=2e-5, v_scale=1.0,
                            nplc_choices=METERS["DAQ970A"].nplc, nplc_reread=1.0, plc_s=1 / 60, scan=("a", "b"),
                            pickup_v=pickup_v, nmr_db=METERS["DAQ970A"].nmr_db)
    rng = np.random.default_rng(7)
    m = 100_000

    def read(v: float) -> np.ndarray:  # one node read m times: white noise and pickup
        return v + rng.normal(0, 2e-5 / math.sqrt(plan.nplc_train), m) + \
            pickup(rng, pickup_v, plan.nplc_train, np.ones(m, dtype=bool))

    dvf = read(0.9) - read(0.2)
    dvc = read(0.8) - read(0.25)
    d = dvf**2 - dvc**2
    assert np.std(d) <= plan.sigma_d_v2
    assert np.std(d) >= 0.2 * plan.sigma_d(np.array([0.7]), np.array([0.55]))[0]  # the bound is not vacuous


def test_negative_pickup_is_a_one_line_error(tmp_path: Path) -> None:
    text = (ROOT / "protocols" / "rigs" / "sim16.toml").read_text().replace(
        "mains_pickup_v = 0.0", "mains_pickup_v = -1e-4")
    (tmp_path / "r.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"simulator\.mains_pickup_v"):
        load_rig(tmp_path / "r.toml")
