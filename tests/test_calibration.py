"""Calibration: part-model fits, identifiability of the sweep design, the table, and an
end-to-end calibration of the simulated 16-edge rig against the simulator's truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labnet.app.build import build_rig
from labnet.config.rigfile import load_rig
from labnet.config.tables import table_binding
from labnet.core.conductance import PartModel
from labnet.core.errors import ConfigError
from labnet.core.parts import get_part
from labnet.core.physics import Solver
from labnet.experiments.calibration import (
    CalibrationSettings,
    CalibrationTable,
    PatternData,
    calibrate,
    fit_part,
    joint_system,
    solve_conductances,
    source_patterns,
    sweep_design,
)

ROOT = Path(__file__).resolve().parent.parent
RIG = ROOT / "protocols" / "rigs" / "sim16.toml"


def truth_board(rig):
    """The simulator's Breadboard behind a simulated rig (wire-less, or through the emulated wire)."""
    board = getattr(rig.digipots, "board", None)
    if board is not None:
        return board
    from simulator.bench import get_bench

    return get_bench(rig.extra["sim_bench"]).model


def _simulate(network, k_of_codes, design, patterns):
    """Noise-free measured patterns (voltages and source currents) for each code vector."""
    out = []
    for codes in design:
        k = k_of_codes(codes)
        data = []
        for pat in patterns:
            v = Solver(network, k, list(pat)).solve(dict(pat))
            inj = network.laplacian(k) @ v
            data.append(PatternData(dict(pat), v, np.array([inj[network.index[n]] for n in pat])))
        out.append((codes, data))
    return out


def test_fit_part_recovers_linear_and_inl_parameters():
    codes = np.array([10, 28, 46, 63, 81, 99])
    n = 99
    r = codes / n * 9000.0 + 45.0 + 30.0 * np.sin(np.pi * codes / n)
    k = 1 / r
    f = fit_part(codes, k, k * 1e-5, n, "auto")
    assert f.corrected
    assert f.r_ab_ohm == pytest.approx(9000.0, rel=1e-6)
    assert f.r_w_ohm == pytest.approx(45.0, abs=1e-3)
    assert f.inl_ohm == pytest.approx(30.0, abs=1e-3)
    lin = fit_part(codes, 1 / (codes / n * 9000.0 + 45.0), k * 1e-5, n, "auto")
    assert not lin.corrected and lin.r_ab_ohm == pytest.approx(9000.0, rel=1e-6)


def test_single_code_vector_leaves_sourceless_cluster_undetermined_but_grouped_sweep_does_not():
    spec = load_rig(RIG)
    net = spec.network
    model = PartModel(spec.part, net.n_edges, r_ab_ohm=np.linspace(8e3, 12e3, net.n_edges))
    pats = source_patterns(net)
    one = _simulate(net, model.conductance, [np.full(net.n_edges, 46)], pats)
    fit1 = solve_conductances(net, one, noise_v=1e-6)
    # n8, n9 have no source: their edges and the parallel edge n6-n7 trade off exactly
    assert fit1.rank_deficit >= 1
    groups = [[0, 1, 3, 4, 7, 8, 12, 15], [2, 5, 6, 9, 10, 11, 13, 14]]
    design = sweep_design(net.n_edges, np.array([10, 46, 99]), 46, groups)
    many = _simulate(net, model.conductance, design, pats)
    fit = solve_conductances(net, many, noise_v=1e-6)
    assert fit.rank_deficit == 0
    truth = np.array([model.conductance(np.full(net.n_edges, c))[j] for j, c in fit.keys])
    assert np.max(np.abs(fit.k / truth - 1)) < 1e-6
    mat, b, _, keys = joint_system(net, many, use_currents=True)
    assert mat.shape[1] == len(keys) == net.n_edges * 3


def test_nominal_scale_recovers_ratios_without_currents():
    spec = load_rig(RIG)
    net = spec.network
    true = PartModel(spec.part, net.n_edges, r_ab_ohm=np.linspace(9e3, 11.5e3, net.n_edges))
    groups = [[0, 1, 3, 4, 7, 8, 12, 15], [2, 5, 6, 9, 10, 11, 13, 14]]
    design = sweep_design(net.n_edges, np.array([10, 46, 99]), 46, groups)
    meas = [(c, [PatternData(d.held, d.voltages, None) for d in data])
            for c, data in _simulate(net, true.conductance, design, source_patterns(net))]
    nominal = PartModel(spec.part, net.n_edges)
    fit = solve_conductances(net, meas, noise_v=1e-6, scale="source_current", k_nominal=nominal)
    assert fit.scale == "nominal"  # no currents: falls back
    truth = np.array([true.conductance(np.full(net.n_edges, c))[j] for j, c in fit.keys])
    ratio = fit.k / truth
    assert np.std(ratio) / np.mean(ratio) < 1e-6  # exact up to one global factor
    assert abs(np.mean(ratio) - 1) < 0.1  # the factor: the parts' mean tolerance


def test_table_csv_roundtrip_and_slope(tmp_path):
    part = get_part("X9C103")
    m = PartModel(part, 3, r_ab_ohm=np.array([9e3, 1e4, 1.1e4]))
    codes = np.arange(part.positions)
    k = np.array([[m.conductance(np.full(3, c))[j] for c in codes] for j in range(3)])
    t = CalibrationTable(k, k * 1e-3, {"rig": "x"})
    p = t.to_csv(tmp_path / "calibration.csv")
    back = CalibrationTable.from_csv(p, 3)
    assert np.allclose(back.k, k) and back.meta["rig"] == "x"
    c = np.array([10, 50, 99])
    assert np.allclose(back.conductance(c), m.conductance(c))
    assert np.all(back.slope(c) < 0)
    assert np.allclose(back.slope(c), m.conductance(np.minimum(c + 1, 99)) - m.conductance(np.where(c == 99, 98, c)))
    with pytest.raises(ConfigError):
        CalibrationTable.from_csv(p, 4)


def test_table_with_the_old_siemens_column_names_is_refused_naming_the_new_ones(tmp_path):
    k = np.full((2, 100), 1e-4)
    p = CalibrationTable(k, k * 1e-3, {}).to_csv(tmp_path / "calibration.csv")
    text = p.read_text(encoding="utf-8")
    assert "edge,code,conductance_siemens,sigma_siemens\n" in text
    old = tmp_path / "old.csv"
    old.write_text(text.replace("conductance_siemens,sigma_siemens", "conductance_s,sigma_s"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"old.csv: conductance_s: renamed to 'conductance_siemens'"):
        CalibrationTable.from_csv(old, 2)


@pytest.fixture(scope="module")
def calibrated():
    rig = build_rig(load_rig(RIG), sim_seed=3)
    assert truth_board(rig).settings.meter_noise_v > 0  # meter noise on
    with rig:
        res = calibrate(rig, CalibrationSettings(codes=(10, 40, 69, 99), meter_input_ohm=1e7), seed=0)
    # bound to its rig as `labnet calibrate` binds it (an unbound table is refused: labnet.config.tables)
    res.table.meta["binding"] = table_binding(load_rig(RIG), rig.digipots.identity(), 3)
    return rig, res


def test_calibration_recovers_true_conductances_within_2_percent(calibrated):
    rig, res = calibrated
    board = truth_board(rig)
    lim = rig.limits
    errs = []
    for c in range(lim.code_min, lim.code_max + 1):
        codes = np.full(rig.network.n_edges, c)
        errs.append(np.abs(res.table.conductance(codes) / board.conductances(codes) - 1))
    errs = np.array(errs)
    print(f"\ncalibration vs truth over codes {lim.code_min}..{lim.code_max}, all edges: median "
          f"{np.median(errs):.2e}, 90th pct {np.percentile(errs, 90):.2e}, max {errs.max():.2e}; "
          f"bench {res.bench_s:.1f} s (modelled), {res.n_states} scans")
    assert np.median(errs) < 0.02
    assert np.percentile(errs, 90) < 0.02
    nominal = PartModel(rig.part, rig.network.n_edges)
    nom_err = np.median(np.abs(nominal.conductance(np.full(16, 50)) / board.conductances(np.full(16, 50)) - 1))
    assert nom_err > 5 * np.median(errs)  # the table is far better than the datasheet
    assert res.bench_s < 600  # minutes of modelled bench time, not hours
    assert res.points.rank_deficit == 0


def test_calibration_respects_limits_and_restores_codes(calibrated):
    rig, res = calibrated
    # every pattern was checked by Rig.apply; the design scaled them to half the rating
    assert np.all(rig.codes == truth_board(rig).codes)
    assert rig.held == {}


def test_protocol_calibration_table_reference(tmp_path, calibrated):
    from labnet.config.protocol import load_protocol

    _, res = calibrated
    res.table.to_csv(tmp_path / "cal.csv")
    text = (ROOT / "protocols" / "allostery.toml").read_text().replace('rig = "rigs/sim16.toml"', f'rig = "{RIG}"')
    (tmp_path / "p.toml").write_text(text + '\n[calibration]\ntable = "cal.csv"\n')
    proto = load_protocol(tmp_path / "p.toml")
    assert Path(proto.extra["calibration"]["table"]).name == "cal.csv"
    (tmp_path / "q.toml").write_text(text + '\n[calibration]\ntable = "missing.csv"\n')
    with pytest.raises(ConfigError, match="calibration.table"):
        load_protocol(tmp_path / "q.toml")


def _train(tmp_path: Path, name: str, seed: int, table: Path | None) -> float:
    from labnet.app.runner import run_protocol
    from labnet.config.protocol import load_protocol

    text = (f'[protocol]\nname = "{name}"\nkind = "train"\nrig = "{RIG}"\nseed = {seed}\n'
            '[task]\nkind = "allostery"\ninputs_v = [1.0, 0.3]\ntargets_v = [0.25, 0.15]\n'
            '[rule]\nkind = "stochastic"\neta = 0.5\nalpha = 2e-3\nmax_taps = 4\n'
            '[train]\nsteps = 150\neval_every = 50\n')
    if table is not None:
        text += f'[calibration]\ntable = "{table}"\n'
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    out = run_protocol(load_protocol(p), tmp_path / "s", progress=False)
    return out.result.final.train["mse"]


def test_calibration_table_lowers_final_training_error(tmp_path, calibrated):
    """The stochastic rule turns Δk (S) into taps with the model's slope: true slopes train better."""
    _, res = calibrated
    table = res.table.to_csv(tmp_path / "calibration.csv")
    for seed in (1, 2):
        nominal = _train(tmp_path, f"nominal{seed}", seed, None)
        calibrated_err = _train(tmp_path, f"table{seed}", seed, table)
        print(f"\nseed {seed}: final train error with table {calibrated_err:.3e} V², nominal {nominal:.3e} V²")
        assert calibrated_err < nominal, (seed, calibrated_err, nominal)
