"""The sinks of a session run: what the engine's events and the drivers' events become on disk.

:class:`CsvSink` writes every measured state as a row of ``session.csv``;
:class:`CheckpointSink` replaces ``checkpoint.json`` after every complete step;
:class:`Progress` draws the progress bar; :func:`connect_driver_events` sends driver events
(retries, re-syncs, reconnects) to ``events.jsonl``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from labnet.app.rigstate import state_parts
from labnet.bench.rig import Rig
from labnet.core.network import Network
from labnet.experiments.events import Checkpoint, Evaluated, Event, Kept, RunEnded, StateMeasured, StepDone
from labnet.session.checkpoint import EvaluationLog, run_state, write_checkpoint
from labnet.session.folder import EventLog, SessionWriter


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
    """CSV columns of a measured state on ``rig`` (:func:`state_columns_of` its network)."""
    return state_columns_of(rig.network)


def state_columns_of(net: Network) -> list[str]:
    """CSV columns of a measured state: time, step, phase, split, sample, applied voltages
    (``set_<node>``, V) and currents (``iset_<node>``, A, at current-driven nodes), every node
    voltage, every code, error and (classification) the predicted class."""
    src_nodes = [n for n in net.nodes if n in net.source_channels]
    return (
        ["time_s", "bench_s", "step", "phase", "split", "sample"]
        + [f"set_{n}" for n in src_nodes]
        + [f"iset_{n}" for n in net.nodes if n in net.current_channels]
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
        self.cur_nodes = [n for n in self.net.nodes if n in self.net.current_channels]
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
            for n in self.cur_nodes:
                if n in ev.held:
                    row[f"iset_{n}"] = ev.held[n]
            for n, v in zip(self.net.nodes, ev.voltages):
                row[f"v_{n}"] = float(v)
            for j, c in enumerate(ev.codes):
                row[f"code_e{j}"] = int(c)
            self.writer.write(row)
        elif isinstance(ev, Kept):  # after its "kept" rows: which state the run ends in
            self.writer.comment("kept", ev.record())
            self.writer.sync()
        elif isinstance(ev, (StepDone, RunEnded)):
            self.writer.sync()


class CheckpointSink:
    """On every :class:`Checkpoint` event: fsync the CSV and the event log, then replace
    ``checkpoint.json`` atomically (engine state, CSV extent, the state of every part of the
    rig by role name: :func:`labnet.app.rigstate.state_parts`)."""

    def __init__(self, folder: Path, writer: SessionWriter, events: EventLog, rig: Rig, attempt: int,
                 evaluations: EvaluationLog) -> None:
        self.folder = folder
        self.writer = writer
        self.events = events
        self.rig = rig
        self.attempt = attempt
        self.evaluations = evaluations
        self.parts = state_parts(rig)
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
            "state": run_state(self.parts),
        })
        self.last_step = ev.step


def in_kernel() -> bool:
    """Whether this runs in a Jupyter (IPython) kernel."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Progress:
    """A tqdm progress bar showing the step and the present error (stderr)."""

    def __init__(self, total: int, name: str, stream: TextIO | None = None, initial: int = 0) -> None:
        from tqdm.auto import tqdm  # a widget in Jupyter (with ipywidgets), text elsewhere

        # in a Jupyter kernel stderr is no terminal, and tqdm's disable=None would hide the bar
        self.bar = tqdm(total=total, desc=name, unit="step", file=stream or sys.stderr, dynamic_ncols=True,
                        disable=False if in_kernel() else None, initial=initial)
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
