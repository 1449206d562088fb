"""Clamps that release (issue 12, item 2): source off-states and analog switches.

Sources of the models (cited where each is checked):

* Agilent E3631A User's Guide (E3631-90002), ch. 4 "Output On/Off and Tracking Operation
  Commands", OUTPut[:STATe]: "The state of the disabled outputs is a condition of less than
  0.6 volts of opposite polarity with no load and less than 60 mA of opposite direction with a
  short circuit" — a disabled output sinks current at ~0 V: ≤ 0.6 V / 60 mA = 10 Ω to 0 V, the
  conservative ``off_resistance_ohm`` of the shipped rigs (no E36300 document found says the
  outputs float).
* Keithley 2450 Reference Manual 2450-901-01 Rev. B, section 2 "Output-off state" (p. 2-82/83)
  and section 6 ":OUTPut[1]:<function>:SMODe" (p. 6-32): HIMP opens the output relay ("to
  prevent excessive wear on the output relay, do not use this output-off state for tests that
  turn the output off and on frequently"); NORMal sets a 0 V voltage source with the current
  limit at 10 % of the range; ZERO a 0 V voltage source; *RST default NORMAL (section 8,
  smu.source.offmode).
* Analog Devices ADG411/ADG412/ADG413 data sheet Rev. D, Table 2 (12 V single supply): RON
  80 Ω max, IS(OFF) 0.25 nA max at 11.2 V across, tON 250 ns / tOFF 125 ns max; Table 3: the
  ADG412 conducts with logic 1.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from labnet.app.build import build_rig
from labnet.config.rigfile import load_rig
from labnet.core.nonideal import SimSettings
from labnet.core.release import SMU_ZERO_OFF_OHM, SWITCH_PARTS, Release
from simulator.bench import SimBench, get_bench
from simulator.breadboard import Breadboard

ROOT = Path(__file__).resolve().parent.parent
RIGS = ROOT / "protocols" / "rigs"
ADG412 = SWITCH_PARTS["ADG412"]
INPUTS = {"psu1.1": 1.0, "psu1.2": 0.3}


def _board(release: Release | None = None, **sim: object) -> Breadboard:
    spec = load_rig(RIGS / "sim16.toml")
    settings = {**spec.sim, "source_gain_error": 0.0, "source_offset_v": 0.0, "drift_kelvin": 0.0, **sim}
    return Breadboard(spec.network, spec.part, SimSettings(**settings), release=release)


def _independent_solve(b: Breadboard, held: dict[str, float], extra: list[tuple[str, str, float]]) -> dict[str, float]:
    """Kirchhoff by hand (numpy): the network's Laplacian plus ``extra`` edges (a, b, S) to new
    nodes as needed; ``held`` node -> V (ground 0 V). Returns every node's voltage."""
    net = b.network
    names = list(net.nodes) + sorted({x for a, c, _ in extra for x in (a, c)} - set(net.nodes))
    idx = {n: i for i, n in enumerate(names)}
    lap = np.zeros((len(names), len(names)))
    for (a, c), g in [*zip(net.edges, b.conductances()), *(((a, c), g) for a, c, g in extra)]:
        i, j = idx[a], idx[c]
        lap[i, i] += g
        lap[j, j] += g
        lap[i, j] -= g
        lap[j, i] -= g
    held = {net.ground: 0.0, **held}
    h = [idx[n] for n in held]
    f = [i for i in range(len(names)) if i not in h]
    v = np.zeros(len(names))
    v[h] = list(held.values())
    v[f] = np.linalg.solve(lap[np.ix_(f, f)], -lap[np.ix_(f, h)] @ v[h])
    return {n: float(v[idx[n]]) for n in names}


# ---------------------------------------------------------------- the physical model
def test_e36312a_low_impedance_off_state_pulls_its_node_to_zero():
    """E3631A guide ch. 4: a disabled output sinks at < 0.6 V: 10 Ω to 0 V in the model."""
    ideal, loaded = _board(), _board(Release(off_ohm={"psu1.3": 10.0}))
    for b in (ideal, loaded):
        b.drive(INPUTS)
    want = _independent_solve(loaded, {"n1": 1.0, "n2": 0.3, "~zero": 0.0}, [("n3", "~zero", 0.1)])
    v = loaded.node_voltages()
    for i, n in enumerate(loaded.network.nodes):
        assert v[i] == pytest.approx(want[n], abs=1e-12)
    i3 = loaded.network.index["n3"]
    assert ideal.node_voltages()[i3] > 0.3 and v[i3] < 0.01 * ideal.node_voltages()[i3]
    # while the output is on, the off-state does not exist: the node is held, and the current the
    # source delivers is the network's only
    for b in (ideal, loaded):
        b.drive({**INPUTS, "psu1.3": 0.5})
    assert loaded.node_voltages() == pytest.approx(ideal.node_voltages(), abs=1e-12)
    assert loaded.source_currents(["psu1.3"]) == pytest.approx(ideal.source_currents(["psu1.3"]), rel=1e-9)


def test_switch_on_resistance_in_series_and_leakage_when_open():
    """ADG412 Table 2: a closed switch is 80 Ω (max) in series with its source; an open one
    leaks 0.25 nA at 11.2 V (2.2e-11 S)."""
    b = _board(Release("switch", ADG412, {"n3": 0}))
    b.drive({**INPUTS, "psu1.3": 0.5})  # the source behind the switch is on
    v_open = b.node_voltages()
    b.set_switches({"n3": True})
    v_closed = b.node_voltages()
    idx = b.network.index
    closed = _independent_solve(b, {"n1": 1.0, "n2": 0.3, "~t": 0.5}, [("~t", "n3", 1 / 80.0)])
    leaky = _independent_solve(b, {"n1": 1.0, "n2": 0.3, "~t": 0.5}, [("~t", "n3", 0.25e-9 / 11.2)])
    for n in b.network.nodes:
        assert v_closed[idx[n]] == pytest.approx(closed[n], abs=1e-12)
        assert v_open[idx[n]] == pytest.approx(leaky[n], abs=1e-12)
    free = _board()
    free.drive(INPUTS)
    assert 0 < abs(v_open[idx["n3"]] - free.node_voltages()[idx["n3"]]) < 1e-6  # leakage: below a µV
    assert 0.5 - v_closed[idx["n3"]] > 1e-4  # the on-resistance drop is there (and small)
    assert b.switch_operations == {"n3": 1}
    b.reset()  # a board reset: the control inputs float, the pull-downs open the switch
    assert b.switches == {"n3": False}


def test_meter_loading_and_currents_on_the_augmented_network():
    """The meter's input resistance loads a switched node through the same Thevenin formula."""
    b = _board(Release("switch", ADG412, {"n3": 0, "n4": 1}), meter_noise_v=0.0, meter_resolution_v=0.0)
    b.drive({**INPUTS, "psu1.3": 0.5, "psu2.1": 0.2})
    b.set_switches({"n3": True, "n4": True})
    v = b.node_voltages()
    r_in = b.settings.meter_input_ohm
    read = b.meter_read(["104", "106"])
    i3, i5 = b.network.index["n3"], b.network.index["n5"]
    # loading of n5 (free) is measurable; n3 behind 80 Ω barely moves
    assert read[1] < v[i5] and v[i5] - read[1] < v[i5] * 1e-3
    assert read[0] == pytest.approx(v[i3] / (1 + 80.0 / r_in), rel=1e-5)
    cur = b.source_currents(["psu1.3", "psu2.1"])
    assert cur[0] == pytest.approx((0.5 - v[i3]) / 80.0, rel=1e-9)


# ---------------------------------------------------------------- the emulated instruments
def _bench(rig: str = "sim16-offstate.toml") -> tuple[SimBench, object]:
    r = build_rig(load_rig(RIGS / rig), sim_seed=1)
    return get_bench(r.extra["sim_bench"]), r


def test_keithley2450_off_states_follow_the_manual():
    """2450 Reference Manual section 2 "Output-off state": HIMP floats (relay open), NORM/ZERO
    hold 0 V; the relay operates at every output change in HIMP only; GUARd is refused."""
    bench, rig = _bench("sim16.toml")
    try:
        smu = bench.instruments["smu"]
        model = bench.model
        assert smu.smod == "HIMP" and "smu.1" not in model.release.off_ohm  # the driver's setup sent HIMP
        ops = smu.relay_operations
        smu.write(b":OUTP ON")
        smu.write(b":OUTP OFF")
        assert smu.relay_operations == ops + 2
        smu.write(b":OUTP:SMOD ZERO")
        assert model.release.off_ohm["smu.1"] == SMU_ZERO_OFF_OHM
        model.drive({"psu1.1": 1.0})
        assert abs(model.node_voltages()[model.network.index["n7"]]) < 1e-4  # held at 0 V through 0.1 Ω
        smu.write(b":OUTP ON")
        smu.write(b":OUTP OFF")
        assert smu.relay_operations == ops + 2  # no relay outside HIMP
        smu.write(b"*RST")
        assert smu.smod == "NORM" and model.release.off_ohm["smu.1"] == SMU_ZERO_OFF_OHM  # *RST: NORMAL
        smu.write(b":OUTP:SMOD GUAR")
        assert smu.pop_error().startswith("-221")
    finally:
        rig.close()


def test_default_rigs_keep_the_ideal_release():
    """sim16 (and the other simulated rigs) keep today's floating release: after the drivers'
    setup the model takes the fast ideal path; breadboard16 states the loading off-state."""
    for name in ("sim16.toml", "sim16-firmware.toml", "sim16-direct.toml"):
        spec = load_rig(RIGS / name)
        assert spec.release.ideal and spec.release.method == "output_off" and not spec.warnings, name
    bench, rig = _bench("sim16.toml")
    try:
        assert bench.model._circuit is None and "release" not in rig.extra
    finally:
        rig.close()
    bb = load_rig(RIGS / "breadboard16.toml").release
    assert bb.off_ohm == {f"psu{i}.{c}": 10.0 for i in (1, 2) for c in (1, 2, 3)} and bb.relay_channels == ("smu.1",)


def test_himp_release_of_an_output_is_warned(tmp_path: Path):
    """An output released by a 2450 in HIMP: the relay would operate every step (manual's warning)."""
    text = (RIGS / "sim16.toml").read_text().replace('n4 = "psu2.1"', 'n4 = "smu.1"').replace(', n7 = "smu.1"', "")
    p = tmp_path / "rig.toml"
    p.write_text(text)
    spec = load_rig(p)
    assert len(spec.warnings) == 1 and "n4" in spec.warnings[0] and "HIMP" in spec.warnings[0]
    assert "analog switch" in spec.warnings[0] and str(p) in spec.warnings[0]


# ---------------------------------------------------------------- the rig: order and safe state
def test_switch_rig_clamps_then_connects_and_releases_without_output_off():
    bench, rig = _bench("sim16-switch.toml")
    calls: list[tuple[str, object]] = []
    board, sources = rig.digipots, rig.sources
    real_sw, real_apply = board.set_switches, sources.apply
    board.set_switches = lambda closed: (calls.append(("switch", dict(closed))), real_sw(closed))[1]  # type: ignore[method-assign]
    sources.apply = lambda v: (calls.append(("sources", dict(v))), real_apply(v))[1]  # type: ignore[method-assign]
    with rig:  # closing ends in the safe state
        rig.apply({"n1": 1.0, "n2": 0.3, "n3": 0.4, "n4": 0.2})
        assert bench.model.switches == {"n3": True, "n4": True, "n5": False, "n6": False}
        rig.apply({"n1": 1.0, "n2": 0.3})
        assert bench.model.switches == {"n3": False, "n4": False, "n5": False, "n6": False}
        psu1, psu2 = sources.instruments["psu1"], sources.instruments["psu2"]
        assert psu1.outputs["3"] == (0.4, True) and psu2.outputs["1"] == (0.2, True)  # on behind the switch
        v = rig.measure()
        free = rig.network.index["n3"]
        assert 0.3 < v[free] < 0.5  # floating (not pulled to 0 V by the E36312A's 10 Ω off-state)
    assert calls[0] == ("switch", {2: False, 3: False})  # the unclamped switched nodes stay released
    clamp = calls[1:3]
    assert clamp[0][0] == "sources" and clamp[1] == ("switch", {0: True, 1: True})  # level first, then connect
    release = calls[3:5]
    assert release[0] == ("switch", {0: False, 1: False, 2: False, 3: False}) and release[1][0] == "sources"
    assert bench.model.switches == dict.fromkeys(("n3", "n4", "n5", "n6"), False)  # the safe state opened them


def test_safe_state_opens_the_switches_even_when_the_sources_fail_once():
    bench, rig = _bench("sim16-switch.toml")
    try:
        rig.open()
        rig.apply({"n1": 1.0, "n2": 0.3, "n3": 0.4, "n4": 0.2})
        order: list[str] = []
        real_open, real_safe = rig.digipots.open_switches, rig.sources.safe_state
        fails = [True]

        def safe() -> None:
            order.append("sources")
            if fails.pop(0) if fails else False:
                raise RuntimeError("supply dropped off the bus")
            real_safe()

        rig.digipots.open_switches = lambda: (order.append("switches"), real_open())[1]  # type: ignore[method-assign]
        rig.sources.safe_state = safe  # type: ignore[method-assign]
        rig.safe_state()
        assert order == ["switches", "sources", "switches", "sources"]  # switches first, retried with the sources
        assert not any(bench.model.switches.values()) and bench.model.driven == {}
    finally:
        rig.close()


def test_board_reset_opens_the_switches_and_the_driver_closes_them_again():
    bench, rig = _bench("sim16-switch.toml")
    try:
        rig.open()
        rig.apply({"n1": 1.0, "n2": 0.3, "n3": 0.4, "n4": 0.2})
        bench.board.reset_now()
        assert not any(bench.model.switches.values())  # pull-downs while the MCU resets
        rig.write_codes(rig.codes + 1)  # the next exchange finds the reset and recovers
        assert bench.model.switches == {"n3": True, "n4": True, "n5": False, "n6": False}
        assert rig.digipots.stats["recoveries"] >= 1
    finally:
        rig.close()


def test_direct_switches_charge_the_switching_time():
    spec = load_rig(RIGS / "sim16-direct.toml")
    from dataclasses import replace

    spec = replace(spec, release=Release("switch", ADG412, {"n3": 0, "n4": 1}))
    rig = build_rig(spec, sim_seed=1)
    with rig:
        t0 = rig.clock.now()
        rig.release.switches.set_switches({0: True})  # type: ignore[union-attr]
        assert rig.clock.now() - t0 == pytest.approx(ADG412.settle_s)  # tON 250 ns max (Table 2)


# ---------------------------------------------------------------- learning (benchmarks/release_offstate.py)
def _bench_module():
    spec = importlib.util.spec_from_file_location("release_offstate", ROOT / "benchmarks" / "release_offstate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_loading_off_state_breaks_learning_and_switches_restore_it(tmp_path: Path):
    """One seed, 300 steps (benchmarks/release_offstate.py runs seeds 1-5): the 10 Ω off-state
    pulls the free outputs to ~0 V and training fails (its error stays high, or — with the
    worst-case limit check, issue 13 — the run is refused once the loaded free state could
    overload an edge: error inf); the switch rig learns like the ideal release of its own part."""
    b = _bench_module()
    ideal, v_ideal = b.run_variant(RIGS / "sim16.toml", 1, 300, tmp_path / "ideal")
    off, v_off = b.run_variant(RIGS / "sim16-offstate.toml", 1, 300, tmp_path / "off")
    sw, v_sw = b.run_variant(RIGS / "sim16-switch.toml", 1, 300, tmp_path / "sw")
    twin = b.ideal_twin(RIGS / "sim16-switch.toml", tmp_path / "sw-ideal.toml")
    sw_ideal, v_sw_ideal = b.run_variant(twin, 1, 300, tmp_path / "swi")
    for n in ("n3", "n4"):
        assert v_off[n] < 0.02 * v_ideal[n]  # pulled to within 2 % of 0 V
        assert abs(v_sw[n] - v_sw_ideal[n]) < 1e-3  # the open switch leaves the node floating
    assert off > 100 * ideal  # training on the loaded free state fails
    assert sw < 2 * sw_ideal and sw < 1e-4  # the switch rig learns as well as its ideal
