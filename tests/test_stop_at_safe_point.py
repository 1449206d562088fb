"""One owner of a run's life (labnet.experiments.lifecycle): the first stop signal asks for a
stop that takes effect at the engine's next safe point, a second forces it, a long settle
reacts promptly, and the record says where the run stopped (the last complete step)."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from labnet.app.runner import resume_session, run_protocol
from labnet.bench.clock import WallClock
from labnet.config.protocol import load_protocol
from labnet.experiments.engine import Checkpoint, Engine, StateMeasured, StepDone
from labnet.experiments.lifecycle import RunOwner
from labnet.experiments.runstate import RunState
from labnet.experiments.signals import StopSignal
from labnet.session.checkpoint import read_checkpoint
from labnet.session.folder import read_session, read_status

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "protocols" / "allostery.toml"


class SignalAt:
    """Raise ``signal`` (``times`` times) in the middle of step ``step``: at its ``phase`` state.
    Records every event it sees."""

    def __init__(self, step: int, phase: str, times: int = 1, sig: int = signal.SIGINT) -> None:
        self.step, self.phase, self.times, self.sig = step, phase, times, sig
        self.events: list[object] = []
        self.fired = False

    def __call__(self, ev: object) -> None:
        self.events.append(ev)
        if isinstance(ev, StateMeasured) and (ev.step, ev.phase) == (self.step, self.phase) and not self.fired:
            self.fired = True
            for _ in range(self.times):
                signal.raise_signal(self.sig)  # the handler has run when this returns

    def states(self) -> list[StateMeasured]:
        return [e for e in self.events if isinstance(e, StateMeasured)]


def _rows(folder: Path) -> pd.DataFrame:
    return read_session(folder).drop(columns=["time_s", "attempt"]).reset_index(drop=True)


@pytest.mark.parametrize("sig,word", [(signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")])
def test_first_signal_in_a_step_stops_at_the_next_safe_point(tmp_path: Path, sig: int, word: str) -> None:
    proto = load_protocol(PROTOCOL, steps=8)
    spy = SignalAt(step=3, phase="free", sig=sig)
    folder = tmp_path / "s"
    with pytest.raises(StopSignal, match=word):  # raised after the cleanup, for the CLI's exit code
        run_protocol(proto, session_dir=folder, progress=False, subscribers=[spy])
    states = spy.states()
    # the state during which the signal came is the last one: its row written, nothing after it
    assert (states[-1].step, states[-1].phase) == (3, "free")
    assert not any(isinstance(e, StepDone) and e.step == 3 for e in spy.events)
    assert [e.step for e in spy.events if isinstance(e, Checkpoint)][-1] == 2
    st = read_status(folder)
    assert st is not None
    assert st["status"] == "stopped" and word in st["reason"] and "safe point" in st["reason"]
    assert st["safe_state"] is True and st["resumable"] is True
    ck = read_checkpoint(folder)
    assert ck is not None and st["step"] == 2 == ck["step"]  # the last complete step
    assert st["rows"] == len(states) == len(pd.read_csv(folder / "session.csv", comment="#"))
    assert (folder / "session.csv").read_text().splitlines()[-1].startswith("# run_ended:")
    # and it resumes exactly
    out = resume_session(folder, progress=False)
    assert out.result.status == "completed"
    ref = run_protocol(proto, session_dir=tmp_path / "ref", progress=False)
    pd.testing.assert_frame_equal(_rows(folder), _rows(ref.session))


def test_second_signal_forces_the_stop_at_once(tmp_path: Path) -> None:
    proto = load_protocol(PROTOCOL, steps=8)
    spy = SignalAt(step=2, phase="clamped", times=2)
    folder = tmp_path / "s"
    with pytest.raises(StopSignal):
        run_protocol(proto, session_dir=folder, progress=False, subscribers=[spy])
    st = read_status(folder)
    assert st is not None
    assert st["status"] == "stopped" and st["reason"] == "interrupted by SIGINT (Ctrl-C)"
    assert st["safe_state"] is True and st["step"] == 1
    assert st["rows"] == len(spy.states())
    assert resume_session(folder, progress=False).result.status == "completed"


def test_a_long_settle_reacts_to_a_stop_request_promptly() -> None:
    """A 5 s settle on a real clock: a stop requested 0.3 s in ends the run within a slice."""
    proto = load_protocol(PROTOCOL, steps=3)
    from labnet.app.build import build_rig

    rig = build_rig(proto.rig, sim_seed=proto.seed, network=proto.network)
    rig.clock = WallClock()
    settings = replace(proto.train, settle_s=5.0)
    with rig:
        eng = Engine(rig, proto.build_task(), proto.rule, settings, seed=proto.seed)
        timer = threading.Timer(0.3, eng.request_stop, args=("asked by the test",))
        t0 = time.monotonic()
        timer.start()
        res = eng.run()
        took = time.monotonic() - t0
        timer.join()
        assert rig.held == {}
    assert res.status == "stopped" and res.reason == "asked by the test"
    assert res.stopped and res.steps == 0
    assert took < 1.5


def test_engine_run_is_the_owner_driving_the_cycles() -> None:
    proto = load_protocol(PROTOCOL, steps=2)
    from labnet.app.build import build_rig

    rig = build_rig(proto.rig, sim_seed=proto.seed, network=proto.network)
    with rig:
        eng = Engine(rig, proto.build_task(), proto.rule, proto.train, seed=proto.seed)
        owner = RunOwner(rig)
        owner.attach(eng)
        res = owner.drive(eng.cycles)
        assert owner.state is RunState.ENDED
        assert owner.machine.history == [RunState.IDLE, RunState.RUNNING, RunState.STOPPING, RunState.SAFE,
                                         RunState.ENDED]
        assert (res.status, res.reason, res.steps) == ("completed", "2 steps", 2)
        with pytest.raises(RuntimeError, match="one run"):
            owner.drive(eng.cycles)
