"""Force inputs on the bench (issue 15 item 1): the Keithley 2450 sourcing current with a
voltage limit, end to end — the emulator against ngspice, the compliance (Model 2450 Reference
Manual 2450-901-01 Rev. B, :SOURce[1]:<function>:<x>LIMit, 6-71/6-72: "The Model 2450 cannot
source levels that exceed this limit"; TRIPped? 1 when the instrument clamps the source), the
worst-case limit bound with current nodes against the simulator's true edge currents, a run that
learns, its CSV and report, and the one-line errors of bad rig files and protocols.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_bad_input import Spy, _check, _run, spy  # noqa: F401 - the spy fixture
from test_currents import _cycling_cases
from test_ngspice import _spice_name, netlist, run_ngspice

from labnet.app.build import build_rig
from labnet.config.rigfile import load_rig
from labnet.core.currents import solve_compliant
from labnet.core.errors import LimitError
from labnet.core.network import Network
from labnet.session.reader import read_session
from simulator.bench import get_bench
from simulator.monitor import watch_edge_currents

ROOT = Path(__file__).resolve().parent.parent
RIG = ROOT / "protocols" / "rigs" / "sim16-current.toml"
PROTO = ROOT / "protocols" / "allostery-current.toml"


def _spice_state(net: Network, k: np.ndarray, held: dict[str, float], injected: dict[str, float],
                 tmp: Path, tag: str) -> tuple[np.ndarray, dict[str, float]]:
    """ngspice: node voltages (V) and each held source's current into the network (A)."""
    deck = netlist(net, k, held, tmp / f"{tag}.raw")
    extra = "".join(f"I{i} 0 {_spice_name(net, n)} DC {c:.17e}\n" for i, (n, c) in enumerate(injected.items()))
    deck = deck.replace(".options", extra + ".options", 1)
    out = run_ngspice(deck, tmp, tag)
    v = np.array([0.0 if n == net.ground else out[f"v({_spice_name(net, n)})"] for n in net.nodes])
    # a SPICE V source's branch current flows from + through the source: into the network is minus it
    cur = {n: -out[f"i(v{i})"] for i, n in enumerate(held)}
    return v, cur


@pytest.fixture
def rig():  # type: ignore[no-untyped-def]
    r = build_rig(load_rig(RIG), sim_seed=3)
    with r:
        yield r


def test_current_inputs_below_the_limit_agree_with_ngspice(rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Through the real drivers on pyvisa: 2450s source 150 µA and 50 µA into n1 and n2, an
    E36312A holds n3; the simulator's true state equals ngspice's (I elements) to 1e-9, the 2450
    reports no trip and its terminal voltage, and the meter reads the nodes within its noise."""
    rig.apply({"n1": 1.5e-4, "n2": 5e-5, "n3": 0.3})
    model = get_bench("sim16-current").model
    rig.settle(0.05)  # the E36312A output settles (supply_tau_s: simulator.settling)
    k = model.wired_conductances()
    truth = model.node_voltages()
    held = model.held_voltages()
    ref, _ = _spice_state(model.wiring.network, k, held, {"n1": 1.5e-4, "n2": 5e-5}, tmp_path, "below")
    assert np.max(np.abs(truth - ref)) / np.max(np.abs(ref)) < 1e-9
    assert not rig.current_sources.tripped(["smu1.1", "smu2.1"]).any()
    assert rig.current_sources.read_voltages(["smu1.1"])[0] == pytest.approx(truth[rig.network.index["n1"]], abs=1e-6)  # +.6E reply
    v = rig.measure()
    assert np.max(np.abs(v - truth)) < 5e-4  # 10 MΩ meter loading (~1e-4 relative) and 20 µV noise
    lap = model.wiring.network.laplacian(k)
    assert (lap @ truth)[rig.network.index["n1"]] == pytest.approx(1.5e-4, rel=1e-9)  # KCL: the set current flows


def test_a_current_source_at_its_limit_is_held_there_as_the_manual_says(rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """1 mA into n1 would need more than its 0.35 V limit (set through ``current_limits``): the
    terminal is held at +VLIM, less than 1 mA flows (ngspice with a 0.35 V source there gives the
    same state and that current), ``:SOUR:CURR:VLIM:TRIP?`` says 1 and the rig logs the trip."""
    rig.current_limits["n1"] = (1e-3, 0.35)  # a tighter VLIM than the file's 1 V
    rig.apply({"n1": 1e-3, "n2": 5e-5})
    model = get_bench("sim16-current").model
    truth = model.node_voltages()
    i1 = rig.network.index["n1"]
    assert truth[i1] == pytest.approx(0.35, abs=1e-12)
    assert rig.current_sources.tripped(["smu1.1", "smu2.1"]).tolist() == [True, False]
    k = model.wired_conductances()
    ref, cur = _spice_state(model.wiring.network, k, {**model.held_voltages(), "n1": 0.35}, {"n2": 5e-5},
                            tmp_path, "trip")
    assert np.max(np.abs(truth - ref)) < 1e-9
    assert 0 < cur["n1"] < 1e-3
    before = rig.compliance_trips
    rig.measure()
    assert rig.compliance_trips == before + 1


def test_vlim_and_range_refusals_follow_the_manual() -> None:
    """:SOURce[1]:<function>:RANGe (6-75): 1 A is the largest range; :SOURce[1]:<function>:<x>LIMit
    (6-71): 0.02…210 V; a level beyond 105 % of the fixed range is refused (-222); the driver refuses
    what the rig may not do before sending anything."""
    r = build_rig(load_rig(RIG), sim_seed=1)
    with r:
        smu = r.current_sources.instruments["smu1"]
        emu = get_bench("sim16-current").instruments["smu1"]
        assert smu.source_range_a == 1e-3 and emu.curr_range == 1e-3 and emu.vlim == 1.0
        sent = len(emu.messages)
        with pytest.raises(LimitError, match="exceeds its 0.001 A limit"):
            smu.apply_currents({"1": 2e-3})
        with pytest.raises(LimitError, match="voltage limit 1.5 V outside 0.02..1 V"):
            smu.apply_currents({"1": 1e-4}, {"1": 1.5})
        assert len(emu.messages) == sent
        for cmd in (":SOUR:CURR 0.0011", ":SOUR:CURR:VLIM 0.01", ":SOUR:CURR:VLIM 211", ":SOUR:CURR:RANG 2"):
            smu.write(cmd)
            assert smu.errors()[0][0] == -222, cmd


def _worst(net: Network, k: np.ndarray, held: dict[str, float], cur: dict[str, float], vlim: dict[str, float]) -> float:
    v = solve_compliant(net, k, held, cur, vlim)[0]
    return float(np.max(np.abs(k * net.delta_v(v))))


@pytest.mark.parametrize("seed", range(6))
def test_the_bound_with_current_nodes_holds_for_every_part_in_tolerance(seed: int) -> None:
    """The rig's worst-case bound (current nodes within [m, VLIM] for I ≥ 0) is at least the true
    largest edge current of the network for conductances drawn in the part's box (corners and
    random draws), any current level up to the pattern's, tripped or not."""
    spec = load_rig(RIG)
    r = build_rig(spec, sim_seed=seed)
    rng = np.random.default_rng(seed)
    codes = rng.integers(10, 100, 16)
    k_lo, k_hi, _ = r.conductance_box(codes)
    pattern = {"n1": float(rng.uniform(0, 1e-3)), "n2": float(rng.uniform(0, 1e-3)), "n3": float(rng.uniform(0, 1))}
    bound = r.transition_bound(pattern, pattern, codes, codes)
    net = r.network
    vlim = {"n1": 1.0, "n2": 1.0}
    draws = [k_lo, k_hi] + [rng.uniform(k_lo, k_hi) for _ in range(40)]
    draws += [np.where(rng.random(16) < 0.5, k_lo, k_hi) for _ in range(40)]
    for k in draws:
        for scale in (0.0, 0.5, 1.0):
            cur = {n: pattern[n] * scale for n in ("n1", "n2")}
            v = solve_compliant(net, k, {"n3": pattern["n3"]}, cur, vlim)[0]
            i = np.abs(k * net.delta_v(v))
            assert np.all(i <= bound * (1 + 1e-9) + 1e-15)
            assert np.all(v >= -1e-12) and np.all(v <= 1.0 + 1e-12)  # the sign range of the proof


def test_positive_currents_keep_every_node_above_the_lowest_source() -> None:
    """The proof's step (labnet/bench/current_drive.py): with every injected current ≥ 0 no node
    goes below the lowest held voltage (here −0.4 V), whatever trips; 200 random networks
    (tests/test_currents.py's cases, limits 0.9 V)."""
    for net, k, held, cur in _cycling_cases():
        v = solve_compliant(net, k, held, cur, dict.fromkeys(cur, 0.9))[0]
        assert v.min() >= -0.4 - 1e-12 and v.max() <= 0.9 + 1e-12


def test_an_unsafe_current_pattern_is_refused_and_nothing_flows(rig) -> None:  # type: ignore[no-untyped-def]
    """All edges at their most conductive code: a current input with a 1 V limit could put 1 V
    across edge n0–n1 (0.73 kΩ for the worst part in tolerance): refused, nothing applied (the
    simulator's monitor sees no current); at code 40 the patterns are safe, applied through the
    rig, and the true peak stays under the rating."""
    rig.write_codes(np.full(16, 10))
    with watch_edge_currents() as mon:
        with pytest.raises(LimitError, match=r"edge \('n0', 'n1'\).*in the worst case"):
            rig.apply({"n1": 1e-3, "n2": 1e-3})
        assert mon.peak.percent == 0.0
        rig.write_codes(np.full(16, 40))
        rig.apply({"n1": 1.5e-4, "n2": 5e-5})
        rig.apply({"n1": 1.5e-4, "n2": 5e-5, "n3": 0.3, "n4": 0.2})
        rig.apply({})
    assert 0 < mon.peak.percent < 100.0


def test_allostery_with_current_inputs_learns(tmp_path: Path) -> None:
    """``labnet run protocols/allostery-current.toml`` (120 steps): the error falls ≥ 30×, the CSV
    records the input currents (``iset_n1``, A) and no voltage column for them, the header names the
    current sources, the report computes H over every non-ground node."""
    from labnet.app.cli import main

    assert main(["run", str(PROTO), "--steps", "120", "--quiet", "--out", str(tmp_path)]) == 0
    folder = next(tmp_path.iterdir())
    df = read_session(folder / "session.csv")
    rows = df[df.phase == "eval"]
    assert rows.error.iloc[0] / rows.error.iloc[-1] > 30
    assert set(df.iset_n1.dropna()) == {1.5e-4} and set(df.iset_n2.dropna()) == {5e-5}
    assert "set_n1" not in df.columns
    head = (folder / "session.csv").read_text().split("\ntime_s")[0]
    assert '"current_sources"' in head and '"vlim_v": 1.0' in head
    assert main(["report", str(folder)]) == 0
    import json

    q = json.loads((folder / "report.json").read_text())["quantities"]
    assert q["lambda_min"]["over"].startswith("H: every non-ground node")


def test_current_inputs_force_h_over_every_non_ground_node() -> None:
    """task_modes with current inputs: H is L over all non-ground nodes and F the currents, so
    H⁻¹F is the free state of the injected network (solve_injected)."""
    from labnet.core.analysis import task_modes
    from labnet.core.currents import solve_injected

    spec = load_rig(RIG)
    net = spec.network
    k = np.random.default_rng(0).uniform(1e-4, 1e-3, 16)
    tm = task_modes(net, k, np.array([1.5e-4, 5e-5]), np.array([1.0, 0.0]))
    assert tm.lam.size == net.n_nodes - 1
    v = solve_injected(net, k, {}, {"n1": 1.5e-4, "n2": 5e-5})
    assert tm.response == pytest.approx(v[net.index["n3"]], rel=1e-9)


# ---------------------------------------------------------------------- bad input: one line, nothing opened
R = RIG.read_text()
P = PROTO.read_text().replace('rig = "rigs/sim16-current.toml"', 'rig = "rig.toml"')
BAD = [
    ("e36312a-current", R.replace('model = "E36312A"\naddress = "TCPIP0::sim16-current::psu1::INSTR@sim"',
                                  'model = "E36312A"\nfunction = "current"\naddress = "TCPIP0::sim16-current::psu1::INSTR@sim"'),
     P, ("instruments.sources.psu1.function", "does not source current")),
    ("vlim-over-max", R.replace("vlim_v = 1.0             # V", "vlim_v = 2.0             # V"), P,
     ("instruments.sources.smu1.vlim_v", "exceeds limits.max_source_v")),
    ("norm-off-state", R.replace('function = "current"     #', 'off_state = "NORM"\nfunction = "current"     #'), P,
     ("instruments.sources.smu1.off_state", "HIMP")),
    ("no-max-current", R.replace("max_current_a = 1e-3     # A: sets the fixed 1 mA source range\n", ""), P,
     ("instruments.sources.smu1.max_current_a", "missing")),
    ("current-limit-key", R.replace('function = "current"     #', 'current_limit_a = 0.01\nfunction = "current"     #'),
     P, ("instruments.sources.smu1.current_limit_a", "vlim_v")),
    ("channel-to-voltage-source", R.replace('n1 = "smu1.1"', 'n1 = "psu1.2"'), P,
     ("network.current_channels.n1", "current sources")),
    ("source-channel-to-smu", R.replace('n5 = "psu2.2"', 'n5 = "smu1.1"'), P, ("network",)),
    ("both-kinds", R.replace('source_channels = { n3', 'source_channels = { n1 = "psu1.2", n3'), P,
     ("network.current_channels.n1", "voltage or by a current")),
    ("inputs-v-on-current-rig", R, P.replace("inputs_a = [1.5e-4, 5e-5]", "inputs_v = [1.0, 0.3]"),
     ("task.inputs_v", "inputs_a")),
    ("inputs-a-over-max", R, P.replace("inputs_a = [1.5e-4, 5e-5]", "inputs_a = [2e-3, 5e-5]"),
     ("task.inputs_a", "max_current_a")),
    ("regression-with-currents", R, P.replace('kind = "allostery"', 'kind = "regression"')
     .replace("inputs_a = [1.5e-4, 5e-5]   # A into n1, n2\ntargets_v = [0.30, 0.33]\n", ""),
     ("task.kind", "current-driven")),
]


@pytest.mark.parametrize(("name", "rig_text", "proto_text", "expect"), BAD, ids=[b[0] for b in BAD])
def test_bad_current_input_is_one_line_and_opens_nothing(name: str, rig_text: str, proto_text: str,
                                                        expect: tuple[str, ...], tmp_path: Path, spy: Spy,  # noqa: F811
                                                        capsys: pytest.CaptureFixture) -> None:
    assert rig_text != R or proto_text != P
    (tmp_path / "rig.toml").write_text(rig_text)
    (tmp_path / "p.toml").write_text(proto_text)
    code, err = _run(["run", str(tmp_path / "p.toml"), "--quiet", "--out", str(tmp_path / "s")], capsys)
    _check(code, err, expect, spy)


def test_inputs_a_on_a_voltage_rig_is_refused(tmp_path: Path, spy: Spy, capsys: pytest.CaptureFixture) -> None:  # noqa: F811
    (tmp_path / "rig.toml").write_text((ROOT / "protocols" / "rigs" / "sim16.toml").read_text())
    (tmp_path / "p.toml").write_text(P)
    code, err = _run(["run", str(tmp_path / "p.toml"), "--quiet", "--out", str(tmp_path / "s")], capsys)
    _check(code, err, ("task.inputs_a", "voltage sources"), spy)





def test_doctor_identifies_current_sources_and_checks_the_wiring(capsys: pytest.CaptureFixture) -> None:
    """``labnet doctor`` sets the 2450s up in current mode (outputs off, the nodes float during the
    wiring check) and finds the simulated bench wired as its file says."""
    from labnet.app.cli import main

    assert main(["doctor", str(RIG)]) == 0
    out = capsys.readouterr().out
    assert "MODEL 2450, SIM-sim16-current-smu1" in out and "findings: none" in out
