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
