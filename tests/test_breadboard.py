"""The simulator's physical model: a meter reading is the loaded node voltage the circuit
equations give, on the dense path and on the sparse one, and the part model stays physical."""

from __future__ import annotations

import numpy as np
import pytest

import labnet.core.physics as physics
from labnet.core.errors import ConfigError
from labnet.core.generators import random_edges
from labnet.core.network import Network
from labnet.core.parts import get_part
from labnet.core.physics import Solver, thevenin_resistance
from simulator.breadboard import Breadboard, SimSettings

QUIET = {"meter_noise_v": 0.0, "meter_resolution_v": 0.0}  # drift, tolerance, INL, loading stay on


def _board(n_nodes: int, n_edges: int, seed: int, **settings: float) -> Breadboard:
    rng = np.random.default_rng(seed)
    nodes = [f"n{i}" for i in range(n_nodes)]
    edges = [(nodes[a], nodes[b]) for a, b in random_edges(n_nodes, n_edges, rng)]
    net = Network(nodes, edges, ground="n0", inputs=["n1", "n2"], outputs=["n3"],
                  edge_channels=list(range(n_edges)),
                  meter_channels={n: str(101 + i) for i, n in enumerate(nodes)},
                  source_channels={n: f"psu.{i}" for i, n in enumerate(nodes[1:5], start=1)})
    bb = Breadboard(net, get_part("X9C103"), SimSettings(seed=seed, **{**QUIET, **settings}))
    bb.set_codes(range(n_edges), rng.integers(10, 100, n_edges))
    bb.clock.sleep(float(rng.uniform(0, 3600)))  # somewhere on the drift cycle
    return bb


def _expected(bb: Breadboard, channels: list[str]) -> np.ndarray:
    """What the meter must read: V_i/(1 + R_th,i/R_in) at free nodes, the source at driven ones."""
    held = bb.held_voltages()
    nodes = [bb.node_of_meter(c) for c in channels]
    solver = Solver(bb.network, bb.conductances(), sorted(held))
    v = solver.solve(held)[bb.network.indices(nodes)]
    r_th = thevenin_resistance(solver, nodes)
    return v / (1 + r_th / bb.settings.meter_input_ohm)


@pytest.mark.parametrize("dense_max", [physics.DENSE_MAX, 0])
@pytest.mark.parametrize("seed", range(6))
def test_reading_is_the_loaded_node_voltage(seed: int, dense_max: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(physics, "DENSE_MAX", dense_max)  # 0: every solve on the sparse path
    bb = _board(12 + 6 * seed, 20 + 14 * seed, seed)
    rng = np.random.default_rng(seed + 100)
    chans = [str(101 + i) for i in rng.permutation(bb.network.n_nodes)]  # any order, all nodes
    for driven in ({"psu.1": 1.0, "psu.2": 0.3}, {"psu.1": 0.8, "psu.2": 0.1, "psu.3": 0.25, "psu.4": 0.4}):
        bb.drive(driven)
        got = bb.meter_read(chans)
        want = _expected(bb, chans)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
        held = bb.held_voltages()
        for c, g in zip(chans, got):  # a driven node reads its source (source errors included)
            if bb.node_of_meter(c) in held:
                assert g == held[bb.node_of_meter(c)]
        # the loading is really there: without the meter's input resistance the reading differs
        assert np.max(np.abs(got - bb.node_voltages()[bb.network.indices([bb.node_of_meter(c) for c in chans])])) > 1e-7


def test_readings_follow_the_wipers_and_the_drift() -> None:
    bb = _board(10, 16, 3)
    bb.drive({"psu.1": 1.0})
    chans = ["104", "105"]
    a = bb.meter_read(chans)
    bb.set_code(0, 10 if bb.codes[0] != 10 else 90)
    b = bb.meter_read(chans)
    bb.clock.sleep(900.0)  # a quarter of the drift period
    c = bb.meter_read(chans)
    assert not np.array_equal(a, b) and not np.array_equal(b, c)
    np.testing.assert_allclose(c, _expected(bb, chans), rtol=1e-12)


def test_noise_and_resolution() -> None:
    bb = _board(10, 16, 4, meter_noise_v=2e-5, meter_resolution_v=1e-6)
    bb.drive({"psu.1": 1.0, "psu.2": 0.3})
    chans = [str(101 + i) for i in range(10)]
    reads = np.array([bb.meter_read(chans) for _ in range(400)])
    np.testing.assert_allclose(np.round(reads / 1e-6) * 1e-6, reads, rtol=0, atol=1e-12)  # on the 1 µV grid
    free = [i for i in range(10) if f"n{i}" not in bb.held_voltages()]
    sd = reads[:, free].std(axis=0)
    assert np.all((sd > 1.6e-5) & (sd < 2.4e-5))  # 20 µV rms at 1 PLC
    np.testing.assert_allclose(reads.mean(axis=0), _expected(bb, chans), atol=5e-6)


def test_unphysical_parts_are_refused() -> None:
    with pytest.raises(ConfigError, match="wiper_spread"):
        _board(10, 16, 0, wiper_spread=1.5)  # R_W drawn below 0 Ω
    bb = _board(10, 16, 0, inl_taps=60.0)  # INL larger than the code itself near code 0
    with pytest.raises(ConfigError, match="inl_taps"):
        bb.resistance(np.full(16, 1))
