"""Agreement with ngspice: an independent circuit simulator checks labnet's Kirchhoff solve.

For each seeded random network (50–500 edges, conductances log-uniform over three decades,
1 kΩ … 1 MΩ) a SPICE netlist is written — one R element per edge, one DC voltage source per
held node — and ngspice computes the operating point (``ngspice -b``, ``op`` in a ``.control``
block, node voltages written to an ASCII raw file with 16 significant digits). labnet must
agree to 1e-6 relative. ngspice comes from Debian (CI installs it and a missing ngspice fails there; elsewhere the
tests skip with that reason: tests/external.py).
"""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from external import need

from labnet import Network, random_network, solve

N_NETWORKS = 24
RTOL = 1e-6

NGSPICE = shutil.which("ngspice")


def _spice_name(net: Network, node: str) -> str:
    return "0" if node == net.ground else f"x{net.index[node]}"


def netlist(net: Network, k: np.ndarray, held: dict[str, float], raw: Path) -> str:
    """SPICE deck for ``net`` with conductances ``k`` (S) and sources at the ``held`` nodes (V)."""
    lines = [f"* labnet network: {net.n_nodes} nodes, {net.n_edges} edges"]
    for j, (a, b) in enumerate(net.edges):
        lines.append(f"R{j} {_spice_name(net, a)} {_spice_name(net, b)} {1.0 / k[j]:.17e}")
    for i, (n, v) in enumerate(held.items()):
        lines.append(f"V{i} {_spice_name(net, n)} 0 DC {v:.17e}")
    lines += [
        ".options reltol=1e-12 abstol=1e-18 vntol=1e-15 gmin=1e-30",
        ".control",
        "set filetype=ascii",
        "op",
        f"write {raw} all",
        "quit 0",
        ".endc",
        ".end",
    ]
    return "\n".join(lines) + "\n"


def parse_raw(text: str) -> dict[str, float]:
    """Variables of a one-point ASCII raw file: name -> value."""
    lines = text.splitlines()
    i = next(n for n, s in enumerate(lines) if s.startswith("Variables:"))
    j = next(n for n, s in enumerate(lines) if s.startswith("Values:"))
    names = [s.split()[1].lower() for s in lines[i + 1 : j]]
    vals: list[float] = []
    for s in lines[j + 1 :]:
        parts = s.split()
        if parts:
            vals.append(float(parts[-1]))
    assert len(vals) == len(names), (len(vals), len(names))
    return dict(zip(names, vals))


def run_ngspice(deck: str, workdir: Path, tag: str) -> dict[str, float]:
    need("ngspice", apt="ngspice", why="the circuit-physics cross-check against SPICE")
    cir = workdir / f"{tag}.cir"
    raw = workdir / f"{tag}.raw"
    cir.write_text(deck)
    proc = subprocess.run([NGSPICE or "ngspice", "-b", str(cir)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert raw.exists(), proc.stdout + proc.stderr
    return parse_raw(raw.read_text())


def _case(seed: int) -> tuple[Network, np.ndarray, dict[str, float]]:
    rng = np.random.default_rng([seed, 2024])
    n_edges = int(rng.integers(50, 501))
    n_nodes = int(rng.integers(max(12, n_edges // 6), n_edges // 2 + 1))
    net = random_network(n_nodes, n_edges, seed=rng, n_inputs=int(rng.integers(1, 4)), n_outputs=1)
    k = 10 ** rng.uniform(-6, -3, n_edges)  # log-uniform over three decades
    held = {n: float(rng.uniform(-2, 2)) for n in net.inputs}
    return net, k, held


@pytest.fixture(scope="module")
def spice_results(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Network, np.ndarray, dict[str, float], dict]]:
    need("ngspice", apt="ngspice", why="the circuit-physics cross-check against SPICE")
    work = tmp_path_factory.mktemp("ngspice")
    cases = [_case(s) for s in range(N_NETWORKS)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        outs = list(
            pool.map(lambda sc: run_ngspice(netlist(*sc[1], work / f"c{sc[0]}.raw"), work, f"c{sc[0]}"), enumerate(cases))
        )
    return [(*c, o) for c, o in zip(cases, outs)]


def test_cases_span_the_required_range(spice_results: list) -> None:
    sizes = [net.n_edges for net, *_ in spice_results]
    assert len(sizes) >= 20
    assert min(sizes) >= 50 and max(sizes) <= 500
    assert max(sizes) - min(sizes) > 200
    spread = [np.log10(k.max() / k.min()) for _, k, *_ in spice_results]
    assert min(spread) > 2.5  # conductances spread over (nearly) three decades in every case


def test_node_voltages_agree_with_ngspice(spice_results: list) -> None:
    worst = 0.0
    for net, k, held, spice in spice_results:
        v = solve(net, k, held)
        ref = np.array([0.0 if n == net.ground else spice[f"v({_spice_name(net, n)})"] for n in net.nodes])
        scale = max(abs(x) for x in held.values())
        err = np.max(np.abs(v - ref) / np.maximum(np.abs(ref), 1e-3 * scale))
        worst = max(worst, float(err))
        assert err < RTOL, f"{net}: relative error {err:.2e}"
    assert worst < RTOL


def test_source_currents_agree_with_ngspice(spice_results: list) -> None:
    for net, k, held, spice in spice_results:
        v = solve(net, k, held)
        inj = net.laplacian(k) @ v  # current pushed into the network at each node (A)
        for i, n in enumerate(held):
            # SPICE reports the current flowing into the source's + terminal: minus what it supplies
            assert -spice[f"i(v{i})"] == pytest.approx(inj[net.index[n]], rel=RTOL, abs=1e-15)


def test_netlist_parser_on_a_divider(tmp_path: Path) -> None:
    net = Network(["g", "a", "m"], [("a", "m"), ("m", "g")], ground="g")
    k = np.array([1e-3, 1e-3 / 3])
    out = run_ngspice(netlist(net, k, {"a": 1.0}, tmp_path / "d.raw"), tmp_path, "d")
    assert out["v(x2)"] == pytest.approx(0.75, rel=1e-12)
    assert out["i(v0)"] == pytest.approx(-1.0 / 4000.0, rel=1e-12)
