"""Running a protocol end to end: rig + engine + session.

:func:`run_protocol` starts a run in a new session folder; :func:`resume_session` continues a
stopped or crashed one from its last checkpoint (``labnet.session.checkpoint``) and appends to the
same CSV. Both set the session up inside a :class:`labnet.experiments.lifecycle.RunOwner`, the
one owner of the run's life: the first Ctrl-C, SIGTERM or SIGHUP asks for a stop at the
engine's next safe point, a second forces it; the cleanup cannot be interrupted; the rig ends in the
safe state, and how the run ended is in ``status.json`` and a final ``# run_ended`` CSV line
(:class:`labnet.app.record.SessionRecord`). Sinks: :mod:`labnet.app.sinks`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from labnet.app.build import build_rig, dry_run_spec
from labnet.app.measurement import plan_record, planned
from labnet.app.record import SessionRecord
from labnet.app.rigstate import expected_layout, state_parts
from labnet.app.sinks import (
    CheckpointSink,
    CsvSink,
    Progress,
    connect_driver_events,
    state_columns,
    state_columns_of,
)
from labnet.app.summary import RunOutcome, summary
from labnet.bench.rig import Rig
from labnet.config.current_file import max_currents
from labnet.config.protocol import SESSION_DATA, Protocol, load_protocol
from labnet.core.errors import ConfigError, StorageError
from labnet.core.state import layout_of
from labnet.experiments.engine import Engine
from labnet.experiments.events import Event, RunResult
from labnet.experiments.lifecycle import RunOwner
from labnet.experiments.tracking import attach as attach_analysis
from labnet.session.checkpoint import (
    CHECKPOINT_NAME,
    RUN_NAME,
    EvaluationLog,
    check_checkpoint,
    engine_state,
    read_checkpoint,
    restore_run_state,
)
from labnet.session.folder import (
    CSV_NAME,
    STATUS_NAME,
    EventLog,
    SessionWriter,
    atomic_write_json,
    atomic_write_text,
    attach_event_log,
    detach_event_log,
    new_session_dir,
    read_markers,
    versions,
    write_status,
)
from labnet.session.integrity import (
    check_checkpoint_values,
    check_csv,
    check_evaluations,
    check_no_links,
    checked_status,
    read_json_object,
)

RESUME_MODES = ("same", "dry_run", "on_bench")


def run_kind(protocol: Protocol, dry_run: bool) -> dict[str, Any]:
    """What rig a session runs on (run.json, CSV header): ``simulated`` (the simulator, a dry run too), ``dry_run``
    (a bench rig file on its emulated twin), ``rig_file`` (the file given), ``rig_kind`` (its kind)."""
    return {"simulated": protocol.rig.simulated, "dry_run": dry_run, "rig_file": str(protocol.rig.path),
            "rig_kind": "bench" if dry_run else protocol.rig.kind}


def session_header(protocol: Protocol, rig: Rig, *, dry_run: bool = False) -> dict[str, Any]:
    """The self-describing header of a session CSV (``run`` says whether it is a dry run)."""
    net = rig.network
    return {
        "labnet_session": 1,
        "run": {**run_kind(protocol, dry_run),
                "mode": "dry run (bench rig file on the simulator)" if dry_run
                else ("simulator" if protocol.rig.simulated else "bench")},
        "protocol": {"name": protocol.name, "kind": protocol.kind, "file": protocol.path.name, "seed": protocol.seed},
        "rule": protocol.rule.__dict__,
        "train": protocol.train.__dict__,
        **plan_record(protocol),
        "task": protocol.task_table,
        "calibration": _calibration_used(protocol),
        "network": net.to_dict(),
        "rig": rig.describe(),
        "versions": versions(),
        "columns": {
            "time_s": "wall-clock seconds since the run (or, after a resume, the attempt) started",
            "bench_s": "rig clock (modelled bench seconds on a simulator)",
            "set_<node>": "source setpoint at the node (V), blank when its output is off",
            "v_<node>": "measured node voltage (V)",
            "code_e<j>": "digipot code of edge j (network.edges order) when the state was measured",
            "error": "mean squared output error of the state (V^2), free and eval states",
            "predicted": "predicted class (classification)",
            "attempt": "0 for the original run, n for its n-th resume; rows of an earlier attempt with a step "
                       "after a later '# resumed' line's from_step are superseded (labnet.session.read_session "
                       "drops them)",
        },
    }


def _calibration_used(protocol: Protocol) -> dict[str, str] | None:
    """The calibration table a run uses as the rig's model (``[calibration] table``, kept in the
    session as ``calibration.csv``), or None (the nominal part model)."""
    extra = getattr(protocol, "extra", None) or {}
    cal = extra.get("calibration")
    if not cal:
        return None
    return {"table": str(Path(cal["table"]).resolve()), "copy": "calibration.csv"}


def run_protocol(protocol: Protocol, out: str | Path | None = None, *, progress: bool = True,
                 session_dir: Path | None = None, rig: Rig | None = None,
                 subscribers: Sequence[Callable[[Event], None]] = (), dry_run: bool = False) -> RunOutcome:
    """Run a training protocol on its rig; write a session folder; return the result.

    ``dry_run`` says that ``protocol.rig`` is a bench rig file's emulated twin
    (:func:`labnet.app.build.dry_run_spec`, ``labnet run --dry-run``): run.json, the CSV header
    and the summary say so, and :func:`resume_session` resumes it as a dry run.

    ``out`` is the folder under which the session folder is created (default ``sessions``);
    ``session_dir`` names the session folder itself. ``rig`` replaces the rig built from the
    protocol's rig file (tests, fault campaigns); ``subscribers`` receive every engine event.
    A run stopped by a signal re-raises :class:`~labnet.experiments.signals.StopSignal` and a run that
    failed re-raises its error, both after the safe state and ``status.json`` are written.
    """
    try:  # the folder first: a bad --out must fail before any instrument is opened
        folder = Path(session_dir) if session_dir is not None else new_session_dir(out or "sessions", protocol.name)
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = session_dir if session_dir is not None else (out or "sessions")
        raise ConfigError(str(where), "--out", f"cannot create the session folder ({exc.strerror or exc})") from None
    if dry_run and not protocol.rig.simulated:
        raise ValueError("dry_run=True needs the simulated twin of the rig (labnet.app.build.dry_run_spec)")
    if rig is None:
        rig = build_rig(protocol.rig, sim_seed=protocol.seed, network=protocol.network)
    # What a resume needs, before anything else happens (run.json last: it marks a session).
    atomic_write_text(folder / "protocol.toml", protocol.text)
    atomic_write_text(folder / "rig.toml", protocol.rig.text)
    data_file = protocol.build_task().data_file
    if data_file:  # the user's data, kept with the session (a resume reads this copy)
        atomic_write_text(folder / SESSION_DATA, Path(data_file).read_text(encoding="utf-8"))
    atomic_write_json(folder / RUN_NAME, {
        "format": 1,
        "protocol_file": str(protocol.path),
        "rig_file": str(protocol.rig.path),
        "steps": protocol.train.steps,
        "seed": protocol.seed,
        "keep": protocol.train.keep,
        **run_kind(protocol, dry_run),
    })
    try:
        return _execute(protocol, rig, folder, attempt=0, checkpoint=None, progress=progress,
                        subscribers=subscribers, dry_run=dry_run)
    except BaseException as exc:
        # e.g. an instrument that failed to open; a full disk keeps its status.json saying so
        if session_dir is None and not isinstance(exc, (StorageError, OSError)) and _discard_unrecorded(folder):
            try:
                exc.labnet_session = None  # type: ignore[attr-defined]
                exc.labnet_discarded = str(folder)  # type: ignore[attr-defined]
            except AttributeError:
                pass
        raise


#: What a run writes into its folder before its first row (run.json … status.json, events.jsonl).
_BEFORE_FIRST_ROW = frozenset({"protocol.toml", "rig.toml", RUN_NAME, "status.json", "events.jsonl",
                               "evaluations.jsonl", ".status.json.tmp"})


def _discard_unrecorded(folder: Path) -> bool:
    """Remove a new session folder that never got its CSV (the run failed or was stopped before
    the rig opened or before the first row): it holds nothing to keep or resume. A folder with any
    other file is left alone. Returns whether the folder was removed."""
    try:
        names = {p.name for p in folder.iterdir()}
        if CSV_NAME in names or not names <= _BEFORE_FIRST_ROW:
            return False
        for name in names:
            (folder / name).unlink()
        folder.rmdir()
    except OSError:
        return False
    return True


def _resume_kind(f: Path, run: dict[str, Any], protocol: Protocol, mode: str) -> bool:
    """Whether the resume is a dry run, from what run.json recorded and ``mode`` (one of
    :data:`RESUME_MODES`); :class:`ConfigError` on a mismatch, before anything is opened."""
    if mode not in RESUME_MODES:
        raise ValueError(f"mode must be one of {RESUME_MODES}, got {mode!r}")
    where = str(f / RUN_NAME)
    if protocol.rig.simulated:  # a simulator rig file: every resume is on the simulator
        if mode == "on_bench":
            raise ConfigError(where, "simulated", "the session ran on a simulator rig file; there is no bench "
                              "to resume it on (--on-bench)")
        return False
    recorded = run.get("dry_run")
    if mode == "dry_run":
        if recorded is False:
            raise ConfigError(where, "dry_run", "the session ran on the real bench; resuming it as a dry run "
                              "would append simulated rows to bench data (leave out --dry-run)")
        return True
    if mode == "on_bench":
        return False
    if recorded is None:
        raise ConfigError(where, "dry_run", "the session does not record whether it was a dry run of its bench "
                          "rig; say --dry-run or --on-bench")
    return bool(recorded)


def load_session(folder: str | Path, mode: str = "same") -> tuple[Protocol, dict[str, Any] | None, int, bool]:
    """Validate a session folder for resuming: (protocol, checkpoint or None, next attempt, dry run).

    ``mode`` (:data:`RESUME_MODES`): ``"same"`` resumes on the kind of rig run.json records
    (a dry run as a dry run, on the emulated addresses), ``"dry_run"`` / ``"on_bench"`` choose
    explicitly; a dry-run resume returns the protocol with the rig's emulated twin.
    Raises :class:`ConfigError` (exit code 2 at the CLI) when the folder is not a resumable
    session: missing files, a run that already completed, one still running, or a ``mode`` that
    does not match the recorded rig.
    """
    f = Path(folder)
    if not f.is_dir():
        raise ConfigError(str(f), "-", "session folder not found")
    check_no_links(f)  # nothing is read through a link, nothing appended into one
    for name in ("protocol.toml", "rig.toml", RUN_NAME):
        if not (f / name).is_file():
            raise ConfigError(str(f), name, "missing from the session folder (not a labnet session?)")
    run = read_json_object(f / RUN_NAME)
    for key in ("steps", "seed"):
        if not isinstance(run.get(key), int) or isinstance(run[key], bool) or run[key] < 0:
            raise ConfigError(str(f / RUN_NAME), key, f"expected an integer >= 0, got {run.get(key)!r}")
    steps, seed = int(run["steps"]), int(run["seed"])
    keep = run.get("keep", "final")  # older sessions: the final state
    if keep not in ("final", "best"):
        raise ConfigError(str(f / RUN_NAME), "keep", f"expected one of final, best, got {keep!r}")
    status = checked_status(f / STATUS_NAME)
    if status is not None:
        if status.get("status") == "completed":
            raise ConfigError(str(f), "status", "the run already completed; nothing to resume")
        pid = int(status.get("pid", 0))
        if status.get("status") == "running" and pid != os.getpid() and _alive(pid):
            raise ConfigError(str(f), "status", f"the run is still running (pid {pid})")
    protocol = load_protocol(f / "protocol.toml", rig=f / "rig.toml", steps=steps, seed=seed, keep=keep)
    dry_run = _resume_kind(f, run, protocol, mode)
    if dry_run:
        protocol = replace(protocol, rig=dry_run_spec(protocol.rig))
    try:
        ck = read_checkpoint(f)
    except ValueError as exc:
        raise ConfigError(str(f), "checkpoint.json", str(exc)) from None
    if ck is not None and run.get("dry_run") is True and not dry_run and "simulator" in ck.get("state", {}):
        raise ConfigError(str(f / RUN_NAME), "dry_run", "the session is a dry run and its checkpoint holds the simulator's "
                          "state, which the real bench cannot continue (--on-bench); resume it as a dry run or "
                          "start a new run on the bench")
    if ck is not None:  # before anything is built or opened: the rig file says which parts there will be
        rs = protocol.rig
        check_checkpoint(ck, expected_layout(rs), Engine, f / CHECKPOINT_NAME)
        check_checkpoint_values(ck, f / CHECKPOINT_NAME, steps=steps, network=protocol.network, limits=rs.limits,
                                taps=rs.part.positions, currents=max_currents(rs))
        check_evaluations(f, ck, f / CHECKPOINT_NAME)
    if not check_csv(f, ck, state_columns_of(protocol.network), expected_header(protocol)):
        return protocol, None, 0, dry_run  # stopped before its first row (and checkpoint): start it again
    attempts = [int(m.get("attempt", 0)) for m in read_markers(f / CSV_NAME, "resumed")]
    return protocol, ck, max(attempts, default=0) + 1, dry_run


def expected_header(protocol: Protocol) -> dict[str, Any]:
    """The session CSV's header entries (dotted paths) a resume with ``protocol`` must find
    as they are: the same rig (name, part, limits, network) and the same protocol."""
    spec = protocol.rig
    return {"rig.name": spec.name, "rig.part": spec.part.to_dict(), "rig.limits": asdict(spec.limits),
            "network": protocol.network.to_dict(), "protocol.name": protocol.name, "protocol.seed": protocol.seed,
            "rule": protocol.rule.__dict__, "train": protocol.train.__dict__, "task": protocol.task_table}


def resume_session(folder: str | Path, *, progress: bool = True, rig: Rig | None = None,
                   subscribers: Sequence[Callable[[Event], None]] = (), mode: str = "same") -> RunOutcome:
    """Continue a stopped or crashed run from its last complete step, appending to its CSV.

    The rig is rebuilt from the session's copy of the rig file (or ``rig``); codes are
    re-written to every channel and verified; the engine's generator and, on a simulator, every
    random stream and the virtual clock are restored, so the run ends exactly where the
    uninterrupted run would have. Without a checkpoint (the run died in its first
    evaluation) the run starts over, still appending to the same CSV. ``mode`` is
    :func:`load_session`'s: by default a dry run resumes as a dry run, on the emulated addresses.
    """
    f = Path(folder)
    protocol, ck, attempt, dry_run = load_session(f, mode)
    if rig is None:
        rig = build_rig(protocol.rig, sim_seed=protocol.seed, network=protocol.network)
    elif ck is not None:  # a rig of the caller's: its parts, before it is opened
        check_checkpoint(ck, layout_of(state_parts(rig)), Engine, f / CHECKPOINT_NAME)
    return _execute(protocol, rig, f, attempt=attempt, checkpoint=ck, progress=progress, subscribers=subscribers,
                    dry_run=dry_run)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed child not yet reaped) is not running
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _execute(protocol: Protocol, rig: Rig, folder: Path, *, attempt: int, checkpoint: dict[str, Any] | None,
             progress: bool, subscribers: Sequence[Callable[[Event], None]], dry_run: bool = False) -> RunOutcome:
    """Set up the session and the engine inside a :class:`RunOwner`, which drives the run and
    owns its end: safe state, outcome, ``# run_ended`` line, ``status.json``, files closed."""
    t0 = time.perf_counter()
    events = EventLog(folder)
    record = SessionRecord(folder, events, attempt)
    owner = RunOwner(rig, record=record.finish)
    undo = attach_event_log(events)

    def close_events() -> None:
        detach_event_log(events, undo)
        events.close()

    owner.on_cleanup(close_events)
    from_step = -1 if checkpoint is None else int(checkpoint["step"])

    def body() -> RunResult:
        write_status(folder, "running", "", attempt=attempt, step=max(from_step, 0))
        events.log("run_started" if attempt == 0 else "resumed", attempt=attempt, from_step=from_step)
        owner.on_cleanup(connect_driver_events(rig, events))
        owner.open_rig()
        if attempt == 0:
            writer = record.writer = SessionWriter(folder, session_header(protocol, rig, dry_run=dry_run),
                                                   state_columns(rig))
        else:
            writer = record.writer = SessionWriter(folder, {}, state_columns(rig), append=True)
            ck_rows = 0 if checkpoint is None else int(checkpoint["csv_rows"])
            marker = {"attempt": attempt, "from_step": from_step, "checkpoint_rows": ck_rows,
                      "superseded_rows": writer.rows - ck_rows, "partial_line": writer.partial_line,
                      "dry_run": dry_run, "simulated": protocol.rig.simulated}
            writer.comment("resumed", marker)
            writer.sync()
            events.log("resume_point", **marker)
        engine = Engine(rig, protocol.build_task(), protocol.rule, protocol.train, protocol.seed, planned(rig, protocol))
        owner.attach(engine)
        engine.subscribe(CsvSink(writer, rig, lambda: time.perf_counter() - t0, attempt))
        restored = None if checkpoint is None else engine_state(checkpoint, folder)
        eval_log = EvaluationLog(folder, () if restored is None else restored["evaluations"])
        owner.on_cleanup(eval_log.close)
        engine.subscribe(CheckpointSink(folder, writer, events, rig, attempt, eval_log))
        for sink in subscribers:
            engine.subscribe(sink)
        attach_analysis(protocol, rig, engine, folder)  # [calibration] table, [analysis] tracking
        if progress:
            engine.subscribe(Progress(protocol.train.steps, protocol.name, initial=max(from_step, 0)))
        if checkpoint is None:
            init = None
            if protocol.rig.initial_code is not None:
                init = np.full(rig.network.n_edges, protocol.rig.initial_code)
            return engine.cycles(initial_codes=init)
        assert restored is not None
        engine.restore(restored)
        restore_run_state(state_parts(rig), checkpoint)  # after the engine's writes: its clock, streams
        return engine.cycles(resume=True)

    try:
        result = owner.drive(body)
    except BaseException as exc:
        try:  # the CLI names the session in its message, and whether the safe state was reached
            exc.labnet_session = str(folder)  # type: ignore[attr-defined]
            if owner.status:
                exc.labnet_safe = bool(owner.status.get("safe_state", False))  # type: ignore[attr-defined]
        except AttributeError:
            pass
        raise
    return RunOutcome(result, folder, protocol, rig, owner.status, dry_run=dry_run, attempt=attempt)


__all__ = ["RESUME_MODES", "RunOutcome", "load_session", "resume_session", "run_protocol", "session_header", "summary"]
