"""Exact resume: a run stopped or crashed at any measured state, then resumed, ends exactly where
the uninterrupted run ends — same final codes, same evaluations, and (after dropping the rows
a resume supersedes) the very same CSV rows apart from wall-clock time stamps.

Regression with the stochastic rule exercises the engine's generator (batch draws, stochastic
rounding); every run exercises the simulator's noise generator and virtual clock.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_run_state import assert_state_covers_everything, walk_state

from labnet.app.rigstate import state_parts
from labnet.app.runner import resume_session, run_protocol
from labnet.config.protocol import load_protocol
from labnet.core.errors import ConfigError
from labnet.core.state import layout_of
from labnet.experiments.engine import Checkpoint, StateMeasured
from labnet.session.checkpoint import EvaluationLog, engine_state, read_checkpoint, read_evaluations
from labnet.session.folder import read_markers, read_session, read_status

ROOT = Path(__file__).resolve().parent.parent
RIG = ROOT / "protocols" / "rigs" / "sim16.toml"

REGRESSION = f"""
[protocol]
name = "reg-resume"
rig = "{RIG}"
seed = 5

[task]
kind = "regression"
n_train = 20
n_test = 5

[rule]
kind = "stochastic"
alpha = 2e-3
max_taps = 3

[train]
steps = 12
batch = 2
eval_every = 4
settle_s = 0.001
eval_train_max = 5
"""

ALLOSTERY = f"""
[protocol]
name = "allo-resume"
rig = "{RIG}"
seed = 1

[task]
kind = "allostery"
inputs_v = [1.0, 0.3]
targets_v = [0.25, 0.15]

[rule]
kind = "sign"
deadband_siemens = 1e-7

[train]
steps = 15
eval_every = 5
settle_s = 0.001
"""


class Crash(Exception):
    """Stands in for anything that kills a run half-way."""


class CrashAt:
    """Raise :class:`Crash` at the ``n``-th measured state (0-based)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen = 0

    def __call__(self, ev: object) -> None:
        if isinstance(ev, StateMeasured):
            if self.seen == self.n:
                raise Crash(f"crash at state {self.n}")
            self.seen += 1


def _protocol(tmp_path: Path, text: str, name: str = "p.toml"):
    p = tmp_path / name
    p.write_text(text)
    return load_protocol(p)


def _rows(folder: Path) -> pd.DataFrame:
    return read_session(folder).drop(columns=["time_s", "attempt"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """The uninterrupted runs: (protocol, outcome) per kind."""
    d = tmp_path_factory.mktemp("ref")
    out = {}
    for kind, text in (("regression", REGRESSION), ("allostery", ALLOSTERY)):
        proto = _protocol(d, text, f"{kind}.toml")
        out[kind] = (proto, run_protocol(proto, session_dir=d / kind, progress=False))
    return out


def _assert_same(ref, outcome, folder: Path) -> None:
    assert outcome.result.status == "completed"
    np.testing.assert_array_equal(outcome.result.final_codes, ref.result.final_codes)
    assert [(e.step, e.train, e.test) for e in outcome.result.evaluations] == \
        [(e.step, e.train, e.test) for e in ref.result.evaluations]
    pd.testing.assert_frame_equal(_rows(folder), _rows(ref.session))


@pytest.mark.parametrize("kind,crash_at", [
    ("regression", 0),    # before the first checkpoint: starts over
    ("regression", 7),    # in the initial evaluation
    ("regression", 11),   # inside step 1
    ("regression", 33),   # in an evaluation
    ("regression", 50),
    ("allostery", 3),
    ("allostery", 20),
    ("allostery", 35),
])
def test_crash_then_resume_is_exact(tmp_path: Path, reference, kind: str, crash_at: int) -> None:
    proto, ref = reference[kind]
    folder = tmp_path / "s"
    with pytest.raises(Crash):
        run_protocol(proto, session_dir=folder, progress=False, subscribers=[CrashAt(crash_at)])
    st = read_status(folder)
    assert st["status"] == "failed" and "Crash" in st["reason"] and st["safe_state"] is True
    out = resume_session(folder, progress=False)
    _assert_same(ref, out, folder)
    assert read_status(folder)["status"] == "completed"
    # append-only: the crashed attempt's rows are all still in the file
    everything = read_session(folder, keep_superseded=True)
    assert (everything["attempt"] == 0).sum() == crash_at + 1  # the row of the fatal state was written
    marker = read_markers(folder / "session.csv", "resumed")[0]
    assert marker["attempt"] == 1
    assert marker["superseded_rows"] == crash_at + 1 - marker["checkpoint_rows"]


def test_crash_twice_resume_twice(tmp_path: Path, reference) -> None:
    proto, ref = reference["regression"]
    folder = tmp_path / "s"
    with pytest.raises(Crash):
        run_protocol(proto, session_dir=folder, progress=False, subscribers=[CrashAt(20)])
    with pytest.raises(Crash):
        resume_session(folder, progress=False, subscribers=[CrashAt(9)])
    out = resume_session(folder, progress=False)
    _assert_same(ref, out, folder)
    assert [m["attempt"] for m in read_markers(folder / "session.csv", "resumed")] == [1, 2]


def test_resume_repairs_a_torn_last_line(tmp_path: Path, reference) -> None:
    """A machine crash can leave half a line; resume cuts it off and keeps its text."""
    proto, ref = reference["allostery"]
    folder = tmp_path / "s"
    with pytest.raises(Crash):
        run_protocol(proto, session_dir=folder, progress=False, subscribers=[CrashAt(25)])
    with open(folder / "session.csv", "a") as fh:
        fh.write("0.5,1.25,12,free,tra")
    out = resume_session(folder, progress=False)
    _assert_same(ref, out, folder)
    marker = read_markers(folder / "session.csv", "resumed")[0]
    assert marker["partial_line"] == "0.5,1.25,12,free,tra"


def test_checkpoint_holds_engine_and_simulator_state(tmp_path: Path, reference) -> None:
    proto, _ = reference["regression"]
    folder = tmp_path / "s"
    seen: list[int] = []
    run_protocol(proto, session_dir=folder, progress=False,
                 subscribers=[lambda ev: seen.append(ev.step) if isinstance(ev, Checkpoint) else None])
    assert seen == list(range(0, 13))  # initial evaluation + every step
    ck = read_checkpoint(folder)
    assert ck["step"] == 12 and len(ck["engine"]["codes"]) == 16
    assert ck["engine"]["rng"]["bit_generator"] == "PCG64"
    sim = ck["state"]["simulator"]  # by role name: the model's noise and clock, the fault plan's stream
    assert sim["model"]["rng"]["bit_generator"] == "PCG64" and sim["faults"]["rng"]["bit_generator"] == "PCG64"
    assert sim["model"]["clock"]["t"] > 0
    assert ck["csv_rows"] == len(pd.read_csv(folder / "session.csv", comment="#"))


def test_state_covers_the_simulator_noise_and_clock(reference) -> None:
    _, ref = reference["allostery"]
    found = assert_state_covers_everything(ref.rig)  # the walker, as a check only (tests/test_run_state.py)
    assert any(isinstance(o, np.random.Generator) for o in found.values())
    assert any(hasattr(o, "charge") for o in found.values())


def test_completed_session_is_not_resumed(reference) -> None:
    _, ref = reference["allostery"]
    with pytest.raises(ConfigError, match="already completed"):
        resume_session(ref.session, progress=False)


def test_running_session_is_not_resumed(tmp_path: Path, reference) -> None:
    import subprocess
    import sys

    proto, _ = reference["allostery"]
    folder = tmp_path / "s"
    with pytest.raises(Crash):
        run_protocol(proto, session_dir=folder, progress=False, subscribers=[CrashAt(5)])
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        st = json.loads((folder / "status.json").read_text())
        st.update(status="running", pid=sleeper.pid)
        (folder / "status.json").write_text(json.dumps(st))
        with pytest.raises(ConfigError, match="still running"):
            resume_session(folder, progress=False)
    finally:
        sleeper.kill()
        sleeper.wait()
    # the owner is gone: now it is a crashed run and resumes
    assert resume_session(folder, progress=False).result.status == "completed"


def test_cli_ctrl_c_then_labnet_resume(tmp_path: Path) -> None:
    """The whole user path: `labnet run`, Ctrl-C, `labnet resume` (real processes, emulated wire)."""
    import signal
    import subprocess
    import sys
    import time

    proto = tmp_path / "p.toml"
    proto.write_text(ALLOSTERY.replace("steps = 15", "steps = 40"))
    ref = subprocess.run([sys.executable, "-m", "labnet", "run", str(proto), "--out", str(tmp_path / "ref"), "--quiet"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "labnet", "run", str(proto), "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        csvs = list(out.glob("*/session.csv"))
        if csvs and csvs[0].read_text().count("\n") > 30:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "labnet resume" in err, err
    folder = csvs[0].parent
    assert read_status(folder)["status"] == "stopped"
    res = subprocess.run([sys.executable, "-m", "labnet", "resume", str(folder), "--quiet"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "completed" in res.stdout
    ref_folder = next((tmp_path / "ref").iterdir())
    pd.testing.assert_frame_equal(_rows(folder), _rows(ref_folder))
    assert read_checkpoint(folder)["engine"]["codes"] == read_checkpoint(ref_folder)["engine"]["codes"]


def test_resume_with_tracking_probes_is_exact(tmp_path: Path) -> None:
    """A run whose [analysis] table probes the network mid-run (random patterns from the
    tracker's own generator, applied through the rig) resumes exactly too — session rows and
    the tracked probe statistics."""
    text = ALLOSTERY + """
[analysis]
track_every = 5
probe_every = 5
probe_samples = 6
probe_v_max = 0.5
probe_bootstrap = 20
"""
    proto = _protocol(tmp_path, text)
    ref = run_protocol(proto, session_dir=tmp_path / "ref", progress=False)
    folder = tmp_path / "s"
    with pytest.raises(Crash):
        run_protocol(proto, session_dir=folder, progress=False, subscribers=[CrashAt(24)])
    out = resume_session(folder, progress=False)
    _assert_same(ref, out, folder)
    cols = ["step", "probe_deff", "probe_gain"]
    a = pd.read_csv(ref.session / "tracking.csv", comment="#")[cols].drop_duplicates("step", keep="last")
    b = pd.read_csv(folder / "tracking.csv", comment="#")[cols].drop_duplicates("step", keep="last")
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_checkpoint_does_not_grow_with_the_run(tmp_path: Path) -> None:
    """checkpoint.json is the same size after 20 and after 200 steps (evaluations go to an
    append-only log; the parts' state holds no caches), and the log holds every evaluation."""
    sizes, walked = {}, {}
    for steps in (20, 200):
        proto = _protocol(tmp_path, ALLOSTERY.replace("steps = 15", f"steps = {steps}").replace(
            "eval_every = 5", "eval_every = 1"), f"p{steps}.toml")
        folder = tmp_path / f"s{steps}"
        out = run_protocol(proto, session_dir=folder, progress=False)
        ck = read_checkpoint(folder)
        sizes[steps] = (folder / "checkpoint.json").stat().st_size
        assert ck["engine"]["evaluations"] == {"file": "evaluations.jsonl", "count": steps + 1}
        assert read_evaluations(folder, steps + 1) == [
            {"step": e.step, "train": e.train, "test": e.test} for e in out.result.evaluations]
        walked[steps] = json.dumps(layout_of(state_parts(out.rig)), default=str)  # the same parts, by role
        assert sorted(walk_state(out.rig)) == ["digipots.port._bench._faults.rng", "digipots.port._bench.board.clock",
                                               "digipots.port._bench.board.logic.model.rng"]
    # a few more digits in step counts, clock times and the ~20 counters of the parts (bytes, messages, scans)
    assert abs(sizes[200] - sizes[20]) <= 40, sizes
    assert walked[200] == walked[20], walked


def test_evaluation_log_keeps_only_the_checkpoints_lines(tmp_path: Path) -> None:
    recs = [{"step": i, "train": {"mse": 1.0 / (i + 1)}, "test": {}} for i in range(6)]
    log = EvaluationLog(tmp_path)
    assert log.extend(recs[:5]) == {"file": "evaluations.jsonl", "count": 5}
    log.close()
    log = EvaluationLog(tmp_path, read_evaluations(tmp_path, 3))  # a checkpoint of 3: lines 4, 5 came after it
    assert read_evaluations(tmp_path, 3) == recs[:3]
    with pytest.raises(ValueError, match="3 evaluations, the checkpoint needs 4"):
        read_evaluations(tmp_path, 4)  # the lines past the checkpoint are gone
    assert log.extend(recs) == {"file": "evaluations.jsonl", "count": 6}
    log.close()
    assert read_evaluations(tmp_path, 6) == recs
    with pytest.raises(ValueError, match="7"):
        read_evaluations(tmp_path, 7)


def test_old_checkpoints_with_inline_evaluations_still_resume(tmp_path: Path) -> None:
    state = {"engine": {"step": 3, "evaluations": [{"step": 0, "train": {"mse": 1.0}, "test": {}}]}}
    assert engine_state(state, tmp_path)["evaluations"] == state["engine"]["evaluations"]
