"""Session files validated like user files: ``labnet resume`` of a tampered or inconsistent folder.

Each case damages a copy of a crashed session (stopped at its 31st measured state, after the
checkpoint of step 12) and runs ``labnet resume``: exit code 2, one line on stderr naming the
file and the entry, no traceback, and nothing built or opened (the spy of
tests/test_bad_input.py). Before issue 13 most of these resumed (rows deleted: "completed"
with ``superseded_rows: -6``; a symlinked CSV: its target truncated and appended to; CSV
deleted: a silent restart from step 0) or raised tracebacks after the instruments were open.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from test_bad_input import Spy, _check, _run, spy  # noqa: F401 - spy is a fixture
from test_resume import ALLOSTERY, Crash, CrashAt

from labnet.app.runner import resume_session, run_protocol
from labnet.config.protocol import load_protocol
from labnet.session.folder import read_markers

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run that crashed at its 31st measured state (checkpoint of step 12 written)."""
    d = tmp_path_factory.mktemp("crashed")
    (d / "p.toml").write_text(ALLOSTERY)
    with pytest.raises(Crash):
        run_protocol(load_protocol(d / "p.toml"), session_dir=d / "s", progress=False, subscribers=[CrashAt(30)])
    return d / "s"


def ck_edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def f(folder: Path) -> None:
        ck = json.loads((folder / "checkpoint.json").read_text())
        change(ck)
        (folder / "checkpoint.json").write_text(json.dumps(ck))

    return f


def json_edit(name: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def f(folder: Path) -> None:
        d = json.loads((folder / name).read_text())
        change(d)
        (folder / name).write_text(json.dumps(d))

    return f


def text_edit(name: str, old: str, new: str) -> Callable[[Path], None]:
    def f(folder: Path) -> None:
        t = (folder / name).read_text()
        assert old in t, f"test setup: {old!r} not in {name}"
        (folder / name).write_text(t.replace(old, new, 1))

    return f


def drop_csv_lines(first: int, last: int) -> Callable[[Path], None]:
    """Delete lines ``first:last`` (negative: from the end) of session.csv."""

    def f(folder: Path) -> None:
        lines = (folder / "session.csv").read_text().splitlines(keepends=True)
        del lines[first:last]
        (folder / "session.csv").write_text("".join(lines))

    return f


def symlink_to_victim(name: str) -> Callable[[Path], None]:
    def f(folder: Path) -> None:
        victim = folder.parent / f"victim-{name}"
        shutil.copy(folder / name, victim)
        (folder / name).unlink()
        os.symlink(victim, folder / name)

    return f


def set_rng(where: Callable[[dict], dict], value: object) -> Callable[[Path], None]:
    return ck_edit(lambda ck: where(ck).update(rng=value))


PCG_GARBAGE = {"bit_generator": "PCG64", "state": {"state": "x", "inc": 1}, "has_uint32": 0, "uinteger": 0}
CK = "checkpoint.json"
CSV = "session.csv"
EV = "evaluations.jsonl"

CASES: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    # ---------------------------------------------------------------- session.csv against the checkpoint
    "rows-deleted": (drop_csv_lines(-12, None), (CSV, "checkpoint.json (step 12) records", "rows were deleted")),
    "csv-truncated-mid-row": (lambda f: os.truncate(f / CSV, (f / CSV).stat().st_size // 2), (CSV, "truncated")),
    "csv-empty": (lambda f: (f / CSV).write_text(""), (CSV, "0 bytes")),
    "csv-deleted": (lambda f: (f / CSV).unlink(), (CSV, "missing, but checkpoint.json records 30 rows up to step 12")),
    "csv-a-folder": (lambda f: ((f / CSV).unlink(), (f / CSV).mkdir()), (CSV, "not a regular file")),
    "csv-row-removed-and-padded": (lambda f: (drop_csv_lines(20, 21)(f), open(f / CSV, "a").write("x\n" * 400)),
                                   (CSV, "changed before")),
    "csv-rows-miscounted": (ck_edit(lambda ck: ck.update(csv_rows=ck["csv_rows"] + 1)),
                            (CSV, "30 data rows", "records 31")),
    "csv-extent-mid-line": (ck_edit(lambda ck: ck.update(csv_bytes=ck["csv_bytes"] - 7)), (CSV, "line end")),
    "csv-extent-beyond": (ck_edit(lambda ck: ck.update(csv_bytes=10**9)), (CSV, "records 1000000000 bytes")),
    "csv-not-a-session": (text_edit(CSV, "# labnet_session: 1", "# something: 1"), (CSV, "labnet_session")),
    "csv-header-not-json": (text_edit(CSV, "# rule: {", "# rule: {{"), (CSV, "header rule", "not JSON")),
    "csv-columns-changed": (text_edit(CSV, "\ntime_s,bench_s,", "\nbench_s,time_s,"), (CSV, "columns")),
    "csv-symlink": (symlink_to_victim(CSV), (CSV, "symbolic link")),
    "events-symlink": (symlink_to_victim("events.jsonl"), ("events.jsonl", "symbolic link")),
    "checkpoint-symlink": (symlink_to_victim(CK), (CK, "symbolic link")),
    # ---------------------------------------------------------------- the same rig, the same protocol
    "rig-copy-other-part": (text_edit("rig.toml", 'model = "X9C103"', 'model = "X9C303"'),
                            (CSV, "header rig.part", "not the same rig")),
    "rig-copy-other-limit": (text_edit("rig.toml", "code_min = 10", "code_min = 12"), (CSV, "header rig.limits")),
    "rig-copy-other-name": (text_edit("rig.toml", 'name = "sim16"', 'name = "sim17"'), (CSV, "header rig.name")),
    "protocol-copy-edited": (text_edit("protocol.toml", "[rule]\n", "[rule]\neta = 0.9\n"), (CSV, "header rule")),
    # ---------------------------------------------------------------- checkpoint.json values
    "ck-not-json": (lambda f: (f / CK).write_text("{ garbage"), (CK, "Expecting")),
    "ck-engine-rng-garbage": (set_rng(lambda ck: ck["engine"], PCG_GARBAGE), (CK, "engine.rng", "not a valid PCG64")),
    "ck-engine-rng-unknown": (set_rng(lambda ck: ck["engine"], {"bit_generator": "Nope"}), (CK, "engine.rng", "'Nope'")),
    "ck-model-rng-garbage": (set_rng(lambda ck: ck["state"]["simulator"]["model"], {"a": 1}),
                             (CK, "state.simulator.model.rng", "not a numpy generator state")),
    "ck-faults-rng-garbage": (set_rng(lambda ck: ck["state"]["simulator"]["faults"], PCG_GARBAGE),
                              (CK, "state.simulator.faults.rng")),
    "ck-sink-rng-garbage": (ck_edit(lambda ck: ck["engine"]["sink_rngs"].update({"Tracker#1": {"x": 1}})),
                            (CK, "engine.sink_rngs.Tracker#1")),
    "ck-engine-codes-short": (ck_edit(lambda ck: ck["engine"].update(codes=[40, 41, 42])),
                              (CK, "engine.codes", "expected 16 codes", "got 3")),
    "ck-engine-code-over-limit": (ck_edit(lambda ck: ck["engine"]["codes"].__setitem__(0, 500)),
                                  (CK, "engine.codes[0]", "10..99", "500")),
    "ck-engine-code-under-limit": (ck_edit(lambda ck: ck["engine"]["codes"].__setitem__(3, 2)),
                                   (CK, "engine.codes[3]", "10..99")),
    "ck-engine-code-float": (ck_edit(lambda ck: ck["engine"]["codes"].__setitem__(1, 40.5)), (CK, "engine.codes[1]")),
    "ck-rig-codes-short": (ck_edit(lambda ck: ck["state"]["rig"].update(codes=[1, 2])), (CK, "state.rig.codes")),
    "ck-model-codes-short": (ck_edit(lambda ck: ck["state"]["simulator"]["model"].update(codes=[1])),
                             (CK, "state.simulator.model.codes")),
    "ck-model-code-beyond-taps": (ck_edit(lambda ck: ck["state"]["simulator"]["model"]["codes"].__setitem__(0, 100)),
                                  (CK, "state.simulator.model.codes[0]", "0..99")),
    "ck-held-unknown-node": (ck_edit(lambda ck: ck["engine"].update(held={"zz": 0.5})),
                             (CK, "engine.held.zz", "no source drives")),
    "ck-held-not-a-number": (ck_edit(lambda ck: ck["engine"].update(held={"n1": "x"})), (CK, "engine.held.n1")),
    "ck-held-over-limit": (ck_edit(lambda ck: ck["state"]["rig"].update(held={"n1": 20.0})),
                           (CK, "state.rig.held.n1", "exceeds the 1 V source limit")),
    "ck-driven-unknown-channel": (ck_edit(lambda ck: ck["state"]["simulator"]["model"].update(driven={"psu9.9": 0.1})),
                                  (CK, "state.simulator.model.driven.psu9.9")),
    "ck-step-negative": (ck_edit(lambda ck: ck.update(step=-5)), (CK, "step", "0..15", "-5")),
    "ck-step-beyond-run": (ck_edit(lambda ck: ck.update(step=10**6)), (CK, "step", "0..15")),
    "ck-engine-step-differs": (ck_edit(lambda ck: ck["engine"].update(step=3)), (CK, "engine.step", "expected 12")),
    "ck-csv-rows-negative": (ck_edit(lambda ck: ck.update(csv_rows=-3)), (CK, "csv_rows", ">= 0")),
    "ck-clock-negative": (ck_edit(lambda ck: ck["state"]["simulator"]["model"]["clock"].update(t=-1.0)),
                          (CK, "state.simulator.model.clock.t", ">= 0")),
    "ck-clock-nan": (ck_edit(lambda ck: ck["state"]["simulator"]["model"]["clock"].update(t=math.nan)),
                     (CK, "state.simulator.model.clock.t", "finite")),
    "ck-counter-negative": (ck_edit(lambda ck: ck["state"]["simulator"]["board"].update(lines=-1)),
                            (CK, "state.simulator.board.lines")),
    "ck-evaluations-ref-garbage": (ck_edit(lambda ck: ck["engine"].update(evaluations={"x": 1})),
                                   (CK, "engine.evaluations", "count")),
    "ck-evaluations-inline-bad": (ck_edit(lambda ck: ck["engine"].update(evaluations=[{"step": "0"}])),
                                  (CK, "engine.evaluations[0]")),
    # ---------------------------------------------------------------- evaluations.jsonl
    "ev-count-beyond-log": (ck_edit(lambda ck: ck["engine"]["evaluations"].update(count=99)),
                            (EV, "3 evaluations, the checkpoint needs 99")),
    "ev-wrong-types": (lambda f: (f / EV).write_text('{"step": 0, "train": 5, "test": {}}\n'), (EV, "line 1")),
    "ev-not-json": (lambda f: (f / EV).write_text("not json\n"), (EV, "line 1", "not JSON")),
    "ev-empty": (lambda f: (f / EV).write_text(""), (EV, "0 evaluations")),
    "ev-deleted": (lambda f: (f / EV).unlink(), (EV, "missing")),
    # ---------------------------------------------------------------- status.json, run.json
    "status-not-json": (lambda f: (f / "status.json").write_text("{ nope"), ("status.json", "unreadable")),
    "status-a-list": (lambda f: (f / "status.json").write_text("[]"), ("status.json", "JSON object")),
    "status-pid-string": (json_edit("status.json", lambda d: d.update(pid="abc")), ("status.json", "pid")),
    "status-unknown": (json_edit("status.json", lambda d: d.update(status="paused")), ("status.json", "status")),
    "run-steps-string": (json_edit("run.json", lambda d: d.update(steps="x")), ("run.json", "steps")),
    "run-seed-negative": (json_edit("run.json", lambda d: d.update(seed=-1)), ("run.json", "seed")),
    "run-steps-bool": (json_edit("run.json", lambda d: d.update(steps=True)), ("run.json", "steps")),
    "run-a-list": (lambda f: (f / "run.json").write_text("[]"), ("run.json", "JSON object")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tampered_session_is_refused(name: str, crashed: Path, tmp_path: Path, spy: Spy,  # noqa: F811
                                     capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "s"
    shutil.copytree(crashed, folder, symlinks=True)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    damage, expect = CASES[name]
    damage(folder)
    victims = {p: p.read_bytes() for p in tmp_path.glob("victim-*")}
    code, err = _run(["resume", str(folder), "--quiet"], capsys)
    _check(code, err, expect, spy)
    for p, data in victims.items():  # a link's target is left as it was
        assert p.read_bytes() == data
    assert before  # the crashed session had files to damage


def test_untampered_copy_still_resumes(crashed: Path, tmp_path: Path) -> None:
    """The control: the same copy, undamaged, resumes and completes (one resume marker)."""
    folder = tmp_path / "s"
    shutil.copytree(crashed, folder)
    assert resume_session(folder, progress=False).result.status == "completed"
    marker = read_markers(folder / "session.csv", "resumed")[0]
    assert marker["superseded_rows"] == 1 and marker["checkpoint_rows"] == 30


def test_rows_after_the_checkpoint_may_go(crashed: Path, tmp_path: Path) -> None:
    """Rows past the checkpoint's extent are superseded anyway: deleting them is no tampering."""
    folder = tmp_path / "s"
    shutil.copytree(crashed, folder)
    extent = json.loads((folder / "checkpoint.json").read_text())["csv_bytes"]
    os.truncate(folder / "session.csv", extent)
    assert resume_session(folder, progress=False).result.status == "completed"
    assert read_markers(folder / "session.csv", "resumed")[0]["superseded_rows"] == 0


def test_at_least_50_tamper_cases() -> None:
    assert len(CASES) >= 50
