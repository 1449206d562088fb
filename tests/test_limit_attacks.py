"""Issue 13's limit attacks, measured against the truth, and the planning of in-between states.

The simulator knows the drawn parts; :mod:`simulator.monitor` records the worst true edge
current over *every* state the bench passes through (every SCPI source command, every wiper
tap). With the worst-case check it must stay within the rating; with the old nominal-only check
(re-created here by patching the conductance box to the nominal curve and checking only
targets) the same attacks exceed it — so these tests can fail. Datasheet facts behind the box:
X9C102/103/104/503 datasheet FN8222 (Renesas/Intersil), "Electrical Specifications —
Potentiometer characteristics": R_TOTAL −20…+20 %, R_W 100 Ω max, absolute linearity ±1 MI,
wiper current ±1 mA (the rating).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from labnet.app.build import build_rig
from labnet.bench.limits import LimitChecks
from labnet.bench.transitions import plan_codes, plan_ramp, plan_sources
from labnet.config.rigfile import load_rig
from labnet.core.errors import LimitError
from simulator.bench import get_bench
from simulator.monitor import watch_edge_currents

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import limit_attacks  # noqa: E402  (the attack files, shared with the benchmark script)


@pytest.fixture
def nominal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check as it was: the model's own conductances (nominal curve or table), targets only."""
    def box(self, codes):  # type: ignore[no-untyped-def]
        k = np.asarray(self.model.conductance(np.asarray(codes, dtype=np.int64)), dtype=float)
        return k, k, float(np.max(k))

    real = LimitChecks.transition_bound
    monkeypatch.setattr(LimitChecks, "conductance_box", box)
    monkeypatch.setattr(LimitChecks, "transition_bound",
                        lambda self, old, new, c0, c1: real(self, new, new, c1, c1))


@pytest.mark.parametrize("attack, samples", [("a1", 200), ("b", 60)])
def test_attack_exceeds_the_rating_with_the_nominal_check(tmp_path: Path, nominal_only: None, attack: str,
                                                          samples: int) -> None:
    rc, pct, _, _ = limit_attacks.measure(attack, tmp_path, samples)
    assert pct > 100.0


@pytest.mark.parametrize("attack, samples", [("a1", 200), ("a5", 30), ("b", 30)])
def test_attack_stays_within_the_rating_at_every_instant(tmp_path: Path, attack: str, samples: int) -> None:
    """Every state, in-between ones included; a refusal names the edge and the %."""
    rc, pct, _, last = limit_attacks.measure(attack, tmp_path, samples)
    assert pct <= 100.0
    assert rc == 0 or ("worst case" in last and "% of its 1.000 mA rating" in last and "edge ('n" in last)
    if attack == "a1":
        assert rc == 0 and pct > 50.0  # the probe ran: patterns near the limit were applied


def test_table_of_another_part_is_refused_before_any_current(tmp_path: Path) -> None:
    """On the command line the table's binding refuses it (exit 2) before anything opens; the
    limit check refuses it on its own too (a table slipped past the binding, set as the model)."""
    from labnet.experiments.calibration.table import CalibrationTable

    rc, pct, _, last = limit_attacks.measure("c", tmp_path, 30)
    assert rc == 2 and pct == 0.0 and "X9C303" in last
    table = CalibrationTable.from_csv(tmp_path / "table303.csv", 16)
    rig = _rig(tmp_path, initial_code=99, max_v=20.0, wide=True)
    rig.model = table
    with rig, watch_edge_currents() as mon:
        with pytest.raises(LimitError, match=r"edge \('n.*calibration table.*outside what a X9C103 can be"):
            rig.apply({"n2": 20.0, "n5": 0.0})
        assert mon.peak.percent == 0.0


def test_table_of_the_rig_bounds_with_its_sigma(tmp_path: Path) -> None:
    """A table of this rig (calibrated on the simulator) narrows the box to value ± 4σ (and
    the tempco allowance) inside the part's box, and the truth lies inside it."""
    from labnet.experiments.calibration.table import CalibrationTable

    argv = ["calibrate", str(ROOT / "protocols" / "calibrate.toml"), "--out", str(tmp_path / "cal")]
    assert limit_attacks.run(argv)[0] == 0
    table = CalibrationTable.from_csv(next((tmp_path / "cal").glob("*/calibration.csv")), 16)
    rig = build_rig(load_rig(ROOT / "protocols" / "rigs" / "sim16.toml"))
    part_lo, part_hi, _ = rig.conductance_box(np.full(16, 30))
    rig.model = table
    with rig:
        model = get_bench("sim16").model  # the simulator's truth
        for code in (10, 30, 60, 99):
            codes = np.full(16, code)
            k_lo, k_hi, _ = rig.conductance_box(codes)
            if code == 30:
                assert np.all(k_hi - k_lo < 0.2 * (part_hi - part_lo))  # much narrower than the part's
            k_true = model.conductances(codes)
            assert np.all(k_true >= k_lo) and np.all(k_true <= k_hi)


def _rig(tmp_path: Path, **kw):  # type: ignore[no-untyped-def]
    f = tmp_path / "rig.toml"
    f.write_text(limit_attacks.rig_text(**kw))
    return build_rig(load_rig(f))


def safe_patterns(rig, count: int = 40, seed: int = 0) -> list[dict[str, float]]:  # type: ignore[no-untyped-def]
    """``count`` random patterns of n2, n3, n5, n6 in 0-20 V on the 20 V rig, each safe in the
    worst case at the rig's present codes (an open rig)."""
    rng = np.random.default_rng(seed)
    codes = rig.codes
    patterns: list[dict[str, float]] = []
    while len(patterns) < count:
        p = dict(zip(["n2", "n3", "n5", "n6"], map(float, rng.uniform(0, 20, 4))))
        if rig.is_safe(p, p, codes, codes):
            patterns.append(p)
    return patterns


class _Recording:
    """Wraps a role and records each call of ``name``."""

    def __init__(self, inner, name: str) -> None:  # type: ignore[no-untyped-def]
        self._inner, self._name, self.calls = inner, name, []

    def __getattr__(self, a):  # type: ignore[no-untyped-def]
        fn = getattr(self._inner, a)
        if a != self._name:
            return fn

        def rec(*args):  # type: ignore[no-untyped-def]
            self.calls.append(args)
            return fn(*args)
        return rec


def test_in_between_states_are_planned_on_a_20_v_rig(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """40 patterns, each safe in the worst case, applied one after another: about half of the
    changes are not safe in one message and are reordered or ramped; the truth stays within the
    rating at every source command."""
    rig = _rig(tmp_path, initial_code=99, max_v=20.0, wide=True)
    with rig, watch_edge_currents() as mon, caplog.at_level("INFO", logger="labnet.bench.rig"):
        patterns = safe_patterns(rig)
        rig.sources = _Recording(rig.sources, "apply")
        for p in patterns:
            rig.apply(p)
            assert rig.held == p
        assert mon.peak.percent <= 100.0
        assert rig.planned_transitions >= 10
        assert len(rig.sources.calls) > len(patterns)  # planned changes: more than one message
    planned = [r for r in caplog.records if getattr(r, "event", "") == "transition_planned"]
    assert len(planned) == rig.planned_transitions
    for r in planned:
        steps = [r.fields["from"], *r.fields["steps"]]
        for a, b in zip(steps, steps[1:]):
            changed = {n for n in set(a) | set(b) if a.get(n) != b.get(n)}
            assert len(changed) == 1


def test_planned_changes_reach_the_session_event_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every planned change is a ``transition_planned`` line in ``events.jsonl``. Before: its
    ``kind`` field collided with the event's own kind, so the log handler printed a 30-line
    "Logging error" traceback on stderr for each planned change (seen in `labnet resume` of a
    breadboard16 dry run) and the event was lost."""
    import json

    from labnet.session.events import EventLog, attach_event_log, detach_event_log

    rig = _rig(tmp_path, initial_code=99, max_v=20.0, wide=True)
    events = EventLog(tmp_path)
    undo = attach_event_log(events)
    try:
        with rig:
            for p in safe_patterns(rig):
                rig.apply(p)
    finally:
        detach_event_log(events, undo)
        events.close()
    lines = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    planned = [e for e in lines if e["kind"] == "transition_planned"]
    assert rig.planned_transitions >= 5 and len(planned) == rig.planned_transitions
    assert all(e["change"] == "sources" and e["level"] == "INFO" for e in planned)
    assert "Logging error" not in capsys.readouterr().err


def test_event_fields_never_override_the_record() -> None:
    import logging

    from labnet.session.events import EventLogHandler

    got: list[tuple[str, dict]] = []

    class Sink:
        def log(self, kind: str, **fields: object) -> None:
            got.append((kind, fields))

    h = EventLogHandler(Sink())  # type: ignore[arg-type]
    rec = logging.LogRecord("labnet.x", logging.INFO, __file__, 1, "m %d", (3,), None)
    rec.event, rec.fields = "e", {"kind": "k", "message": "x", "n": 1}
    h.emit(rec)
    assert got == [("e", {"level": "INFO", "logger": "labnet.x", "message": "m 3", "field_kind": "k",
                          "field_message": "x", "n": 1})]


def test_code_writes_are_reordered_under_a_held_pattern(tmp_path: Path) -> None:
    """Swapping a low and a high code on the two edges of a divider under 5 V: both end states
    are safe, writing both at once (or the low one first) is not; the rig writes the high one
    first. Every X9C tap the wipers pass is checked by the monitor."""
    rig = _rig(tmp_path, initial_code=99, max_v=5.0)
    with rig, watch_edge_currents() as mon:
        old = np.full(16, 99)
        old[1] = 10  # n1-n4
        rig.write_codes(old)
        held = {"n1": 5.0}
        rig.apply(held)
        new = old.copy()
        new[1], new[0] = 99, 10  # n1-n4 up, n0-n4 down
        assert rig.is_safe(held, held, new, new) and not rig.is_safe(held, held, old, new)
        rig.digipots = _Recording(rig.digipots, "write_codes")
        rig.write_codes(new)
        assert [c for c, _ in rig.digipots.calls] == [[1], [0]]
        np.testing.assert_array_equal(rig.codes, new)
        assert rig.held == held and mon.peak.percent <= 100.0


def test_code_writes_drop_the_sources_when_no_order_is_safe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import labnet.bench.planned as planned

    monkeypatch.setattr(planned, "plan_codes", lambda *a, **k: None)
    rig = _rig(tmp_path, initial_code=99, max_v=5.0)
    with rig, watch_edge_currents() as mon:
        old = np.full(16, 99)
        old[1] = 10
        rig.write_codes(old)
        rig.apply({"n1": 5.0})
        new = old.copy()
        new[1], new[0] = 99, 10
        rig.sources = _Recording(rig.sources, "apply")
        rig.write_codes(new)
        assert rig.sources.calls[0] == ({},) and rig.sources.calls[-1] == ({"psu1.1": 5.0},)
        assert rig.held == {"n1": 5.0} and mon.peak.percent <= 100.0


def test_refusal_names_edge_and_percent(tmp_path: Path) -> None:
    rig = _rig(tmp_path, initial_code=10, max_v=1.0)
    with rig:
        rig.write_codes(np.full(16, 10))
        with pytest.raises(LimitError, match=r"edge \('n2', 'n5'\): could carry 1\.\d+ mA in the worst case, 1\d\d\.\d %"):
            rig.apply({"n2": 1.0, "n5": 0.0})


def test_default_training_run_is_not_refused_nor_replanned(tmp_path: Path) -> None:
    """sim16 allostery: the worst case is within the rating everywhere; every change goes in one
    message as before (same commands, so the same data)."""
    from labnet.app.runner import run_protocol
    from labnet.config.protocol import load_protocol

    proto = load_protocol(ROOT / "protocols" / "allostery.toml", steps=40)
    with watch_edge_currents() as mon:
        out = run_protocol(proto, session_dir=tmp_path / "s", progress=False)
    assert out.result.status == "completed"
    assert out.rig.planned_transitions == 0
    assert mon.peak.percent <= 100.0


# ---------------------------------------------------------------------------------- planners
def test_plan_sources_reorders_and_drops() -> None:
    """With "|V_a − V_b| ≤ limit whenever both are held" as the rule: a crossing needs the right
    order; moving both by more than the limit needs one switched off first."""
    def rule(limit: float):  # type: ignore[no-untyped-def]
        def safe(p, q):  # type: ignore[no-untyped-def]
            return all(abs(s["a"] - s["b"]) <= limit for s in (p, q) if "a" in s and "b" in s)
        return safe

    steps = plan_sources({"a": 0.0, "b": 0.5}, {"a": 1.5, "b": 2.0}, rule(1.0))
    assert steps == [{"a": 1.5, "b": 0.5}, {"a": 1.5, "b": 2.0}]
    drop = plan_sources({"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 1.0}, rule(0.5))
    assert drop is not None and drop[-1] == {"a": 1.0, "b": 1.0}
    assert any(len(s) == 1 for s in drop)  # one node off on the way
    here = {"a": 0.0, "b": 0.0}
    for s in drop:
        assert rule(0.5)(here, s) and len({n for n in set(here) | set(s) if here.get(n) != s.get(n)}) == 1
        here = s
    assert plan_sources({"a": 0.0}, {"a": 0.0}, rule(0.5)) == []


def test_plan_ramp_when_every_order_of_whole_moves_fails() -> None:
    def safe(p, q):  # type: ignore[no-untyped-def]
        ok = all(abs(s.get("a", 0.0) - s.get("b", 0.0)) <= 1.0 for s in (p, q))
        return ok and all(("a" in s) == ("b" in s) or max(s.values(), default=0) <= 1.0 for s in (p, q))

    old, new = {"a": 0.0, "b": 0.0}, {"a": 5.0, "b": 5.0}
    assert plan_sources(old, new, safe) is None
    steps = plan_ramp(old, new, safe)
    assert steps is not None and steps[-1] == new
    here = old
    for s in steps:
        assert safe(here, s)
        here = s


def test_plan_codes_orders_single_edge_moves() -> None:
    def safe(a, b):  # type: ignore[no-untyped-def]
        return all(not (c[0] < 5 and c[1] < 5) for c in (a, b))  # never both low

    steps = plan_codes(np.array([2, 9]), np.array([9, 2]), safe)
    assert steps is not None and [s.tolist() for s in steps] == [[9, 9], [9, 2]]
    assert plan_codes(np.array([2, 2]), np.array([9, 9]), lambda a, b: False) is None


@pytest.mark.parametrize("rig_file, refused", [("sim16.toml", False), ("sim16-offstate.toml", True)])
def test_loading_off_state_counts_as_a_path_to_0_v(rig_file: str, refused: bool) -> None:
    """n1 at 1 V with n1-n4 at code 10 and everything else at 99: safe while the released n4
    floats; with the 10 Ω off-state of sim16-offstate.toml n4 sits at ~0 V and 1 V lies across
    the low edge (up to 138 % of the rating for a part at the low end of its box)."""
    rig = build_rig(load_rig(ROOT / "protocols" / "rigs" / rig_file))
    with rig, watch_edge_currents() as mon:
        codes = np.full(16, 99)
        codes[1] = 10
        rig.write_codes(codes)
        if refused:
            assert "n4" in rig.off_loaded
            with pytest.raises(LimitError, match=r"edge \('n1', 'n4'\)"):
                rig.apply({"n1": 1.0})
        else:
            rig.apply({"n1": 1.0})
        assert mon.peak.percent <= 100.0
