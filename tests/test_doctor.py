"""``labnet doctor``: clean on sim16, every seeded single wiring fault found and named, a seeded campaign.

The faults are built into the simulator's physical model from the rig file's
``[simulator.wiring]`` table (``simulator/wiring.py``), so the emulated instruments really see
them; doctor sees only what the drivers read over the emulated wire.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labnet.app.cli import main
from labnet.app.doctor import run_doctor
from labnet.app.doctor_campaign import KINDS, campaign, rates
from labnet.config.rigfile import load_rig
from labnet.experiments.wiring_check import signature_codes, wiring_design

ROOT = Path(__file__).resolve().parent.parent
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"


def _rig(tmp_path: Path, wiring: str = "") -> Path:
    p = tmp_path / "rig.toml"
    p.write_text(SIM16.read_text() + (f"\n[simulator.wiring]\n{wiring}\n" if wiring else ""))
    return p


def _doctor_json(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_clean_sim16(capsys: pytest.CaptureFixture) -> None:
    code = main(["doctor", str(SIM16)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "findings: none" in out and "ready line '!RDY LNDP 1.0" in out
    code, rep = _doctor_json(["doctor", str(SIM16)], capsys)
    assert code == 0 and rep["clean"] and rep["findings"] == []
    assert [c["role"] for c in rep["instruments"]] == ["board", "meter", "psu1", "psu2", "smu"]
    assert all(c["ok"] for c in rep["instruments"])
    board = rep["instruments"][0]["identity"]
    assert (board["family"], board["channels"], board["max_code"], board["firmware"]) == ("X9C", 16, 99, "1.0")
    # other tests in the same process may have registered more simulated benches: sim16's four are listed
    assert {f"TCPIP0::sim16::{d}::INSTR" for d in ("daq", "psu1", "psu2", "smu")} <= set(rep["visa"]["sim"]["resources"])
    w = rep["wiring"]
    assert w["best"]["kind"] == "as_wired"
    assert set(w["node_residual_sigma"]) == {f"n{i}" for i in range(1, 10)}  # a residual per released node
    assert max(w["node_residual_sigma"].values()) < 2.0
    dof = w["best"]["rows"] - w["best"]["params"]
    assert w["best"]["chi2"] < 1.5 * dof


FAULTS = [  # (wiring table, kind doctor must name first, edges, nodes)
    ("open_edges = [3]", "open_edge", [3], []),            # n7-n8: inside the sourceless cluster
    ("open_edges = [11]", "open_edge", [11], []),          # n0-n1: an input to ground
    ("shorted_edges = [6]", "shorted_edge", [6], []),      # n8-n9: between two never-driven nodes
    ("shorted_edges = [1]", "shorted_edge", [1], []),      # n1-n4: two source nodes
    ("swapped_edges = [[2, 9]]", "swapped_edges", [2, 9], []),
    ("swapped_edges = [[3, 12]]", "swapped_edges", [3, 12], []),  # two edges of the triangle n7-n8-n9
    ('swapped_meter_channels = [["104", "107"]]', "swapped_meter_channels", [], ["n3", "n6"]),
    ('swapped_meter_channels = [["109", "110"]]', "swapped_meter_channels", [], ["n8", "n9"]),
    ('swapped_meter_channels = [["101", "105"]]', "swapped_meter_channels", [], ["n0", "n4"]),  # ground's lead
    ("loaded_nodes = { n5 = 5000.0 }", "loaded_node", [], ["n5"]),   # no edge to ground
    ("loaded_nodes = { n4 = 10000.0 }", "loaded_node", [], ["n4"]),  # in parallel with edge n0-n4
]


@pytest.mark.parametrize("wiring,kind,edges,nodes", FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_named(wiring: str, kind: str, edges: list[int], nodes: list[str], tmp_path: Path,
                     capsys: pytest.CaptureFixture) -> None:
    code, rep = _doctor_json(["doctor", str(_rig(tmp_path, wiring))], capsys)
    assert code == 1 and not rep["clean"]
    first = rep["findings"][0]
    assert first["kind"] == kind, first
    assert sorted(first["edges"]) == edges and set(first["nodes"]) == set(nodes), first
    assert first["margin"] > 10, first  # well ahead of the runner-up
    if kind == "loaded_node":
        want = float(wiring.split("=")[-1].strip(" }"))
        assert abs(first["load_ohm"] - want) / want < 0.25  # the load is estimated, too


def test_fault_text_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["doctor", str(_rig(tmp_path, "swapped_edges = [[0, 15]]"))])
    out = capsys.readouterr().out
    assert code == 1
    assert "swapped digipots: edge 0 (n0-n4, channel 0) <-> edge 15 (n6-n7, channel 15)" in out
    assert "KCL residual per node as wired" in out


def test_ends_in_safe_state_with_codes_restored() -> None:
    from simulator.bench import get_bench

    spec = load_rig(SIM16)
    rep = run_doctor(spec, sim_seed=3)
    model = get_bench("sim16").model
    assert rep.exit_code == 0
    assert model.driven == {}  # every output off
    assert np.all(model.codes == spec.part.power_up_code)  # the codes doctor found
    assert rep.bench_s > 0


def test_every_pattern_within_limits_whatever_the_wiring() -> None:
    """The amplitude keeps the span across the lowest-resistance part the design uses (its
    -tolerance end, no wiper resistance) within half the rated current: the maximum-principle
    bound, true whichever edge a part sits in."""
    spec = load_rig(SIM16)
    d = wiring_design(spec.network, spec.part, spec.limits)
    r_min = d.vectors.min() / spec.part.max_code * spec.part.r_ab_ohm * (1 - spec.part.tolerance)
    assert d.amplitude_v / r_min <= 0.5 * spec.limits.max_edge_current_a + 1e-15
    assert all(0 <= v <= spec.limits.max_source_v for p in d.patterns for v in p.values())
    assert d.vectors.min() >= spec.limits.code_min and d.vectors.max() <= spec.limits.code_max


def test_signature_codes_separate_every_pair() -> None:
    a, b = signature_codes(16, 24, 99)
    assert len(set(a.tolist())) == 16 and sorted(a.tolist()) == sorted(b.tolist())
    rank_a = np.argsort(np.argsort(a))
    rank_b = np.argsort(np.argsort(b))
    sep = np.maximum(np.abs(rank_a[:, None] - rank_a[None, :]), np.abs(rank_b[:, None] - rank_b[None, :]))
    np.fill_diagonal(sep, 99)
    assert sep.min() >= 3  # any two channels at least 3 code steps apart in one of the vectors


def test_dry_run_of_a_bench_rig(capsys: pytest.CaptureFixture) -> None:
    """breadboard16 releases by output-off with the E36312A's modelled 10 Ohm off-state: the
    loads its file declares are part of "as wired", so its emulated twin is clean."""
    code, rep = _doctor_json(["doctor", str(ROOT / "protocols" / "rigs" / "breadboard16.toml"), "--dry-run"], capsys)
    assert code == 0 and rep["dry_run"] and rep["simulated"] and rep["clean"], rep["findings"]
    assert rep["declared_off_state_ohm"] == {f"n{i}": 10.0 for i in range(1, 7)}


@pytest.mark.parametrize("rig", ["sim16-offstate.toml", "sim16-switch.toml"])
def test_release_rigs_are_clean(rig: str, capsys: pytest.CaptureFixture) -> None:
    """Declared off-state loads (and analog-switch release) are the rig as its file says."""
    code, rep = _doctor_json(["doctor", str(ROOT / "protocols" / "rigs" / rig)], capsys)
    assert code == 0 and rep["clean"], rep["findings"]


def test_undeclared_off_state_load_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A supply whose off-state loads its node although the rig file says nothing about it."""
    code, rep = _doctor_json(["doctor", str(_rig(tmp_path, "loaded_nodes = { n3 = 10.0 }"))], capsys)
    assert code == 1 and rep["findings"][0]["kind"] == "loaded_node" and rep["findings"][0]["nodes"] == ["n3"]


def test_bench_rig_without_hardware_reports_what_is_missing(capsys: pytest.CaptureFixture) -> None:
    code, rep = _doctor_json(["doctor", str(ROOT / "protocols" / "rigs" / "breadboard16.toml")], capsys)
    assert code == 1 and rep["wiring"] is None
    roles = {f["role"] for f in rep["findings"] if f["kind"] == "instrument"}
    assert roles == {"board", "meter", "psu1", "psu2", "smu"}  # each one named, none raised


def test_wrong_instrument_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The rig file says 34970A where the (emulated) bench has a DAQ970A: *IDN? tells."""
    p = tmp_path / "rig.toml"
    p.write_text(SIM16.read_text().replace('model = "DAQ970A"', 'model = "34970A"'))
    from labnet.app.build import register_sim_bench
    from labnet.app.doctor_ident import identify

    spec = load_rig(p)
    _, model = register_sim_bench(spec)
    bench_meter = "DAQ970A"
    from simulator.bench import get_bench

    get_bench("sim16").add_instrument("daq", bench_meter)  # the bench really has a DAQ970A
    checks = {c.role: c for c in identify(spec, model.clock.sleep)}
    assert not checks["meter"].ok and "DAQ970A" in checks["meter"].problems[0]
    assert all(checks[r].ok for r in ("board", "psu1", "psu2", "smu"))


def test_campaign_detection_and_false_alarms() -> None:
    """>= 50 seeded single faults of every kind (positions, part draws and noise drawn) and >= 20
    clean rigs: every fault found and named, no false alarm."""
    out = campaign(SIM16, 50, 20, seed=0)
    r = rates(out)
    print(json.dumps(r, indent=1))
    missed = [o.to_dict() for o in out if o.case.kind != "clean" and not o.named]
    alarms = [o.to_dict() for o in out if o.case.kind == "clean" and o.found]
    assert r["faults"]["cases"] == 50 and r["clean"]["cases"] == 20
    assert all(r[k]["cases"] == 10 for k in KINDS)
    assert missed == [] and alarms == []
