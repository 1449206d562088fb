"""Current-sourced (Neumann) nodes: labnet.core.currents against ngspice and against the
Keithley 2450's compliance behaviour (voltage-limited at VLIM when the load needs more).

ngspice: each seeded random network gets one DC voltage source at one input and a DC current
source (``I`` element, ``I0 0 x DC I`` pushes I into node x) at the other inputs and output;
labnet's solve must agree to 1e-9 relative.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_ngspice import _spice_name, netlist, run_ngspice

from labnet import Network, random_network
from labnet.core.currents import solve_compliant, solve_injected
from labnet.core.errors import ConfigError

RTOL = 1e-9


def _case(seed: int) -> tuple[Network, np.ndarray, dict[str, float], dict[str, float]]:
    rng = np.random.default_rng([seed, 15])
    n_edges = int(rng.integers(30, 200))
    n_nodes = int(rng.integers(max(10, n_edges // 6), n_edges // 2 + 1))
    net = random_network(n_nodes, n_edges, seed=rng, n_inputs=3, n_outputs=2)
    k = 10 ** rng.uniform(-6, -3, n_edges)
    held = {net.inputs[0]: float(rng.uniform(-2, 2))}
    inj = {n: float(rng.uniform(-1e-4, 1e-4)) for n in (*net.inputs[1:], *net.outputs)}
    return net, k, held, inj


@pytest.mark.parametrize("seed", range(8))
def test_injected_currents_agree_with_ngspice(seed: int, tmp_path: Path) -> None:
    net, k, held, inj = _case(seed)
    deck = netlist(net, k, held, tmp_path / "c.raw")
    extra = "".join(f"I{i} 0 {_spice_name(net, n)} DC {c:.17e}\n" for i, (n, c) in enumerate(inj.items()))
    deck = deck.replace(".options", extra + ".options", 1)
    spice = run_ngspice(deck, tmp_path, "c")
    ref = np.array([0.0 if n == net.ground else spice[f"v({_spice_name(net, n)})"] for n in net.nodes])
    v = solve_injected(net, k, held, inj)
    err = np.max(np.abs(v - ref)) / np.max(np.abs(ref))
    assert err < RTOL, f"seed {seed}: relative error {err:.2e}"
    lap = net.laplacian(k)
    for n, c in inj.items():  # KCL: what the network takes at a current node is the set current
        assert (lap @ v)[net.index[n]] == pytest.approx(c, rel=1e-9, abs=1e-18)


def _divider() -> tuple[Network, np.ndarray]:
    return Network(["g", "a", "b"], [("a", "b"), ("b", "g")], ground="g"), np.array([1e-3, 1e-3])


def test_below_the_limit_the_set_current_flows() -> None:
    net, k = _divider()  # 2 kΩ to ground: 1 mA needs 2 V
    v, tripped, out = solve_compliant(net, k, {}, {"a": 1e-3}, {"a": 5.0})
    assert v[net.index["a"]] == pytest.approx(2.0) and not tripped["a"] and out["a"] == 1e-3


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_above_the_limit_the_output_is_held_at_vlim(sign: float) -> None:
    # Keithley 2450 Reference Manual (2450-901-01), :SOURce[1]:CURRent:VLIMit: when the source
    # reaches the limit, the output is limited to the limit value and the trip flag is set.
    net, k = _divider()
    v, tripped, out = solve_compliant(net, k, {}, {"a": sign * 1e-3}, {"a": 1.0})
    assert v[net.index["a"]] == pytest.approx(sign * 1.0) and tripped["a"]
    assert out["a"] == pytest.approx(sign * 0.5e-3)  # 1 V across 2 kΩ


def test_two_sources_one_trips_and_the_other_keeps_its_current() -> None:
    rng = np.random.default_rng(3)
    net = random_network(12, 24, seed=rng, n_inputs=2, n_outputs=1)
    k = 10 ** rng.uniform(-4, -3, 24)
    a, b = net.inputs
    free = solve_injected(net, k, {}, {a: 1e-3, b: 1e-5})
    lim_a = 0.5 * abs(free[net.index[a]])
    v, tripped, out = solve_compliant(net, k, {}, {a: 1e-3, b: 1e-5}, {a: lim_a, b: 100.0})
    assert tripped == {a: True, b: False}
    assert abs(v[net.index[a]]) == pytest.approx(lim_a)
    assert (net.laplacian(k) @ v)[net.index[b]] == pytest.approx(1e-5)
    assert 0 < out[a] < 1e-3


def test_bad_inputs_are_one_line_errors() -> None:
    net, k = _divider()
    with pytest.raises(ConfigError, match="both held and current-driven"):
        solve_injected(net, k, {"a": 1.0}, {"a": 1e-3})
    with pytest.raises(ConfigError, match="voltage limit"):
        solve_compliant(net, k, {}, {"a": 1e-3}, {})


def _cycling_cases() -> list[tuple[Network, np.ndarray, dict[str, float], dict[str, float]]]:
    """Random networks with two positive current sources at 0.9 V limits and sources at −0.4 V and
    above (the property test of tests/test_current_inputs.py), including those on which the simple
    active-set loop cycles."""
    out = []
    for seed in range(200):
        rng = np.random.default_rng([seed, 151])
        n = int(rng.integers(8, 20))
        net = random_network(n, int(rng.integers(n + 2, min(40, n * (n - 1) // 2) + 1)), seed=rng, n_inputs=3,
                             n_outputs=1)
        k = 10 ** rng.uniform(-5, -3, net.n_edges)
        held = {net.inputs[0]: -0.4, net.outputs[0]: float(rng.uniform(-0.4, 0.8))}
        cur = {x: float(rng.uniform(0, 2e-3)) for x in net.inputs[1:]}
        out.append((net, k, held, cur))
    return out


def test_compliance_is_the_bounded_energy_minimum() -> None:
    """The compliant state minimises ½VᵀLV − IᵀV over the source nodes' voltages ≤ VLIM (the other
    free nodes eliminated): checked against SciPy's L-BFGS-B on 200 random networks (1e-6 V), among
    them those where two sources push each other past their limits (the loop alone cycles there)."""
    from scipy.optimize import minimize

    for net, k, held, cur in _cycling_cases():
        v, tripped, out = solve_compliant(net, k, held, cur, dict.fromkeys(cur, 0.9))
        lap = net.laplacian(k).toarray()
        hv = {**held, net.ground: 0.0}
        src = list(cur)
        free = [x for x in net.nodes if x not in hv]
        f_idx = net.indices(free)
        h_idx = net.indices(list(hv))
        vh = np.array(list(hv.values()))
        i_f = np.array([cur.get(x, 0.0) for x in free])
        scale = 1.0 / float(np.median(k))  # a well-scaled objective (S -> dimensionless) for L-BFGS-B
        lff, lfh, i_f = scale * lap[np.ix_(f_idx, f_idx)], scale * lap[np.ix_(f_idx, h_idx)], scale * i_f

        def energy(x: np.ndarray, lff: np.ndarray = lff, b: np.ndarray = lfh @ vh - i_f) -> tuple[float, np.ndarray]:
            return float(0.5 * x @ lff @ x + x @ b), lff @ x + b

        bounds = [(None, 0.9) if x in src else (None, None) for x in free]
        res = minimize(energy, np.zeros(len(free)), jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"ftol": 1e-15, "gtol": 1e-13, "maxiter": 20000})
        assert np.max(np.abs(res.x - v[f_idx])) < 1e-6
        for x in src:
            assert out[x] <= cur[x] * (1 + 1e-9) and (tripped[x] or out[x] == cur[x])
