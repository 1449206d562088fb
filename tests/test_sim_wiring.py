"""The simulator's wiring faults are in the physics: ngspice on the circuit as built agrees.

The netlist is written here from the fault description itself (not from ``simulator/wiring.py``):
each edge position gets the resistor of the digipot that really sits there (swapped pairs
exchanged), an open edge its insulation leakage (1 GΩ, ``OPEN_OHM``), a shorted edge a 0.1 Ω wire, a loaded node a
resistor to ground; sources are DC voltage sources. The model's node voltages must agree with
ngspice's operating point, and a swapped meter lead must read the other node.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from test_ngspice import parse_raw, run_ngspice  # noqa: F401 - parse_raw used by run_ngspice

from labnet.config.rigfile import load_rig
from labnet.core.nonideal import SimSettings
from labnet.core.wiring import OPEN_OHM, SHORT_OHM, WiringFaults
from simulator.breadboard import Breadboard

ROOT = Path(__file__).resolve().parent.parent
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"
QUIET = {"meter_noise_v": 0.0, "meter_resolution_v": 0.0, "meter_input_ohm": 0.0, "drift_kelvin": 0.0}

FAULTS = WiringFaults(open_edges=(3,), shorted_edges=(14,), swapped_edges=((2, 9), (0, 13)),
                      swapped_meter_channels=(("104", "109"),), loaded_nodes=(("n5", 2200.0), ("n1", 1500.0)))


def _deck(net, r_parts: np.ndarray, faults: WiringFaults, held: dict[str, float], raw: Path) -> str:
    def name(n: str) -> str:
        return "0" if n == net.ground else f"x{net.index[n]}"

    at = list(range(net.n_edges))  # at[p]: the part sitting at position p
    for a, b in faults.swapped_edges:
        at[a], at[b] = at[b], at[a]
    lines = ["* sim16 as wired"]
    for p, (a, b) in enumerate(net.edges):
        r = SHORT_OHM if p in faults.shorted_edges else OPEN_OHM if p in faults.open_edges else r_parts[at[p]]
        lines.append(f"R{p} {name(a)} {name(b)} {r:.17e}")
    for i, (n, ohm) in enumerate(faults.loaded_nodes):
        lines.append(f"RL{i} {name(n)} 0 {ohm:.17e}")
    for i, (n, v) in enumerate(held.items()):
        lines.append(f"V{i} {name(n)} 0 DC {v:.17e}")
    lines += [".options reltol=1e-12 abstol=1e-18 vntol=1e-15 gmin=1e-30", ".control", "set filetype=ascii",
              "op", f"write {raw} all", "quit 0", ".endc", ".end"]
    return "\n".join(lines) + "\n"


@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not installed")
@pytest.mark.parametrize("driven", [{"psu1.1": 0.8}, {"psu1.2": 0.6, "psu2.2": 0.0}, {"smu.1": 0.9, "psu1.3": 0.2}])
def test_faulted_board_agrees_with_ngspice(driven: dict[str, float], tmp_path: Path) -> None:
    spec = load_rig(SIM16)
    net = spec.network
    board = Breadboard(net, spec.part, SimSettings(**{**spec.sim, **QUIET, "wiring": FAULTS}), noise_seed=1)
    board.set_codes(list(range(net.n_edges)), list(np.linspace(20, 95, net.n_edges).astype(int)))
    board.drive(driven)
    held = board.held_voltages()
    got = run_ngspice(_deck(net, board.resistance(), FAULTS, held, tmp_path / "w.raw"), tmp_path, "w")
    v = board.node_voltages()
    for n in net.nodes:
        if n == net.ground:
            continue
        want = got[f"v(x{net.index[n]})"]
        assert v[net.index[n]] == pytest.approx(want, rel=1e-8, abs=1e-12), n
    # the swapped meter leads read each other's node
    r = board.meter_read(["104", "109", "105"])
    assert r[0] == pytest.approx(v[net.index["n8"]], abs=1e-12)
    assert r[1] == pytest.approx(v[net.index["n3"]], abs=1e-12)
    assert r[2] == pytest.approx(v[net.index["n4"]], abs=1e-12)


def test_clean_wiring_is_the_rig_file() -> None:
    """No fault: the model's network and conductances are the rig file's, untouched."""
    spec = load_rig(SIM16)
    board = Breadboard(spec.network, spec.part, SimSettings(**spec.sim))
    assert board.wiring.network is spec.network
    k = board.conductances()
    assert board.wiring.conductances(k) is k
    assert "wiring" not in board.describe()["settings"]
