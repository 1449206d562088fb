"""Running a protocol end to end: rig + engine + session + progress bar + summary."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from labnet.engine import Engine, Evaluated, Event, RunEnded, RunResult, StateMeasured, StepDone
from labnet.protocol import Protocol
from labnet.rig import Rig
from labnet.rigfile import build_rig
from labnet.session import SessionWriter, new_session_dir, versions


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
        + ["error", "predicted"]
    )


class CsvSink:
    """Writes every :class:`StateMeasured` as a row; fsyncs once per step and at the end."""

    def __init__(self, writer: SessionWriter, rig: Rig, clock: Callable[[], float]) -> None:
        self.writer = writer
        self.net = rig.network
        self.src_nodes = [n for n in self.net.nodes if n in self.net.source_channels]
        self.clock = clock

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


class Progress:
    """A tqdm progress bar showing the step and the present error (stderr)."""

    def __init__(self, total: int, name: str, stream: TextIO | None = None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=name, unit="step", file=stream or sys.stderr, dynamic_ncols=True,
                        disable=None)
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
            "time_s": "wall-clock seconds since the run started",
            "bench_s": "rig clock (modelled bench seconds on a simulator)",
            "set_<node>": "source setpoint at the node (V), blank when its output is off",
            "v_<node>": "measured node voltage (V)",
            "code_e<j>": "digipot code of edge j (network.edges order) when the state was measured",
            "error": "mean squared output error of the state (V^2), free and eval states",
            "predicted": "predicted class (classification)",
        },
    }


def run_protocol(protocol: Protocol, out: str | Path | None = None, *, progress: bool = True,
                 session_dir: Path | None = None) -> RunOutcome:
    """Run a training protocol on its rig; write a session folder; return the result.

    ``out`` is the folder under which the session folder is created (default ``sessions``);
    ``session_dir`` names the session folder itself.
    """
    import time

    rig = build_rig(protocol.rig, sim_seed=protocol.seed, network=protocol.network)
    task = protocol.build_task()
    folder = session_dir or new_session_dir(out or "sessions", protocol.name)
    t0 = time.perf_counter()
    with rig:
        writer = SessionWriter(
            folder,
            session_header(protocol, rig),
            state_columns(rig),
            files={"protocol.toml": protocol.text, "rig.toml": protocol.rig.text},
        )
        engine = Engine(rig, task, protocol.rule, protocol.train, seed=protocol.seed)
        engine.subscribe(CsvSink(writer, rig, lambda: time.perf_counter() - t0))
        if progress:
            engine.subscribe(Progress(protocol.train.steps, protocol.name))
        init = None
        if protocol.rig.initial_code is not None:
            init = np.full(rig.network.n_edges, protocol.rig.initial_code)
        try:
            result = engine.run(initial_codes=init)
        finally:
            writer.close()
    return RunOutcome(result, folder, protocol, rig)


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
