"""The run's states (labnet.experiments.runstate): every allowed transition works, every other
raises; the one mapping from how a run ended to its outcome; stop requests; request-mode signals
and the sliced wait (labnet.experiments.signals)."""

from __future__ import annotations

import signal
import time

import pytest

from labnet.experiments.runstate import (
    TRANSITIONS,
    Ending,
    Outcome,
    RunMachine,
    RunState,
    StopRequest,
    TransitionError,
    decide,
)
from labnet.experiments.signals import StopSignal, shielded, stop_signals, wait

#: The transitions the design allows, written out independently of the module's table.
ALLOWED = {
    (RunState.IDLE, RunState.RUNNING),
    (RunState.IDLE, RunState.STOPPING),  # set-up failed before the run started
    (RunState.RUNNING, RunState.STOPPING),
    (RunState.STOPPING, RunState.SAFE),
    (RunState.STOPPING, RunState.ENDED),  # safe state not reached
    (RunState.SAFE, RunState.ENDED),
}


def _machine_in(state: RunState) -> RunMachine:
    m = RunMachine()
    path = {RunState.IDLE: [], RunState.RUNNING: [RunState.RUNNING],
            RunState.STOPPING: [RunState.RUNNING, RunState.STOPPING],
            RunState.SAFE: [RunState.RUNNING, RunState.STOPPING, RunState.SAFE],
            RunState.ENDED: [RunState.RUNNING, RunState.STOPPING, RunState.SAFE, RunState.ENDED]}[state]
    for s in path:
        m.to(s)
    assert m.state is state
    return m


def test_table_is_the_design() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED
    assert set(TRANSITIONS) == set(RunState)


@pytest.mark.parametrize("src", list(RunState))
@pytest.mark.parametrize("dst", list(RunState))
def test_every_transition_is_allowed_or_refused(src: RunState, dst: RunState) -> None:
    m = _machine_in(src)
    if (src, dst) in ALLOWED:
        m.to(dst)
        assert m.state is dst and m.history[-1] is dst
    else:
        with pytest.raises(TransitionError, match=f"{src.value} -> {dst.value}"):
            m.to(dst)
        assert m.state is src


def test_end_needs_the_safe_state_or_a_failure() -> None:
    m = _machine_in(RunState.SAFE)
    m.end(Ending(Outcome.COMPLETED, "5 steps", True))
    assert m.state is RunState.ENDED and m.ending is not None and m.ending.outcome is Outcome.COMPLETED
    m = _machine_in(RunState.STOPPING)  # the safe state was not reached
    with pytest.raises(TransitionError):
        m.end(Ending(Outcome.STOPPED, "x", False))
    with pytest.raises(TransitionError):
        m.end(Ending(Outcome.FAILED, "x", True))  # claims safe without having been there
    m.end(Ending(Outcome.FAILED, "x", False))
    assert m.state is RunState.ENDED
    with pytest.raises(TransitionError):
        _machine_in(RunState.RUNNING).end(Ending(Outcome.COMPLETED, "x", True))


def test_decide_maps_every_ending() -> None:
    d = decide(error=None, stopped=False, stop_reason=None, done_reason="5 steps", safe=True)
    assert d == Ending(Outcome.COMPLETED, "5 steps", True)
    d = decide(error=None, stopped=True, stop_reason="SIGTERM: stopped at a safe point", done_reason="", safe=True)
    assert d == Ending(Outcome.STOPPED, "SIGTERM: stopped at a safe point", True)
    d = decide(error=StopSignal(signal.SIGINT), stopped=False, stop_reason="x", done_reason="", safe=True)
    assert d == Ending(Outcome.STOPPED, "interrupted by SIGINT (Ctrl-C)", True)
    d = decide(error=KeyboardInterrupt(), stopped=False, stop_reason=None, done_reason="", safe=True)
    assert d == Ending(Outcome.STOPPED, "interrupted (Ctrl-C)", True)
    d = decide(error=RuntimeError("cable"), stopped=False, stop_reason=None, done_reason="", safe=True)
    assert d == Ending(Outcome.FAILED, "RuntimeError: cable", True)
    d = decide(error=None, stopped=False, stop_reason=None, done_reason="5 steps", safe=False,
               unsafe_why="OSError: supply gone")
    assert d.outcome is Outcome.FAILED and not d.safe
    assert d.reason.startswith("SAFE STATE NOT REACHED (OSError: supply gone)") and "completed: 5 steps" in d.reason


def test_stop_request_first_wins() -> None:
    r = StopRequest()
    assert not r
    r.request("first", signal.SIGTERM)
    r.request("second", signal.SIGINT)
    assert r and (r.reason, r.signum) == ("first", signal.SIGTERM)


def test_first_signal_requests_second_forces_then_deferred() -> None:
    asked: list[int] = []
    with stop_signals(on_first=asked.append) as guard:
        assert guard is not None
        signal.raise_signal(signal.SIGTERM)  # the handler has run when raise_signal returns
        assert asked == [signal.SIGTERM] and guard.requested == signal.SIGTERM
        with pytest.raises(StopSignal, match="SIGINT"):
            signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)  # deferring now: recorded, not raised
        assert guard.deferred == [signal.SIGINT]
    assert asked == [signal.SIGTERM]


def test_without_on_first_the_first_signal_raises() -> None:
    with stop_signals() as guard:
        with pytest.raises(StopSignal):
            signal.raise_signal(signal.SIGHUP)
        with shielded():
            signal.raise_signal(signal.SIGHUP)
        assert guard is not None and guard.deferred == [signal.SIGHUP]


def test_wait_slices_and_returns_early() -> None:
    slept: list[float] = []
    calls = iter(range(1000))
    assert wait(1.0, lambda: next(calls) >= 3, slept.append) is False
    assert len(slept) == 3 and max(slept) <= 0.05
    t0 = time.monotonic()
    assert wait(0.12, lambda: False) is True
    assert 0.12 <= time.monotonic() - t0 < 0.5
