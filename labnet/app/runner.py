"""Running a protocol end to end: rig + engine + session + progress bar + summary.

:func:`run_protocol` starts a run in a new session folder; :func:`resume_session` continues a
stopped or crashed one from its last checkpoint (``labnet.session.checkpoint``) and appends to the
same CSV. Both run under :func:`labnet.experiments.signals.stop_signals` (Ctrl-C, SIGTERM and SIGHUP stop
the run; the cleanup cannot be interrupted), leave the rig in the safe state, and record how
the run ended in ``status.json`` and in a final ``# run_ended`` line of the CSV.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from labnet.app.build import build_rig
from labnet.bench.rig import Rig
from labnet.config.protocol import Protocol, load_protocol
from labnet.core.errors import ConfigError, InstrumentError
from labnet.experiments.engine import Checkpoint, Engine, Evaluated, Event, RunEnded, RunResult, StateMeasured, StepDone
from labnet.experiments.signals import StopSignal, shielded, stop_signals
from labnet.experiments.tracking import attach as attach_analysis
from labnet.session.checkpoint import (
    RUN_NAME,
    EvaluationLog,
    engine_state,
    read_checkpoint,
    restore_sim_state,
    sim_state,
    write_checkpoint,
)
from labnet.session.folder import (
    CSV_NAME,
    EventLog,
    SessionWriter,
    atomic_write_json,
    atomic_write_text,
    attach_event_log,
    detach_event_log,
    new_session_dir,
    read_markers,
    read_status,
    versions,
    write_status,
)


def _drivers(rig: Rig) -> list[Any]:
    """The rig's driver objects that report events (an ``on_event`` attribute): the digipots,
    the meter, and every instrument behind a routed Sources role."""
    found: list[Any] = []
    for role in (rig.digipots, rig.meter, rig.sources):
        for obj in [role, *getattr(role, "instruments", {}).values()]:
            if hasattr(obj, "on_event") and obj not in found:
                found.append(obj)
    return found


def connect_driver_events(rig: Rig, events: EventLog) -> Callable[[], None]:
    """Send every driver event (retries, re-syncs, recoveries, reconnects) of ``rig`` to
    ``events`` as one line with the event's own kind, its ``instrument``, the rig clock
    (``bench_s``) and its details. Events the drivers kept while the rig was being built
    (:class:`drivers.events.EventBuffer`) are logged first. Returns a function that
    disconnects them again."""
    def log(ev: dict[str, Any], bench_s: float) -> None:
        fields = {k: v for k, v in ev.items() if k not in ("event", "bench_s")}
        for clash in ("kind", "time"):
            if clash in fields:
                fields[f"{clash}_"] = fields.pop(clash)
        events.log(str(ev.get("event", "driver_event")), bench_s=bench_s, **fields)

    def sink(ev: dict[str, Any]) -> None:
        log(ev, round(rig.clock.now(), 6))

    drivers = _drivers(rig)
    before = [d.on_event for d in drivers]
    kept: list[dict[str, Any]] = []
    for cb in {id(cb): cb for cb in before}.values():
        if callable(getattr(cb, "take", None)):
            kept += cb.take()
    for ev in sorted(kept, key=lambda e: e.get("bench_s", 0.0)):
        log({**ev, "while": "building the rig"}, ev.get("bench_s", 0.0))
    for d in drivers:
        d.on_event = sink

    def undo() -> None:
        for d, cb in zip(drivers, before):
            d.on_event = cb

    return undo


def state_columns(rig: Rig) -> list[str]:
    """CSV columns of a measured state: time, step, phase, split, sample, applied voltages,
    every node voltage, every code, error and (classification) the predicted class."""
    net = rig.network
    src_nodes = [n for n in net.nodes if n in net.source_channels]
    return (
        ["time_s", "bench_s", "step", "phase", "split", "sample"]
        + [f"set_{n}" for n in src_nodes]
        + [f"v_{n}" for n in net.nodes]
        + [f"code_e{j}" for j in range(net.n_edges)]
        + ["error", "predicted", "attempt"]
    )


class CsvSink:
    """Writes every :class:`StateMeasured` as a row; fsyncs once per step and at the end."""

    def __init__(self, writer: SessionWriter, rig: Rig, clock: Callable[[], float], attempt: int = 0) -> None:
        self.writer = writer
        self.net = rig.network
        self.src_nodes = [n for n in self.net.nodes if n in self.net.source_channels]
        self.clock = clock
        self.attempt = attempt

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, StateMeasured):
            row: dict[str, Any] = {
                "time_s": round(self.clock(), 6),
                "bench_s": round(ev.bench_s, 9),
                "step": ev.step,
                "phase": ev.phase,
                "split": ev.split,
                "sample": ev.sample,
                "error": ev.error,
                "predicted": ev.predicted,
                "attempt": self.attempt,
            }
            for n in self.src_nodes:
                if n in ev.held:
                    row[f"set_{n}"] = ev.held[n]
            for n, v in zip(self.net.nodes, ev.voltages):
                row[f"v_{n}"] = float(v)
            for j, c in enumerate(ev.codes):
                row[f"code_e{j}"] = int(c)
            self.writer.write(row)
        elif isinstance(ev, (StepDone, RunEnded)):
            self.writer.sync()


class CheckpointSink:
    """On every :class:`Checkpoint` event: fsync the CSV and the event log, then replace
    ``checkpoint.json`` atomically (engine state, codes, CSV extent, simulator state)."""

    def __init__(self, folder: Path, writer: SessionWriter, events: EventLog, rig: Rig, attempt: int,
                 evaluations: EvaluationLog) -> None:
        self.folder = folder
        self.writer = writer
        self.events = events
        self.rig = rig
        self.attempt = attempt
        self.evaluations = evaluations
        self.last_step: int | None = None

    def __call__(self, ev: Event) -> None:
        if not isinstance(ev, Checkpoint):
            return
        self.writer.sync()
        self.events.sync()
        state = dict(ev.state)
        state["evaluations"] = self.evaluations.extend(state["evaluations"])  # the log, not the list
        write_checkpoint(self.folder, {
            "step": ev.step,
            "attempt": self.attempt,
            "engine": state,
            "csv_rows": self.writer.rows,
            "csv_bytes": self.writer.bytes,
            "sim": sim_state(self.rig) if self.rig.simulated else {},
        })
        self.last_step = ev.step


class Progress:
    """A tqdm progress bar showing the step and the present error (stderr)."""

    def __init__(self, total: int, name: str, stream: TextIO | None = None, initial: int = 0) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=name, unit="step", file=stream or sys.stderr, dynamic_ncols=True,
                        disable=None, initial=initial)
        self.last_eval = ""

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, StepDone):
            self.bar.update(1)
            self.bar.set_postfix_str(f"err {ev.train_error:.3g} V²{self.last_eval}", refresh=False)
        elif isinstance(ev, Evaluated):
            self.last_eval = f" | test {_fmt(ev.test)}"
        elif isinstance(ev, RunEnded):
            self.bar.close()


def _fmt(m: dict[str, float]) -> str:
    s = f"mse {m['mse']:.3g}"
    if "accuracy" in m:
        s += f" acc {m['accuracy']:.1%}"
    return s


@dataclass
class RunOutcome:
    result: RunResult
    session: Path
    protocol: Protocol
    rig: Rig
    status: dict[str, Any] = field(default_factory=dict)  # what status.json says


def session_header(protocol: Protocol, rig: Rig) -> dict[str, Any]:
    """The self-describing header of a session CSV."""
    net = rig.network
    return {
        "labnet_session": 1,
        "protocol": {"name": protocol.name, "kind": protocol.kind, "file": protocol.path.name, "seed": protocol.seed},
        "rule": protocol.rule.__dict__,
        "train": protocol.train.__dict__,
        "task": protocol.task_table,
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


def run_protocol(protocol: Protocol, out: str | Path | None = None, *, progress: bool = True,
                 session_dir: Path | None = None, rig: Rig | None = None,
                 subscribers: Sequence[Callable[[Event], None]] = ()) -> RunOutcome:
    """Run a training protocol on its rig; write a session folder; return the result.

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
    if rig is None:
        rig = build_rig(protocol.rig, sim_seed=protocol.seed, network=protocol.network)
    # What a resume needs, before anything else happens (run.json last: it marks a session).
    atomic_write_text(folder / "protocol.toml", protocol.text)
    atomic_write_text(folder / "rig.toml", protocol.rig.text)
    atomic_write_json(folder / RUN_NAME, {
        "format": 1,
        "protocol_file": str(protocol.path),
        "rig_file": str(protocol.rig.path),
        "steps": protocol.train.steps,
        "seed": protocol.seed,
    })
    return _execute(protocol, rig, folder, attempt=0, checkpoint=None, progress=progress, subscribers=subscribers)


def load_session(folder: str | Path) -> tuple[Protocol, dict[str, Any] | None, int]:
    """Validate a session folder for resuming: (protocol, checkpoint or None, next attempt).

    Raises :class:`ConfigError` (exit code 2 at the CLI) when the folder is not a resumable
    session: missing files, a run that already completed, or one still running.
    """
    f = Path(folder)
    if not f.is_dir():
        raise ConfigError(str(f), "-", "session folder not found")
    for name in ("protocol.toml", "rig.toml", RUN_NAME):
        if not (f / name).is_file():
            raise ConfigError(str(f), name, "missing from the session folder (not a labnet session?)")
    try:
        run = json.loads((f / RUN_NAME).read_text(encoding="utf-8"))
        steps, seed = int(run["steps"]), int(run["seed"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(str(f / RUN_NAME), "-", f"unreadable run record ({exc})") from None
    status = read_status(f)
    if status is not None:
        if status.get("status") == "completed":
            raise ConfigError(str(f), "status", "the run already completed; nothing to resume")
        pid = int(status.get("pid", 0))
        if status.get("status") == "running" and pid != os.getpid() and _alive(pid):
            raise ConfigError(str(f), "status", f"the run is still running (pid {pid})")
    protocol = load_protocol(f / "protocol.toml", rig=f / "rig.toml", steps=steps, seed=seed)
    try:
        ck = read_checkpoint(f)
    except ValueError as exc:
        raise ConfigError(str(f), "checkpoint.json", str(exc)) from None
    if not (f / CSV_NAME).is_file():  # stopped before its first row: start it again
        return protocol, None, 0
    attempts = [int(m.get("attempt", 0)) for m in read_markers(f / CSV_NAME, "resumed")]
    return protocol, ck, max(attempts, default=0) + 1


def resume_session(folder: str | Path, *, progress: bool = True, rig: Rig | None = None,
                   subscribers: Sequence[Callable[[Event], None]] = ()) -> RunOutcome:
    """Continue a stopped or crashed run from its last complete step, appending to its CSV.

    The rig is rebuilt from the session's copy of the rig file (or ``rig``); codes are
    re-written to every channel and verified; the engine's generator and, on a simulator, every
    random stream and the virtual clock are restored, so the run ends exactly where the
    uninterrupted run would have. Without a checkpoint (the run died in its first
    evaluation) the run starts over, still appending to the same CSV.
    """
    f = Path(folder)
    protocol, ck, attempt = load_session(f)
    if rig is None:
        rig = build_rig(protocol.rig, sim_seed=protocol.seed, network=protocol.network)
    return _execute(protocol, rig, f, attempt=attempt, checkpoint=ck, progress=progress, subscribers=subscribers)


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
             progress: bool, subscribers: Sequence[Callable[[Event], None]]) -> RunOutcome:
    """Open the rig, run (or resume) the engine, and always: safe state, status, files closed."""
    t0 = time.perf_counter()
    events = EventLog(folder)
    undo = attach_event_log(events)
    disconnect: Callable[[], None] | None = None
    from_step = -1 if checkpoint is None else int(checkpoint["step"])
    writer: SessionWriter | None = None
    eval_log: EvaluationLog | None = None
    ended: dict[str, Any] = {}
    result: RunResult | None = None
    error: BaseException | None = None
    opened = False
    status: dict[str, Any] = {}
    with stop_signals():
        try:
            write_status(folder, "running", "", attempt=attempt, step=max(from_step, 0))
            events.log("run_started" if attempt == 0 else "resumed", attempt=attempt, from_step=from_step)
            disconnect = connect_driver_events(rig, events)
            rig.open()
            opened = True
            if attempt == 0:
                writer = SessionWriter(folder, session_header(protocol, rig), state_columns(rig))
            else:
                writer = SessionWriter(folder, {}, state_columns(rig), append=True)
                ck_rows = 0 if checkpoint is None else int(checkpoint["csv_rows"])
                marker = {"attempt": attempt, "from_step": from_step, "checkpoint_rows": ck_rows,
                          "superseded_rows": writer.rows - ck_rows, "partial_line": writer.partial_line}
                writer.comment("resumed", marker)
                writer.sync()
                events.log("resume_point", **marker)
            engine = Engine(rig, protocol.build_task(), protocol.rule, protocol.train, seed=protocol.seed)
            engine.subscribe(CsvSink(writer, rig, lambda: time.perf_counter() - t0, attempt))
            restored = None if checkpoint is None else engine_state(checkpoint, folder)
            eval_log = EvaluationLog(folder, () if restored is None else restored["evaluations"])
            engine.subscribe(CheckpointSink(folder, writer, events, rig, attempt, eval_log))
            engine.subscribe(lambda ev: ended.update(ev.__dict__) if isinstance(ev, RunEnded) else None)
            for sink in subscribers:
                engine.subscribe(sink)
            attach_analysis(protocol, rig, engine, folder)  # [calibration] table, [analysis] tracking
            if progress:
                engine.subscribe(Progress(protocol.train.steps, protocol.name, initial=max(from_step, 0)))
            if checkpoint is None:
                init = None
                if protocol.rig.initial_code is not None:
                    init = np.full(rig.network.n_edges, protocol.rig.initial_code)
                result = engine.run(initial_codes=init)
            else:
                assert restored is not None
                engine.restore(restored)
                if checkpoint.get("sim"):
                    missing = restore_sim_state(rig, checkpoint["sim"])
                    if missing:
                        events.log("sim_state_missing", paths=missing)
                result = engine.run(resume=True)
        except BaseException as exc:
            error = exc
            try:  # the CLI names the session in its message
                exc.labnet_session = str(folder)  # type: ignore[attr-defined]
            except AttributeError:
                pass
            raise
        finally:
            with shielded():
                status = _finish(folder, rig, opened, writer, events, ended, error, attempt)
                if eval_log is not None:
                    eval_log.close()
                if disconnect is not None:
                    disconnect()
                detach_event_log(events, undo)
                events.close()
    if not status.get("safe_state", False):
        raise InstrumentError(status.get("reason", "safe state not reached"))
    assert result is not None
    return RunOutcome(result, folder, protocol, rig, status)


def _finish(folder: Path, rig: Rig, opened: bool, writer: SessionWriter | None, events: EventLog,
            ended: dict[str, Any], error: BaseException | None, attempt: int) -> dict[str, Any]:
    """The cleanup every run gets (called with stop signals deferred): safe state, close the
    instruments, write the end of the CSV and ``status.json``."""
    safe = False
    unsafe_why = ""
    try:
        rig.safe_state()
        safe = True
    except Exception as exc:  # noqa: BLE001 - recorded below; a source may be on: say so loudly
        unsafe_why = f"{type(exc).__name__}: {exc}"
        events.log("safe_state_failed", error=unsafe_why)
    if opened:
        try:
            rig.close()
        except Exception as exc:  # noqa: BLE001 - recorded
            events.log("close_failed", error=f"{type(exc).__name__}: {exc}")
    if ended:
        state, reason = ended["status"], ended["reason"]
    elif isinstance(error, StopSignal):
        state, reason = "stopped", f"interrupted by {error}"
    elif isinstance(error, KeyboardInterrupt):
        state, reason = "stopped", "interrupted (Ctrl-C)"
    elif error is not None:
        state, reason = "failed", f"{type(error).__name__}: {error}"
    else:
        state, reason = "failed", "ended without a result"
    if not safe:
        state, reason = "failed", (f"SAFE STATE NOT REACHED ({unsafe_why}): a source may still be on, check the bench; "
                                   f"the run itself ended {ended.get('status', state)}: {reason}")
    ck = read_checkpoint(folder)
    info = {"attempt": attempt, "step": None if ck is None else ck["step"], "safe_state": safe,
            "rows": None if writer is None else writer.rows,
            "events": dict(events.counts)}
    if writer is not None and not writer.closed:
        try:
            writer.comment("run_ended", {"status": state, "reason": reason, **info})
        finally:
            writer.close()
    events.log("run_ended", status=state, reason=reason, safe_state=safe)
    events.sync()
    return write_status(folder, state, reason, resumable=state != "completed", **info)


def summary(outcome: RunOutcome) -> str:
    """The one-screen end-of-run summary."""
    r = outcome.result
    lines = [
        f"labnet run: {outcome.protocol.name} on {outcome.rig.name} — {r.status} ({r.reason})",
        f"  steps          {r.steps}",
    ]
    if r.evaluations:
        a, b = r.initial, r.final
        lines += [
            f"  train error    {a.train['mse']:.4g} -> {b.train['mse']:.4g} V²"
            + (f"  ({a.train['mse'] / b.train['mse']:.3g}x lower)" if b.train["mse"] > 0 else ""),
            f"  test error     {a.test['mse']:.4g} -> {b.test['mse']:.4g} V²"
            + (f"  ({a.test['mse'] / b.test['mse']:.3g}x lower)" if b.test["mse"] > 0 else ""),
        ]
        if "accuracy" in b.test:
            lines.append(f"  test accuracy  {a.test['accuracy']:.1%} -> {b.test['accuracy']:.1%}"
                         f"   (train {a.train['accuracy']:.1%} -> {b.train['accuracy']:.1%})")
    lines.append(f"  wall time      {r.wall_s:.2f} s")
    if outcome.rig.simulated:
        lines.append(f"  bench time     {r.bench_s:.1f} s (modelled: what the real bench would take)")
    lines.append(f"  session        {outcome.session}")
    return "\n".join(lines)
