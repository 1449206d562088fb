"""Settle times from the sources' responses (issue 17: "choose ... settle times ... from what the
rule can tolerate").

Documents the figures come from:

* Keithley 2450 datasheet, SPEC-2450 Rev. A (July 2013), p. 4, "Output settling time: time
  required to reach within 0.1 % of final value: 20 V range, 100 mA I-limit: < 200 µs typical";
  2450 Reference Manual 2450-901-01 Rev. B, section 2 "Source delay", p. 2-111 (autodelay 1 ms).
* Intersil X9C102/103/104/503 data sheet FN8222.3, p. 5: t_IW "INC to V_W/R_W change" (100 µs,
  500 µs printed beside it); p. 4 (SPICE macro model): C_H/C_L/C_W = 10/10/25 pF.
* Keysight E36312A: no settling figure in the stored manuals (E36300, E3631A/E3632A guides); the
  E3632A User's Guide, ch. 6 "Remote Programming", gives only the mechanism (output capacitor and
  load). The simulated supply's response is the bench's own (``[simulator] supply_tau_s``).

The independent check is ngspice: a transient analysis of sim16 with the datasheet's digipot
capacitances and EXP sources shows every node within the tolerated residual at the derived wait.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from external import need

from labnet.app.build import build_rig
from labnet.app.cli import main
from labnet.app.measurement import measurement_plan, settle_model
from labnet.bench.settle import SettleModel, SettleTracking
from labnet.config.protocol import load_protocol
from labnet.config.rigfile import load_rig
from labnet.core.conductance import PartModel
from labnet.core.errors import ConfigError
from labnet.core.settling import KEITHLEY2450_RESPONSE, SourceResponse, settle_time
from simulator.bench import get_bench
from simulator.breadboard import Breadboard

ROOT = Path(__file__).resolve().parents[1]
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"
ALLOSTERY = ROOT / "protocols" / "allostery.toml"
NGSPICE = shutil.which("ngspice")


# ---------------------------------------------------------------------------- the response
def test_settle_time_leaves_exactly_the_tolerance() -> None:
    r = SourceResponse(1e-3, 2e-4)
    t = settle_time(r, 0.5, 1e-6)
    assert t == pytest.approx(1e-3 + 2e-4 * math.log(5e5), rel=1e-12)
    assert 0.5 * r.fraction_left(t) == pytest.approx(1e-6, rel=1e-9)
    assert 0.5 * r.fraction_left(0.9 * t) > 1e-6  # any shorter wait leaves more
    assert settle_time(r, -0.5, 1e-6) == t  # a step down is as long as a step up
    assert settle_time(r, 5e-7, 1e-6) == 0.0  # within the tolerance already
    assert r.fraction_left(0.5e-3) == 1.0  # nothing moves before the dead time
    with pytest.raises(ValueError, match="tolerance"):
        settle_time(r, 0.5, 0.0)
    for bad in ({"dead_s": -1e-3, "tau_s": 1e-4}, {"dead_s": 0.0, "tau_s": math.inf}):
        with pytest.raises(ValueError, match="finite time >= 0"):
            SourceResponse(**bad)


def test_the_2450_response_is_its_datasheet_settling_time() -> None:
    """SPEC-2450 Rev. A p. 4: within 0.1 % of the final value in 200 µs; its autodelay (1 ms on
    the 100 µA-1 A ranges, Reference Manual p. 2-111) then leaves e^-34.5 of a step."""
    assert KEITHLEY2450_RESPONSE.fraction_left(200e-6) == pytest.approx(1e-3, rel=1e-9)
    assert KEITHLEY2450_RESPONSE.fraction_left(1e-3) < 1e-14
    assert "SPEC-2450" in KEITHLEY2450_RESPONSE.basis


# ---------------------------------------------------------------------------- the simulator
def _wired_sim16(tmp_path: Path, extra: str = "") -> tuple[object, object]:
    text = SIM16.read_text().replace("meter_noise_v = 2e-5", "meter_noise_v = 0.0").replace(
        "meter_resolution_v = 1e-6", "meter_resolution_v = 0.0").replace("drift_kelvin = 0.5", "drift_kelvin = 0.0")
    (tmp_path / "r.toml").write_text(text + extra)
    spec = load_rig(tmp_path / "r.toml")
    rig = build_rig(spec)
    return rig, get_bench(spec.name)


def test_an_emulated_supply_output_approaches_its_setpoint_exponentially(tmp_path: Path) -> None:
    """psu1 channel 1 (n1) set to 0.5 V through pyvisa: the breadboard's n1 is off by
    −0.5·e^(−t/τ) (τ = sim16's 0.4 ms), a set mid-way starts from where the output is, and the
    metered floating nodes are never further from their settled value than the source."""
    rig, bench = _wired_sim16(tmp_path)
    model: Breadboard = bench.model  # type: ignore[attr-defined]
    tau = model.settings.supply_tau_s
    assert tau == 4e-4
    with rig:  # type: ignore[attr-defined]
        rig.apply({"n1": 0.5, "n2": 0.3})  # type: ignore[attr-defined]
        t0, v0, v1 = model.settling.moves["psu1.1"]  # when the emulated supply took the setpoint
        assert (v0, v1) == (0.0, 0.5) and t0 <= model.clock.now()  # its output was off: from 0 V
        gain = model.source_gain["psu1.1"]
        final = 0.5 * gain + model.source_offset["psu1.1"]
        for k in (0.5, 1.0, 3.0, 8.0):
            model.clock.t = t0 + k * tau
            got = model.held_voltages()["n1"]
            assert got - final == pytest.approx(-0.5 * gain * math.exp(-k), rel=1e-9, abs=1e-15)
        model.clock.t = t0 + tau  # set 0.2 V about one τ into the move (the write itself takes a little)
        rig.apply({"n1": 0.2, "n2": 0.3})  # type: ignore[attr-defined]
        t1 = model.settling.moves["psu1.1"][0]
        start = 0.5 * (1 - math.exp(-(t1 - t0) / tau))
        assert model.settling.moves["psu1.1"][1] == pytest.approx(start, rel=1e-12)
        model.clock.t = t1 + 2 * tau
        assert model.held_voltages()["n1"] - (0.2 * gain + model.source_offset["psu1.1"]) == pytest.approx(
            (start - 0.2) * gain * math.exp(-(t1 + 2 * tau - t1) / tau), rel=1e-9)
        # the model's scan straight after a change against one after the move is over (through
        # the rig, the first would be refused: a driven node off its setpoint reads as implausible)
        rig.apply({"n1": 0.45, "n2": 0.3})  # type: ignore[attr-defined]
        chans = sorted(model.network.meter_channels.values())
        soon = model.meter_read(chans)
        model.clock.t = model.clock.now() + 60 * tau
        late = model.meter_read(chans)
    step = 0.45 - 0.2  # at most this much of a move is left at any time (the output was settling toward 0.2 V)
    dev = np.abs(soon - late)
    assert dev.max() > 1e-6  # the reading that came too soon saw the move
    assert dev.max() <= step * (1 + 1e-9)  # no node further off than the source


def test_the_settling_state_is_in_the_checkpoint(tmp_path: Path) -> None:
    rig, bench = _wired_sim16(tmp_path)
    model: Breadboard = bench.model  # type: ignore[attr-defined]
    with rig:  # type: ignore[attr-defined]
        rig.apply({"n1": 0.5, "n2": 0.3})  # type: ignore[attr-defined]
        state = model.state()
        before = model.held_voltages()
        model.clock.t += 1.0
        model.settling.moves.clear()
        model.restore(state)
        assert model.held_voltages() == before
        assert state["settling"]["moves"]


# ---------------------------------------------------------------------------- the waits
class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


class _Tracked(SettleTracking):
    def __init__(self, model: SettleModel) -> None:
        self.clock = _Clock()
        self.settle_model = model


def test_the_wait_is_the_longest_any_change_needs() -> None:
    slow, fast = SourceResponse(0.0, 4e-4), SourceResponse(0.0, 3e-5)
    m = SettleModel({"a": slow, "b": fast}, tolerance_v=1e-6, wiper_s=5e-4)
    r = _Tracked(m)
    r._note_change({}, {"a": 0.5, "b": 0.1})  # both turn on (from 0 V)
    assert r.wait_for(0.01) == pytest.approx(settle_time(slow, 0.5, 1e-6))
    assert r.wait_for(0.01) == 0.0  # nothing changed since
    r._note_change({"a": 0.5, "b": 0.1}, {"a": 0.5, "b": 0.9})  # only the fast one moves
    assert r.wait_for(0.01) == pytest.approx(settle_time(fast, 0.8, 1e-6))
    r._note_codes()
    assert r.wait_for(0.01) == pytest.approx(5e-4)  # the wiper change
    r._note_change({"a": 0.5}, {"a": 0.5, "c": 0.2})  # c has no known response: settle_s
    assert r.wait_for(0.01) == pytest.approx(0.01)
    r._note_change({"a": 0.5, "b": 0.9}, {"a": 0.5})  # b's output off: as a step to 0 V
    assert r.wait_for(0.01) == pytest.approx(settle_time(fast, 0.9, 1e-6))
    switched = _Tracked(SettleModel({"a": slow}, tolerance_v=1e-6, switched=frozenset({"a"})))
    switched._note_change({"a": 0.5}, {})  # released by its switch: a resistive network, no wait
    assert switched.wait_for(0.01) == 0.0
    r.clock.t = 1.0
    r._note_change({"a": 0.5}, {"a": 0.0})
    r.clock.t = 1.0 + 1e-3  # time already spent (sending the other commands) counts
    assert r.wait_for(0.01) == pytest.approx(max(0.0, settle_time(slow, 0.5, 1e-6) - 1e-3))
    assert _Tracked.__mro__[1].wait_for(SettleTracking(), 0.02) == 0.02  # no model: settle_s


def test_sim16_settles_by_the_stated_and_the_documented_responses() -> None:
    protocol = load_protocol(ALLOSTERY)
    plan = measurement_plan(protocol)
    m = settle_model(protocol, plan)
    assert plan is not None and m is not None
    assert m.responses["n7"] is KEITHLEY2450_RESPONSE  # the smu: its datasheet
    assert {n: m.responses[n].tau_s for n in ("n1", "n2", "n3", "n4", "n5", "n6")} == dict.fromkeys(
        ("n1", "n2", "n3", "n4", "n5", "n6"), 4e-4)  # the E36312A: stated in the rig file
    assert m.wiper_s == 500e-6 and m.reconnect_v == 0.0
    assert 0 < m.tolerance_v <= 0.05 * plan.sigma_v


def _run_recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rig_text: str, steps: int) -> tuple[list[float], float]:
    """Run allostery on ``rig_text`` for ``steps`` steps; the largest unsettled residual of any
    driven output at each scan and the run's settle tolerance."""
    seen: list[float] = []
    real = Breadboard.meter_read

    def read(self: Breadboard, channels: list[str], nplc: float | None = None, counts_v: object = None) -> np.ndarray:
        now = self.clock.now()
        seen.append(max((abs(self.settling.residual(ch, now)) * self.source_gain[ch] for ch in self.driven), default=0.0))
        return real(self, channels, nplc, counts_v)

    monkeypatch.setattr(Breadboard, "meter_read", read)
    rig = tmp_path / "rig.toml"
    rig.write_text(rig_text)
    protocol = load_protocol(ALLOSTERY, rig=rig)
    m = settle_model(protocol, measurement_plan(protocol))
    assert m is not None
    argv = ["run", str(ALLOSTERY), "--rig", str(rig), "--steps", str(steps), "--seed", "1", "--out", str(tmp_path / "s")]
    assert main(argv) == 0
    return seen, m.tolerance_v


def test_every_reading_of_a_planned_run_waits_out_the_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At every scan of 30 planned steps on sim16 no driven output is further from its setpoint
    than the tolerated residual — and the waits are tight: some scans see a residual not far below it."""
    seen, eps = _run_recording(tmp_path, monkeypatch, SIM16.read_text(), 30)
    assert len(seen) > 60
    assert max(seen) <= eps * (1 + 1e-6)
    # not vacuous: the waits end near the tolerance (the scan's own commands add ~2τ), where the
    # fixed 10 ms would leave e^-25 of a step
    assert max(seen) >= 0.05 * eps


def test_a_response_stated_too_fast_shows_in_the_readings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same run with the supplies stated 10x faster than the simulated ones (0.04 ms against
    0.4 ms): readings come while the outputs are still far from their setpoints."""
    text = SIM16.read_text().replace("response_tau_s = 4e-4", "response_tau_s = 4e-5")
    seen, eps = _run_recording(tmp_path, monkeypatch, text, 10)
    assert max(seen) > 1e3 * eps


@pytest.mark.parametrize(("edit", "key", "problem"), [
    (("current_limit_a = 0.01\nresponse_tau_s = 4e-4", "current_limit_a = 0.01\nresponse_tau_s = -1e-4"),
     "instruments.sources.psu1.response_tau_s", ">= 0"),
    (("current_limit_a = 0.01\nresponse_tau_s = 4e-4", "current_limit_a = 0.01\nresponse_tau_s = 20.0"),
     "instruments.sources.psu1.response_tau_s", "10"),
    (("current_limit_a = 0.01\nresponse_tau_s = 4e-4", "current_limit_a = 0.01\nresponse_dead_s = \"fast\""),
     "instruments.sources.psu1.response_dead_s", "number"),
    (("supply_tau_s = 4e-4", "supply_tau_s = -4e-4"), "simulator.supply_tau_s", ""),
])
def test_bad_responses_are_one_line(tmp_path: Path, edit: tuple[str, str], key: str, problem: str) -> None:
    text = SIM16.read_text()
    assert edit[0] in text
    (tmp_path / "r.toml").write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError) as exc:
        load_rig(tmp_path / "r.toml")
    assert key in str(exc.value) and problem in str(exc.value)


def test_a_current_source_has_no_stated_voltage_response(tmp_path: Path) -> None:
    text = (ROOT / "protocols" / "rigs" / "sim16-current.toml").read_text()
    marker = 'function = "current"'
    assert marker in text
    (tmp_path / "r.toml").write_text(text.replace(marker, marker + "\nresponse_tau_s = 1e-4", 1))
    with pytest.raises(ConfigError, match=r"response_tau_s.*current source"):
        load_rig(tmp_path / "r.toml")


# ---------------------------------------------------------------------------- ngspice
#: X9C10x SPICE macro model (FN8222.3 p. 4): terminal capacitances (F) of each digipot.
C_H, C_L, C_W = 10e-12, 10e-12, 25e-12


def _transient(net: object, k: np.ndarray, before: dict[str, float], after: dict[str, float],
               tau: dict[str, float], times: list[float], tmp: Path) -> np.ndarray:
    """ngspice node voltages (len(times), N) of ``net`` when each source goes from ``before`` to
    ``after`` (a node missing from ``before`` starts at 0 V) along EXP(τ) at t = 0, each digipot
    with C_H at its first node and C_L + C_W at its wiper node (rheostat: L tied to W)."""
    nodes = net.nodes  # type: ignore[attr-defined]
    name = {n: ("0" if n == net.ground else f"x{i}") for i, n in enumerate(nodes)}  # type: ignore[attr-defined]
    lines = ["* sim16 settling"]
    cap = dict.fromkeys(nodes, 0.0)
    for j, (a, b) in enumerate(net.edges):  # type: ignore[attr-defined]
        lines.append(f"R{j} {name[a]} {name[b]} {1.0 / k[j]:.12e}")
        cap[a] += C_H
        cap[b] += C_L + C_W
    for n, c in cap.items():
        if n != net.ground and n not in after:  # type: ignore[attr-defined]
            lines.append(f"C_{name[n]} {name[n]} 0 {c:.6e}")
    for i, (n, v1) in enumerate(after.items()):
        v0 = before.get(n, 0.0)
        lines.append(f"V{i} {name[n]} 0 EXP({v0:.12e} {v1:.12e} 0 {tau[n]:.6e} 1 1)")
    raw = tmp / "out.raw"
    lines += [".options reltol=1e-9 abstol=1e-18 vntol=1e-12 method=gear",
              ".control", "set filetype=ascii", f"tran 1e-6 {max(times) * 1.05:.6e} 0 2e-6",
              f"write {raw} all", "quit 0", ".endc", ".end"]
    (tmp / "deck.cir").write_text("\n".join(lines) + "\n")
    subprocess.run([NGSPICE or "ngspice", "-b", str(tmp / "deck.cir")], check=True, capture_output=True, timeout=120)
    text = raw.read_text().splitlines()
    i = next(n for n, s in enumerate(text) if s.startswith("Variables:"))
    j = next(n for n, s in enumerate(text) if s.startswith("Values:"))
    names = [s.split()[1].lower() for s in text[i + 1:j]]
    nvar = len(names)
    vals = [float(s.split()[-1]) for s in text[j + 1:] if s.strip()]  # "index value", then "value" lines
    rows = np.array(vals).reshape(-1, nvar)
    t = rows[:, names.index("time")]
    out = np.zeros((len(times), len(nodes)))
    for c, n in enumerate(nodes):
        if n == net.ground:  # type: ignore[attr-defined]
            continue
        col = rows[:, names.index(f"v({name[n]})")]
        out[:, c] = np.interp(times, t, col)
    return out


def test_ngspice_transient_every_node_is_settled_at_the_derived_wait(tmp_path: Path) -> None:
    """sim16 at the power-up codes going from the free state (inputs n1 = 0.6 V, n2 = 0.2 V,
    outputs floating) to a clamped one (n3 = 0.35 V, n4 = 0.25 V turned on, n1 to 0.55 V), the
    E36312A outputs with sim16's stated τ = 0.4 ms and the digipots' datasheet capacitances:
    at the derived wait every node is within the tolerated residual of its final value (ngspice,
    EXP sources); at 80 % of the wait some node is not."""
    need("ngspice", apt="ngspice", why="the independent transient check of the settling model")
    protocol = load_protocol(ALLOSTERY)
    m = settle_model(protocol, measurement_plan(protocol))
    assert m is not None
    net = protocol.network
    k = PartModel(protocol.rig.part, net.n_edges).conductance(np.full(net.n_edges, protocol.rig.part.power_up_code))
    before = {"n1": 0.6, "n2": 0.2}
    after = {"n1": 0.55, "n2": 0.2, "n3": 0.35, "n4": 0.25}
    tau = {n: m.responses[n].tau_s for n in after}
    wait = max(settle_time(m.responses[n], abs(v - before.get(n, 0.0)), m.tolerance_v) for n, v in after.items())
    assert 3e-3 < wait < 8e-3  # 0.4 ms × ln(0.35 V / ~1 µV): well under the fixed 10 ms
    v = _transient(net, k, before, after, tau, [0.8 * wait, wait, 20e-3], tmp_path)
    final = v[2]
    free = [net.index[n] for n in net.nodes if n not in after and n != net.ground]
    assert np.max(np.abs(v[1][free] - final[free])) <= m.tolerance_v * 1.01
    assert np.max(np.abs(v[0][free] - final[free])) > m.tolerance_v


@pytest.mark.parametrize("timed", [True, False])
def test_the_steps_of_a_planned_transition_wait_for_each_other(tmp_path: Path, timed: bool) -> None:
    """On the 20 V rig of tests/test_limit_attacks.py the 40 patterns need planned, single-channel
    steps. Each step must start from the state the plan checked: with the waits timed by the
    responses, no output is further than the tolerance from its level when the next step is sent;
    with steps back to back (no model, no fallback: what a fixed wait did) outputs are volts away."""
    from test_limit_attacks import limit_attacks, safe_patterns  # limit_attacks: benchmarks/, shared

    (tmp_path / "rig.toml").write_text(limit_attacks.rig_text(initial_code=99, max_v=20.0, wide=True))
    spec = load_rig(tmp_path / "rig.toml")
    rig = build_rig(spec)
    model: Breadboard = get_bench(spec.name).model
    if timed:
        responses = {n: SourceResponse(0.0, 4e-4) for n in ("n1", "n2", "n3", "n4", "n5", "n6")}
        responses["n7"] = KEITHLEY2450_RESPONSE
        rig.settle_model = SettleModel(responses, tolerance_v=1e-6)
        rig.settle_fallback_s = 0.01
    left: list[float] = []
    drive = rig._drive

    def recorded(held: dict[str, float]) -> None:
        now = model.clock.now()
        left.append(max((abs(model.settling.residual(ch, now)) for ch in model.driven), default=0.0))
        drive(held)

    rig._drive = recorded  # type: ignore[method-assign]
    with rig:
        for p in safe_patterns(rig):
            rig.apply(p)
            rig.settle(rig.wait_for(0.01))  # as the engine does before a reading
        assert rig.planned_transitions >= 10
    if timed:
        assert max(left) <= 1e-6 * (1 + 1e-9)
    else:
        assert max(left) > 0.1
