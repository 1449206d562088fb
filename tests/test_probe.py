"""Probe: measured D_eff on the simulated rig against the model from the true conductances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labnet.app.build import build_rig
from labnet.app.cli import main
from labnet.config.rigfile import load_rig
from labnet.core.analysis import empirical_covariance, participation_ratio
from labnet.experiments.probe import model_probe, probe_stats, run_probe
from labnet.experiments.settings import ProbeSettings

ROOT = Path(__file__).resolve().parent.parent
RIG = ROOT / "protocols" / "rigs" / "sim16.toml"


def truth_board(rig):
    board = getattr(rig.digipots, "board", None)
    if board is not None:
        return board
    from simulator.bench import get_bench

    return get_bench(rig.extra["sim_bench"]).model


def test_probe_stats_on_known_covariance():
    rng = np.random.default_rng(0)
    applied = rng.uniform(0, 1, (4000, 3))
    resp = applied @ np.diag([1.0, 0.5, 0.1])
    s = probe_stats(applied, resp, rng, 100)
    expect = participation_ratio(np.diag([1.0, 0.25, 0.01]))
    assert s["deff"] == pytest.approx(expect, abs=3 * s["deff_sd"] + 1e-3)
    assert s["gain"] == pytest.approx(np.sqrt(1.26 / 3), rel=0.03)
    assert s["deff_ci"][0] < s["deff"] < s["deff_ci"][1]
    assert participation_ratio(empirical_covariance(resp)) == pytest.approx(s["deff"])


@pytest.mark.parametrize("drive", [("n1", "n2"), ("n1", "n2", "n5", "n7")])
def test_measured_deff_agrees_with_true_model_within_error_bar(drive):
    rig = build_rig(load_rig(RIG), sim_seed=5)
    settings = ProbeSettings(samples=150, drive=drive, v_max=0.5, bootstrap=300)
    with rig:
        rig.write_codes(np.random.default_rng(1).integers(20, 90, rig.network.n_edges))
        res = run_probe(rig, settings, np.random.default_rng(2))
        k_true = truth_board(rig).conductances()
    deff, gain = model_probe(rig.network, k_true, settings, res.free_nodes)
    assert len(res.applied) == 150 and res.responses.shape == (150, rig.network.n_nodes - 1 - len(drive))
    print(f"\nprobe {drive}: measured D_eff {res.deff:.4f} ± {res.deff_sd:.4f}, model from true k {deff:.4f}")
    assert abs(res.deff - deff) < 2.5 * res.deff_sd
    assert abs(res.gain - gain) < 2.5 * res.gain_sd
    assert res.deff_sd > 0 and 1.0 <= res.deff <= len(drive)


def test_probe_cli_writes_session(tmp_path, capsys):
    assert main(["probe", str(ROOT / "protocols" / "probe.toml"), "--samples", "30", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "D_eff(probe)" in out and "measured" in out and "random voltages at" in out
    folder = next(tmp_path.iterdir())
    import pandas as pd

    rows = pd.read_csv(folder / "session.csv", comment="#")
    summ = pd.read_csv(folder / "probe.csv", comment="#")
    assert len(rows) == 30 and {"set_n1", "v_n9", "code_e15"} <= set(rows.columns)
    assert summ["deff"].iloc[0] >= 1.0 and summ["model_deff"].iloc[0] >= 1.0


def test_probe_protocol_rejects_undrivable_node(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text(f'[protocol]\nkind = "probe"\nrig = "{RIG}"\n[probe]\ndrive = ["n9"]\n')
    assert main(["probe", str(p), "--out", str(tmp_path)]) == 2


def test_bootstrap_error_bar_is_calibrated_over_repeated_probes():
    """Over repeated probes (fresh noise and patterns) the error bar covers the true-model D_eff
    about as often as a 1σ bar should."""
    from labnet.config.probe_file import load_probe_protocol

    proto = load_probe_protocol(ROOT / "protocols" / "probe.toml")
    settings = ProbeSettings(samples=100, drive=proto.settings.drive, v_max=0.5, bootstrap=200)
    z = []
    for seed in range(12):
        rig = build_rig(proto.rig, sim_seed=seed, network=proto.network)
        with rig:
            rig.write_codes(np.full(rig.network.n_edges, 49))
            res = run_probe(rig, settings, np.random.default_rng([seed, 23]))
            k_true = truth_board(rig).conductances()
        z.append((res.deff - model_probe(rig.network, k_true, settings, res.free_nodes)[0]) / res.deff_sd)
    z = np.abs(np.array(z))
    print(f"\n12 probes: |measured − model| within 1σ in {int(np.sum(z < 1))}, within 2σ in {int(np.sum(z < 2))}")
    assert np.sum(z < 1) >= 6
    assert np.all(z < 3)
