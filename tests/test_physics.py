"""Physics: analytic circuits, Kirchhoff's current law, batching, clamped states, currents, power."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labnet import Network, random_network, solve
from labnet.core.errors import ConfigError
from labnet.core.generators import delaunay_network, square_lattice
from labnet.core.physics import (
    DENSE_MAX,
    Solver,
    dissipated_power,
    edge_currents,
    laplacian_dense,
    thevenin_resistance,
)


def _v(net: Network, v: np.ndarray, name: str) -> np.ndarray:
    return v[net.index[name]]


# ---------------------------------------------------------------- analytic circuits
def test_series_divider_exact() -> None:
    # a --R1-- m --R2-- g, a at 2 V: V_m = 2 · R2/(R1+R2)
    r1, r2 = 1_000.0, 3_000.0
    net = Network(["g", "a", "m"], [("a", "m"), ("m", "g")], ground="g")
    v = solve(net, np.array([1 / r1, 1 / r2]), {"a": 2.0})
    assert _v(net, v, "m") == pytest.approx(2.0 * r2 / (r1 + r2), rel=1e-14)
    assert _v(net, v, "g") == 0.0
    assert _v(net, v, "a") == 2.0


def test_series_chain_three_resistors() -> None:
    r = np.array([100.0, 200.0, 700.0])
    net = Network(["g", "a", "x", "y"], [("a", "x"), ("x", "y"), ("y", "g")], ground="g")
    v = solve(net, 1 / r, {"a": 1.0})
    i = 1.0 / r.sum()
    assert _v(net, v, "x") == pytest.approx(1.0 - i * r[0], rel=1e-14)
    assert _v(net, v, "y") == pytest.approx(i * r[2], rel=1e-14)


def test_parallel_resistors_current_and_power() -> None:
    # two resistors in parallel between a (5 V) and ground, in series with R0 from the source
    r0, ra, rb = 500.0, 1_000.0, 4_000.0
    # a Network has no duplicate edges, so the second parallel branch p–g runs through node q:
    # p –rb/2– q –rb/2– g is one branch of resistance rb.
    net = Network(["g", "s", "p", "q"], [("s", "p"), ("p", "g"), ("p", "q"), ("q", "g")], ground="g")
    k = np.array([1 / r0, 1 / ra, 1 / (rb / 2), 1 / (rb / 2)])
    v = solve(net, k, {"s": 5.0})
    r_par = 1 / (1 / ra + 1 / rb)
    vp = 5.0 * r_par / (r0 + r_par)
    assert _v(net, v, "p") == pytest.approx(vp, rel=1e-14)
    assert _v(net, v, "q") == pytest.approx(vp / 2, rel=1e-14)
    cur = edge_currents(net, k, v)
    assert cur[0] == pytest.approx((5.0 - vp) / r0, rel=1e-13)
    assert cur[1] == pytest.approx(vp / ra, rel=1e-13)
    assert cur[2] == pytest.approx(vp / rb, rel=1e-13)
    assert cur[0] == pytest.approx(cur[1] + cur[2], rel=1e-13)  # KCL at p
    # all the power comes from the one source: P = V_s · I_s
    assert dissipated_power(net, k, v) == pytest.approx(5.0 * cur[0], rel=1e-13)
    assert dissipated_power(net, k, v) == pytest.approx(5.0**2 / (r0 + r_par), rel=1e-13)


def test_wheatstone_bridge_exact() -> None:
    # top t at V, bottom g. Arms t–a (R1), a–g (R2), t–b (R3), b–g (R4), bridge a–b (R5).
    r1, r2, r3, r4, r5 = 1_000.0, 2_000.0, 3_000.0, 1_500.0, 500.0
    vs = 1.0
    net = Network(["g", "t", "a", "b"], [("t", "a"), ("a", "g"), ("t", "b"), ("b", "g"), ("a", "b")], ground="g")
    k = 1 / np.array([r1, r2, r3, r4, r5])
    v = solve(net, k, {"t": vs})
    # nodal equations solved by hand (Cramer's rule)
    g1, g2, g3, g4, g5 = k
    a11, a12, a21, a22 = g1 + g2 + g5, -g5, -g5, g3 + g4 + g5
    b1, b2 = g1 * vs, g3 * vs
    det = a11 * a22 - a12 * a21
    va = (b1 * a22 - a12 * b2) / det
    vb = (a11 * b2 - a21 * b1) / det
    assert _v(net, v, "a") == pytest.approx(va, rel=1e-13)
    assert _v(net, v, "b") == pytest.approx(vb, rel=1e-13)


def test_balanced_wheatstone_bridge_carries_no_current() -> None:
    net = Network(["g", "t", "a", "b"], [("t", "a"), ("a", "g"), ("t", "b"), ("b", "g"), ("a", "b")], ground="g")
    k = 1 / np.array([1_000.0, 2_000.0, 5_000.0, 10_000.0, 700.0])  # R1/R2 = R3/R4
    v = solve(net, k, {"t": 3.0})
    assert _v(net, v, "a") == pytest.approx(2.0, rel=1e-14)
    assert _v(net, v, "b") == pytest.approx(2.0, rel=1e-14)
    assert abs(edge_currents(net, k, v)[4]) < 1e-17


# ---------------------------------------------------------------- Kirchhoff's current law
def _kcl_residual(net: Network, k: np.ndarray, v: np.ndarray, free: np.ndarray) -> float:
    """Largest |net current into a free node| relative to the largest edge current."""
    cur = edge_currents(net, k, v)
    src, dst = net.edge_ends
    inj = np.zeros((net.n_nodes, *cur.shape[1:]))
    np.add.at(inj, src, cur)
    np.subtract.at(inj, dst, cur)
    return float(np.max(np.abs(inj[free])) / np.max(np.abs(cur)))


@settings(max_examples=40, deadline=None)
@given(
    n_nodes=st.integers(4, 60),
    extra=st.integers(0, 120),
    seed=st.integers(0, 2**31 - 1),
)
def test_kcl_random_networks(n_nodes: int, extra: int, seed: int) -> None:
    n_edges = min(n_nodes - 1 + extra, n_nodes * (n_nodes - 1) // 2)
    net = random_network(n_nodes, n_edges, seed=seed)
    rng = np.random.default_rng(seed)
    k = 10 ** rng.uniform(-6, -3, n_edges)  # 1 kΩ … 1 MΩ, three decades
    held = {n: float(rng.uniform(-1, 1)) for n in net.inputs}
    v = solve(net, k, held)
    s = Solver(net, k, list(held))
    assert _kcl_residual(net, k, v, s.free_idx) < 1e-10
    for n, val in held.items():
        assert _v(net, v, n) == val


@pytest.mark.parametrize("rows,cols", [(25, 25), (10, 60)])
def test_kcl_sparse_path(rows: int, cols: int) -> None:
    net = square_lattice(rows, cols, seed=3)
    rng = np.random.default_rng(1)
    k = 10 ** rng.uniform(-6, -3, net.n_edges)
    s = Solver(net, k, list(net.inputs))
    assert not s.dense and s.free_idx.size > DENSE_MAX
    v = s.solve({n: 1.0 for n in net.inputs})
    assert _kcl_residual(net, k, v, s.free_idx) < 1e-10


def test_dense_and_sparse_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    net = delaunay_network(300, seed=4)
    rng = np.random.default_rng(4)
    k = 10 ** rng.uniform(-6, -3, net.n_edges)
    held = {n: float(rng.uniform(0, 1)) for n in net.inputs}
    v_dense = solve(net, k, held)
    import labnet.core.physics as phys

    monkeypatch.setattr(phys, "DENSE_MAX", 10)
    assert not Solver(net, k, list(held)).dense
    v_sparse = solve(net, k, held)
    np.testing.assert_allclose(v_sparse, v_dense, rtol=1e-11, atol=1e-14)


def test_against_dense_pseudo_inverse_free() -> None:
    net = random_network(12, 30, seed=9)
    rng = np.random.default_rng(9)
    k = rng.uniform(1e-4, 1e-3, net.n_edges)
    held = {net.inputs[0]: 1.0, net.inputs[1]: -0.5}
    v = solve(net, k, held)
    lap = laplacian_dense(net, k)
    h = net.indices([net.ground, *held])
    f = np.setdiff1d(np.arange(net.n_nodes), h)
    vh = np.array([0.0, 1.0, -0.5])
    expect = np.linalg.solve(lap[np.ix_(f, f)], -lap[np.ix_(f, h)] @ vh)
    np.testing.assert_allclose(v[f], expect, rtol=1e-12)


# ---------------------------------------------------------------- batches
def test_batched_held_values_match_single_solves() -> None:
    net = random_network(20, 45, seed=2)
    rng = np.random.default_rng(2)
    k = 10 ** rng.uniform(-5, -3, net.n_edges)
    b = 7
    a = rng.uniform(0, 1, b)
    held = {net.inputs[0]: a, net.inputs[1]: 0.25}  # an array and a scalar broadcast together
    v = solve(net, k, held)
    assert v.shape == (net.n_nodes, b)
    for j in range(b):
        vj = solve(net, k, {net.inputs[0]: float(a[j]), net.inputs[1]: 0.25})
        np.testing.assert_allclose(v[:, j], vj, rtol=1e-13, atol=1e-15)
    cur = edge_currents(net, k, v)
    assert cur.shape == (net.n_edges, b)
    p = dissipated_power(net, k, v)
    assert p.shape == (b,)


def test_held_values_must_be_scalar_or_1d() -> None:
    net = random_network(6, 8, seed=0)
    with pytest.raises(ConfigError):
        solve(net, np.ones(8) * 1e-3, {net.inputs[0]: np.ones((2, 2)), net.inputs[1]: 0.0})


def test_missing_held_value_and_bad_conductances() -> None:
    net = random_network(6, 8, seed=0)
    s = Solver(net, np.ones(8) * 1e-3, list(net.inputs))
    with pytest.raises(ConfigError):
        s.solve({net.inputs[0]: 1.0})
    with pytest.raises(ConfigError):
        Solver(net, -np.ones(8), list(net.inputs))
    with pytest.raises(ConfigError):
        Solver(net, np.ones(7), list(net.inputs))


# ---------------------------------------------------------------- clamped state
@pytest.mark.parametrize("size", ["dense", "sparse"])
def test_clamped_matches_fresh_solve(size: str) -> None:
    net = random_network(40, 90, seed=5, n_inputs=2, n_outputs=3) if size == "dense" else delaunay_network(
        700, seed=5, n_inputs=2, n_outputs=3
    )
    rng = np.random.default_rng(5)
    k = 10 ** rng.uniform(-6, -3, net.n_edges)
    b = 4
    held = {n: rng.uniform(0, 1, b) for n in net.inputs}
    clamp = {n: rng.uniform(0, 1, b) for n in net.outputs}
    s = Solver(net, k, list(net.inputs))
    assert s.dense == (size == "dense")
    vc = s.clamped(held, clamp)
    fresh = solve(net, k, {**held, **clamp})
    np.testing.assert_allclose(vc, fresh, rtol=1e-10, atol=1e-13)
    # the clamp set's border is cached: a second call with other values is still right
    clamp2 = {n: v * 0.5 for n, v in clamp.items()}
    np.testing.assert_allclose(s.clamped(held, clamp2), solve(net, k, {**held, **clamp2}), rtol=1e-10, atol=1e-13)


def test_clamped_rejects_held_node() -> None:
    net = random_network(10, 20, seed=1)
    s = Solver(net, np.ones(20) * 1e-3, list(net.inputs))
    with pytest.raises(ConfigError):
        s.clamped({n: 1.0 for n in net.inputs}, {net.inputs[0]: 0.5})


# ---------------------------------------------------------------- currents and power
def test_power_equals_sum_of_source_v_times_i() -> None:
    net = delaunay_network(80, seed=8, n_inputs=3)
    rng = np.random.default_rng(8)
    k = 10 ** rng.uniform(-6, -3, net.n_edges)
    b = 5
    held = {n: rng.uniform(-1, 1, b) for n in net.inputs}
    v = solve(net, k, held)
    # current each source pushes into the network = Σ currents leaving its node along edges
    cur = edge_currents(net, k, v)
    src, dst = net.edge_ends
    out = np.zeros((net.n_nodes, b))
    np.add.at(out, src, cur)
    np.subtract.at(out, dst, cur)
    supplied = sum(v[net.index[n]] * out[net.index[n]] for n in net.inputs)  # ground sources at 0 V
    np.testing.assert_allclose(dissipated_power(net, k, v), supplied, rtol=1e-10)
    assert np.all(dissipated_power(net, k, v) > 0)
    # and edge by edge: P = Σ I²/k
    np.testing.assert_allclose(dissipated_power(net, k, v), (cur**2 / k[:, None]).sum(axis=0), rtol=1e-12)


def test_edge_current_direction_convention() -> None:
    net = Network(["g", "a"], [("g", "a")], ground="g")  # from-node is g
    v = solve(net, np.array([2e-3]), {"a": 1.0})
    assert edge_currents(net, np.array([2e-3]), v)[0] == pytest.approx(-2e-3)


def test_thevenin_resistance_series_chain() -> None:
    # a (held) –1k– x –2k– g: seen from x the held nodes are 1k ∥ 2k
    net = Network(["g", "a", "x"], [("a", "x"), ("x", "g")], ground="g")
    s = Solver(net, 1 / np.array([1_000.0, 2_000.0]), ["a"])
    assert thevenin_resistance(s, ["x"])[0] == pytest.approx(1 / (1 / 1_000 + 1 / 2_000), rel=1e-13)
    assert thevenin_resistance(s, ["a"])[0] == 0.0
