"""Item 4 on the bench: predicted vs measured δλ_n (labnet/insilico/perturbation_bench.py, app/perturb_session.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labnet.app.perturb_session import correlation, figure, session_eigen_changes
from labnet.app.runner import run_protocol
from labnet.config.protocol import load_protocol
from labnet.core.generators import breadboard16
from labnet.core.physics import solve
from labnet.core.rules import coupled_learning
from labnet.insilico.perturbation_bench import bench_eigen_changes

ROOT = Path(__file__).resolve().parents[1]


def test_continuous_rule_prediction_matches_exact_eigenvalue_changes():
    """Noise-free continuous coupled learning: first-order theory with the rule's δk is exact to O(δk²)."""
    net = breadboard16()
    rng = np.random.default_rng(3)
    k = [rng.uniform(1e-4, 1e-3, net.n_edges)]
    vin, tgt, eta, alpha = {"n1": 1.0, "n2": 0.3}, np.array([0.25, 0.15]), 0.5, 1e-4
    vf, vc = [], []
    for _ in range(8):
        f = solve(net, k[-1], vin)
        o = f[net.indices(list(net.outputs))]
        c = solve(net, k[-1], {**vin, **dict(zip(net.outputs, o + eta * (tgt - o), strict=True))})
        vf.append(f)
        vc.append(c)
        k.append(k[-1] + coupled_learning(net.delta_v(f), net.delta_v(c), alpha=alpha, eta=eta))
    ch = bench_eigen_changes(net, np.array(k), np.array(vf), np.array(vc), alpha=alpha, eta=eta)
    assert correlation(ch.rule, ch.measured) > 0.999
    assert correlation(ch.first_order, ch.measured) > 0.999
    np.testing.assert_allclose(ch.rule, ch.first_order, rtol=1e-9, atol=1e-15)


def test_simulated_bench_session_predicted_vs_measured(tmp_path):
    """sim16 with its non-idealities, sign rule, first 5 steps. Measured (benchmarks/perturbation_bench.py,
    20 steps): first order with recorded δk and the rule's taps from measured voltages r = 1.000; the
    continuous rule 0.24-0.28 and the talk's Y-tensor formula 0.11 (voltage inputs; see the module)."""
    proto = load_protocol(ROOT / "protocols" / "allostery.toml", steps=6)
    res = run_protocol(proto, tmp_path, progress=False)
    ch, model = session_eigen_changes(res.session, 5)
    assert ch.measured.shape == (5, 7) and np.abs(ch.measured).max() > 0
    assert correlation(ch.first_order, ch.measured) > 0.99
    assert correlation(ch.taps, ch.measured) > 0.99
    figure(ch, tmp_path / "pb.png")
    assert (tmp_path / "pb.png").stat().st_size > 10_000
