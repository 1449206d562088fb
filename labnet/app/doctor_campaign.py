"""Seeded campaigns for ``labnet doctor``: single wiring faults drawn at random, and clean rigs.

Each case is the base rig file (e.g. ``protocols/rigs/sim16.toml``) with its ``[simulator]``
seed replaced (another part draw) and, for a fault, a ``[simulator.wiring]`` table appended; the
run's noise seed is drawn too. Doctor runs on it exactly as ``labnet doctor`` does (rig file
validated, instruments identified over the emulated wire, wiring check). A fault is **found**
when doctor reports any finding and **named** when its first finding is that fault (kind and
edges / nodes); a clean rig with a finding is a **false alarm**.

Fault kinds and their draws: an open or shorted edge (uniform over the edges), two swapped
digipots (a uniform pair of edges), two swapped meter channels (a uniform pair of metered nodes),
a loaded source node (uniform over the source nodes, 1-20 kOhm log-uniform to ground: a
released source whose output-off state still loads its node).
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labnet.app.doctor import run_doctor
from labnet.config.rigfile import load_rig
from labnet.core.network import Network
from labnet.experiments.wiring_check import metered_nodes

KINDS = ("open_edge", "shorted_edge", "swapped_edges", "swapped_meter_channels", "loaded_node")
#: Range (Ω) of a drawn load to ground.
LOAD_OHM = (1e3, 2e4)


@dataclass(frozen=True)
class Case:
    """One rig of a campaign: the fault (``kind`` "clean" for none), its TOML, the expected
    edges / nodes, and the part-draw and noise seeds."""

    kind: str
    toml: str
    edges: tuple[int, ...]
    nodes: tuple[str, ...]
    part_seed: int
    noise_seed: int


@dataclass
class Outcome:
    """What doctor said about one case."""

    case: Case
    found: bool
    named: bool
    said: str
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        c = self.case
        return {"kind": c.kind, "fault": c.toml.strip().replace("\n", "; "), "edges": list(c.edges),
                "nodes": list(c.nodes), "part_seed": c.part_seed, "noise_seed": c.noise_seed,
                "found": self.found, "named": self.named, "doctor_says": self.said, "wall_s": round(self.wall_s, 3)}


def draw_case(rng: np.random.Generator, network: Network, kind: str) -> Case:
    """A case of ``kind`` (one of :data:`KINDS` or ``"clean"``) with seeds drawn from ``rng``."""
    part_seed, noise_seed = int(rng.integers(1, 10**6)), int(rng.integers(1, 10**6))
    e = network.n_edges
    edges: tuple[int, ...] = ()
    nodes: tuple[str, ...] = ()
    if kind == "clean":
        toml = ""
    elif kind in ("open_edge", "shorted_edge"):
        j = int(rng.integers(e))
        edges = (j,)
        toml = f"{'open' if kind == 'open_edge' else 'shorted'}_edges = [{j}]"
    elif kind == "swapped_edges":
        a, b = sorted(int(x) for x in rng.choice(e, 2, replace=False))
        edges = (a, b)
        toml = f"swapped_edges = [[{a}, {b}]]"
    elif kind == "swapped_meter_channels":
        m = metered_nodes(network)
        u, w = (m[int(i)] for i in sorted(rng.choice(len(m), 2, replace=False)))
        nodes = (u, w)
        toml = f'swapped_meter_channels = [["{network.meter_channels[u]}", "{network.meter_channels[w]}"]]'
    elif kind == "loaded_node":
        src = [n for n in network.nodes if n in network.source_channels]
        node = src[int(rng.integers(len(src)))]
        ohm = float(np.exp(rng.uniform(np.log(LOAD_OHM[0]), np.log(LOAD_OHM[1]))))
        nodes = (node,)
        toml = f"loaded_nodes = {{ {node} = {ohm:.1f} }}"
    else:
        raise ValueError(f"unknown fault kind {kind!r}")
    return Case(kind, toml, edges, nodes, part_seed, noise_seed)


def rig_text(base: str, case: Case) -> str:
    """The base rig file with the case's part seed and wiring table."""
    text, n = re.subn(r"(?m)^seed\s*=\s*\d+", f"seed = {case.part_seed}", base, count=1)
    if not n:
        raise ValueError("the base rig file has no [simulator] seed line")
    return text + (f"\n[simulator.wiring]\n{case.toml}\n" if case.toml else "")


def run_case(base: str, case: Case, folder: Path) -> Outcome:
    """Run doctor on one case (the rig file written to ``folder``)."""
    path = folder / f"rig-{case.kind}-{case.part_seed}-{case.noise_seed}.toml"
    path.write_text(rig_text(base, case), encoding="utf-8")
    t0 = time.perf_counter()
    report = run_doctor(load_rig(path), sim_seed=case.noise_seed)
    wall = time.perf_counter() - t0
    first = report.findings[0] if report.findings else None
    named = False
    if first is not None and first.kind == case.kind:
        named = (tuple(sorted(first.detail.get("edges", ()))) == tuple(sorted(case.edges))
                 and set(first.detail.get("nodes", ())) == set(case.nodes))
    return Outcome(case, bool(report.findings), named, first.text if first else "clean", wall)


def campaign(base_rig: str | Path, n_faults: int, n_clean: int, seed: int = 0) -> list[Outcome]:
    """``n_faults`` seeded single faults (kinds in turn, positions drawn) and ``n_clean`` clean rigs."""
    base_path = Path(base_rig)
    base = base_path.read_text(encoding="utf-8")
    network = load_rig(base_path).network
    rng = np.random.default_rng([seed, 12])
    cases = [draw_case(rng, network, KINDS[i % len(KINDS)]) for i in range(n_faults)]
    cases += [draw_case(rng, network, "clean") for _ in range(n_clean)]
    with tempfile.TemporaryDirectory(prefix="labnet-doctor-") as d:
        return [run_case(base, c, Path(d)) for c in cases]


def rates(outcomes: list[Outcome]) -> dict[str, Any]:
    """Detection and naming rate per fault kind, and false alarms on the clean rigs."""
    out: dict[str, Any] = {}
    for kind in KINDS:
        sel = [o for o in outcomes if o.case.kind == kind]
        if sel:
            out[kind] = {"cases": len(sel), "found": sum(o.found for o in sel), "named": sum(o.named for o in sel)}
    faults = [o for o in outcomes if o.case.kind != "clean"]
    clean = [o for o in outcomes if o.case.kind == "clean"]
    out["faults"] = {"cases": len(faults), "found": sum(o.found for o in faults), "named": sum(o.named for o in faults)}
    out["clean"] = {"cases": len(clean), "false_alarms": sum(o.found for o in clean)}
    out["wall_s"] = round(sum(o.wall_s for o in outcomes), 2)
    return out


__all__ = ["KINDS", "Case", "Outcome", "campaign", "draw_case", "rates", "rig_text", "run_case"]
