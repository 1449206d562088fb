"""The worst-case edge-current bound (labnet.core.bounds) and the parts' conductance boxes.

Property tests (hypothesis): on random connected networks, random conductance boxes and random
source states (held nodes anywhere in their intervals, maybe-held nodes held or floating), no
conductance vector in the box — uniform draws, the box's corners (where the extremes of an edge
current are: it is monotone in each conductance, see the module docstring), and for small
networks *every* corner — gives a larger |current| than the bound. The part box contains every
part the simulator draws (datasheet limits: X9C102/103/104/503 datasheet FN8222, "Electrical
Specifications — Potentiometer characteristics": R_TOTAL ±20 %, R_W 100 Ω max, absolute
linearity ±1 MI, tempco ±300 ppm/°C).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labnet.core.bounds import edge_current_bound, max_weighted_mean, neighbours, node_bounds
from labnet.core.generators import breadboard16, random_network
from labnet.core.network import Network
from labnet.core.nonideal import SimSettings
from labnet.core.parts import CATALOG
from labnet.core.physics import edge_currents, solve
from simulator.breadboard import Breadboard


def _state(net: Network, rng: np.random.Generator, spread: float):
    """Random held / maybe nodes with intervals; returns arrays and a sampler of concrete states."""
    n = net.n_nodes
    others = [i for i in range(n) if i != net.index[net.ground]]
    k_held = int(rng.integers(1, max(2, len(others) // 2) + 1))
    pick = rng.choice(others, size=min(len(others), k_held + int(rng.integers(0, 3))), replace=False)
    held = np.zeros(n, bool)
    maybe = np.zeros(n, bool)
    v_lo = np.full(n, np.nan)
    v_hi = np.full(n, np.nan)
    for j, i in enumerate(pick):
        a = rng.uniform(-1, 1)
        b = a + rng.uniform(0, spread)
        v_lo[i], v_hi[i] = a, b
        (held if j < k_held else maybe)[i] = True
    g = net.index[net.ground]
    held[g], v_lo[g], v_hi[g] = True, 0.0, 0.0

    def sample() -> dict[str, float]:
        out = {}
        for i in np.flatnonzero(held | maybe):
            if i == g or (maybe[i] and rng.random() < 0.5):
                continue
            out[net.nodes[i]] = float(rng.choice([v_lo[i], v_hi[i], rng.uniform(v_lo[i], v_hi[i])]))
        return out or {net.nodes[g]: 0.0}

    return v_lo, v_hi, held, maybe, sample


def _worst(net: Network, k_lo, k_hi, pattern, rng, draws: int) -> np.ndarray:
    worst = np.zeros(net.n_edges)
    for d in range(draws):
        if d % 3 == 0:
            k = rng.uniform(k_lo, k_hi)
        else:  # box corners: where the extremes are
            k = np.where(rng.random(net.n_edges) < 0.5, k_lo, k_hi)
        worst = np.maximum(worst, np.abs(edge_currents(net, k, solve(net, k, pattern))))
    return worst


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n_nodes=st.integers(4, 12), extra=st.integers(0, 10),
       width=st.floats(0.0, 0.6), spread=st.floats(0.0, 1.0))
def test_bound_never_exceeded_by_any_draw(seed: int, n_nodes: int, extra: int, width: float, spread: float) -> None:
    rng = np.random.default_rng(seed)
    n_edges = min(n_nodes - 1 + extra, n_nodes * (n_nodes - 1) // 2)
    net = random_network(n_nodes, n_edges, seed=seed)
    k0 = 1.0 / rng.uniform(500.0, 2e4, net.n_edges)
    k_lo, k_hi = k0 * (1 - width / 2), k0 * (1 + width)
    v_lo, v_hi, held, maybe, sample = _state(net, rng, spread)
    bound = edge_current_bound(net, k_lo, k_hi, v_lo, v_hi, held, maybe)
    for _ in range(6):
        worst = _worst(net, k_lo, k_hi, sample(), rng, 40)
        assert np.all(worst <= bound * (1 + 1e-9) + 1e-15), (worst - bound).max()


@pytest.mark.parametrize("seed", range(12))
def test_bound_holds_at_every_corner_of_small_networks(seed: int) -> None:
    """Every one of the 2^E corners (the exact worst case: an edge current is monotone in each
    conductance) of 8-edge networks, at fixed patterns; the bound is also not vacuous."""
    rng = np.random.default_rng(seed)
    net = random_network(6, 8, seed=seed)
    k0 = 1.0 / rng.uniform(1e3, 1e4, net.n_edges)
    k_lo, k_hi = 0.8 * k0, 1.25 * k0
    nodes = [n for n in net.nodes if n != net.ground]
    pattern = {n: float(rng.uniform(-1, 1)) for n in rng.choice(nodes, 2, replace=False)}
    v = np.full(net.n_nodes, np.nan)
    held = np.zeros(net.n_nodes, bool)
    for n, x in {**pattern, net.ground: 0.0}.items():
        v[net.index[n]], held[net.index[n]] = x, True
    bound = edge_current_bound(net, k_lo, k_hi, v, v, held)
    corners = np.array(list(itertools.product([0, 1], repeat=net.n_edges)), bool)
    exact = np.zeros(net.n_edges)
    for c in corners:
        k = np.where(c, k_hi, k_lo)
        exact = np.maximum(exact, np.abs(edge_currents(net, k, solve(net, k, pattern))))
    assert np.all(exact <= bound * (1 + 1e-9) + 1e-15)
    # useful, not only sound: the worst edge's bound within a factor 2 of the exact worst case
    assert np.max(bound) <= 2.0 * np.max(exact)


def test_max_weighted_mean_is_exact() -> None:
    """Against brute force over every vertex of the weight box."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        d = int(rng.integers(1, 6))
        x = rng.uniform(-1, 1, (1, d))
        lo = rng.uniform(0.1, 1, (1, d))
        hi = lo * rng.uniform(1, 3, (1, d))
        brute = max(float(np.sum(np.where(c, hi, lo) * x) / np.sum(np.where(c, hi, lo)))
                    for c in itertools.product([False, True], repeat=d))
        assert max_weighted_mean(x, lo, hi)[0] == pytest.approx(brute, rel=1e-12, abs=1e-15)


def test_node_enclosure_is_sound_and_tighter_than_the_maximum_principle() -> None:
    net = breadboard16(17)
    rng = np.random.default_rng(5)
    k0 = 1.0 / rng.uniform(2e3, 9e3, net.n_edges)
    k_lo, k_hi = 0.8 * k0, 1.25 * k0
    v = np.full(net.n_nodes, np.nan)
    held = np.zeros(net.n_nodes, bool)
    pattern = {"n1": 1.0, "n2": 0.3}
    for n, x in {**pattern, net.ground: 0.0}.items():
        v[net.index[n]], held[net.index[n]] = x, True
    lo, hi = node_bounds(neighbours(net), k_lo, k_hi, v, v, held, np.zeros(net.n_nodes, bool))
    for _ in range(300):
        k = np.where(rng.random(net.n_edges) < 0.5, k_lo, k_hi)
        x = solve(net, k, pattern)
        assert np.all(x >= lo - 1e-12) and np.all(x <= hi + 1e-12)
    free = ~held
    assert np.all(hi[free] - lo[free] < 1.0)  # strictly inside [0, 1] V


@pytest.mark.parametrize("seed", [0, 17, 123, 999, 2024])
@pytest.mark.parametrize("part", ["X9C103", "X9C303", "MCP4131-103", "AD5220-10"])
def test_part_box_contains_every_simulated_part(seed: int, part: str) -> None:
    """The simulator's draws (R_AB within tolerance, R_W ±25 %, INL ±0.5 tap, ±0.5 K drift) lie
    within the datasheet box at every code and time."""
    spec = CATALOG[part]
    net = breadboard16(17)
    board = Breadboard(net, spec, SimSettings(seed=seed))
    codes = np.arange(spec.positions)
    for e in range(net.n_edges):
        c = np.zeros((spec.positions, net.n_edges), dtype=np.int64)
        c[:, e] = codes
        for t in (0.0, 900.0, 1800.0, 2700.0):
            k_true = np.array([board.conductances(row, t)[e] for row in c])
            k_lo, k_hi = spec.conductance_box(codes)
            assert np.all(k_true >= k_lo) and np.all(k_true <= k_hi)
