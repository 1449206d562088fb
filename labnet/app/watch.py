"""``labnet watch PATH``: a live view of a running session or sweep, from another terminal.

It follows the session's append-only files (:mod:`labnet.app.watch_data`) — no link to the
running process — and redraws a figure as rows arrive:

* training: train/test error vs step (log step axis once a run is long), every edge's code vs
  step, the latest free and clamped node voltages, and a status panel;
* calibrate / probe: the latest pattern's node voltages (and source currents), codes, the
  drive voltages so far;
* sweep: points done vs time and the fraction of finished points showing each effect.

With a display it is a matplotlib window (closing it ends the watch); without one, or with
``--png FILE``, the figure is rewritten atomically every ``--interval`` seconds (open it in an
image viewer that reloads). It ends when the run ends (``--once``: one frame now).
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

from labnet.app.watch_data import SessionView, resolve, sweep_progress

_NON_INTERACTIVE = ("agg", "pdf", "svg", "ps", "cairo", "template", "pgf")


def interactive_backend() -> bool:
    """Whether matplotlib can open a window here (a display and a GUI backend)."""
    import matplotlib

    return matplotlib.get_backend().lower() not in _NON_INTERACTIVE


def _figure() -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    return fig, axes


def _legend(ax: Any, n: int) -> None:
    if n <= 16:
        ax.legend(fontsize=6, ncol=2 if n > 8 else 1, loc="best")


def draw_session(fig: Any, axes: Any, view: SessionView, started: float) -> None:
    """Redraw the four panels for a training, calibrate or probe session."""
    for ax in axes.ravel():
        ax.clear()
    tail, kind, status = view.csv, view.kind, view.status()
    steps = tail.column("step")
    ax = axes[0, 0]
    if kind == "train" and view.evaluations:
        ev = view.evaluations
        x = [e.get("step", 0) for e in ev]
        for split in ("train", "test"):
            y = [float(e.get(split, {}).get("mse", math.nan)) for e in ev]
            ax.plot(x, y, marker=".", label=f"{split} error")
        ax.set_yscale("log")
        if max(x, default=0) > 1000:
            ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel("step")
        ax.set_ylabel("mean squared error (V²)")
        ax.legend(fontsize=8)
        ax.set_title("error vs step")
    else:
        vs = tail.names("set_")
        if vs:
            for c in vs:
                ax.plot(tail.column(c), ".", ms=2, label=c[4:])
            _legend(ax, len(vs))
        ax.set_xlabel("row")
        ax.set_ylabel("source setting (V)")
        ax.set_title("drive voltages so far")
    ax = axes[0, 1]
    codes = tail.names("code_")
    if codes and steps:
        last_of: dict[int, int] = {}
        for i, s in enumerate(steps):
            if s == s:
                last_of[int(s)] = i
        xs = sorted(last_of)
        rows = [tail.rows[last_of[s]] for s in xs]
        for c in codes:
            ax.plot(xs, tail.column(c, rows), lw=1, label=c[5:])
        _legend(ax, len(codes))
        if max(xs, default=0) > 1000:
            ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("step")
    ax.set_ylabel("tap code")
    ax.set_title(f"codes of {len(codes)} edges")
    ax = axes[1, 0]
    nodes = tail.names("v_")
    second = "nudged" if tail.last({"phase": "nudged"}) is not None else "clamped"  # equilibrium propagation
    phases = [("free", {"phase": "free"}), (second, {"phase": second})] if kind == "train" else [("latest", {})]
    width = 0.8 / len(phases)
    for j, (label, where) in enumerate(phases):
        row = tail.last(where) if where else (tail.rows[-1] if tail.rows else None)
        if row is not None and tail.columns is not None:
            vals = [float(row[tail.columns.index(c)] or "nan") for c in nodes]
            ax.bar([i + j * width for i in range(len(nodes))], vals, width, label=label)
    ax.set_xticks(range(len(nodes)), [c[2:] for c in nodes], rotation=90 if len(nodes) > 20 else 0, fontsize=7)
    ax.set_ylabel("node voltage (V)")
    ax.set_title("latest free and clamped state" if kind == "train" else "latest measured state")
    if tail.rows:
        ax.legend(fontsize=8)
    ax = axes[1, 1]
    ax.axis("off")
    head = tail.header.get("protocol", {}) if isinstance(tail.header.get("protocol"), dict) else {}
    total = tail.header.get("train", {}).get("steps") if isinstance(tail.header.get("train"), dict) else None
    bench = tail.column("bench_s")
    last_err = ""
    if view.evaluations:
        e = view.evaluations[-1]
        last_err = f"train error {e.get('train', {}).get('mse', math.nan):.3g} V² at step {e.get('step')}"
        if "accuracy" in e.get("test", {}):
            last_err += f", test accuracy {100 * e['test']['accuracy']:.1f} %"
    lines = [f"session  {view.folder.name}", f"kind     {kind} ({head.get('name', '?')})",
             f"status   {status.get('status', 'running')}" + (f": {status['reason']}" if status.get("reason") else ""),
             f"step     {view.step}" + (f" of {total}" if total else ""), f"rows     {len(tail.rows)}",
             f"bench    {bench[-1]:.1f} s modelled" if bench and bench[-1] == bench[-1] else "bench    -",
             f"watching {time.monotonic() - started:.0f} s", last_err]
    ax.text(0.0, 1.0, "\n".join(x for x in lines if x), va="top", family="monospace", fontsize=9)
    fig.suptitle(f"labnet watch: {view.folder}", fontsize=9)
    fig.tight_layout()


def draw_sweep(fig: Any, axes: Any, folder: Path, history: list[tuple[float, int]]) -> dict[str, Any]:
    """Redraw the panels for a sweep folder; ``history`` of (seconds, points done) grows by one."""
    for ax in axes.ravel():
        ax.clear()
    prog = sweep_progress(folder)
    ax = axes[0, 0]
    ax.plot([t for t, _ in history], [n for _, n in history], marker=".")
    ax.axhline(prog["n_points"], color="grey", ls="--", lw=1)
    ax.set_xlabel("watching (s)")
    ax.set_ylabel("points done")
    ax.set_title(f"{prog['done']} of {prog['n_points']} points")
    ax = axes[0, 1]
    eff = prog["effects"]
    ax.bar(range(len(eff)), list(eff.values()))
    ax.set_xticks(range(len(eff)), [k.replace("_", " ") for k in eff], rotation=20, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title("fraction of finished points showing each effect")
    df = prog["frame"]
    ax = axes[1, 0]
    for col in ("lam_ratio", "deff_ratio", "gbar_ratio"):
        if col in df.columns and len(df):
            vals = df[col].to_numpy(dtype=float)
            vals = vals[vals > 0]
            if len(vals):
                import numpy as np

                ax.hist(np.log10(vals), bins=30, alpha=0.5, label=col)
    ax.set_xlabel("log10(after / before)")
    ax.set_title("ratios of finished points")
    if len(df):
        ax.legend(fontsize=8)
    ax = axes[1, 1]
    ax.axis("off")
    ax.text(0.0, 1.0, f"sweep    {prog['name']}\npoints   {prog['done']} / {prog['n_points']}\n"
            f"status   {'finished' if prog['finished'] else 'running'}", va="top", family="monospace", fontsize=9)
    fig.suptitle(f"labnet watch: {folder}", fontsize=9)
    fig.tight_layout()
    return prog


def _save(fig: Any, png: Path) -> None:
    tmp = png.with_name(png.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=90)
    os.replace(tmp, png)


def watch(path: Path, *, interval: float = 1.0, png: Path | None = None, once: bool = False,
          timeout: float | None = None, out: IO[str] = sys.stdout) -> int:
    """Follow ``path`` (session, sweep, or a folder of sessions: its newest) until its run ends.

    Returns 0 when the run ended (or ``once``), 1 when ``timeout`` seconds passed first. Prints
    one line whenever the step (or the number of points done) changes.
    """
    import matplotlib

    kind, folder = resolve(path)
    window = png is None and not once and interactive_backend()
    if png is None and not window:
        png = folder / "watch.png"
        print(f"watch: no display; writing {png} every {interval:g} s", file=out)
    if not window:
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = _figure()
    started = time.monotonic()
    view = SessionView(folder) if kind == "session" else None
    history: list[tuple[float, int]] = []
    said = None
    while True:
        if view is not None:
            view.poll()
            draw_session(fig, axes, view, started)
            state: tuple[Any, ...] = (view.step, view.status().get("status", "running"))
            done = view.done
            line = f"watch: step {view.step}, {len(view.csv.rows)} rows, {state[1]}"
        else:
            history.append((time.monotonic() - started, 0))
            prog = draw_sweep(fig, axes, folder, history)
            history[-1] = (history[-1][0], prog["done"])
            state = (prog["done"], prog["finished"])
            done = prog["finished"] and prog["done"] >= prog["n_points"]
            line = f"watch: {prog['done']} of {prog['n_points']} points{', finished' if done else ''}"
        if state != said:
            print(line, file=out, flush=True)
            said = state
        if png is not None:
            _save(fig, png)
        if once or done:
            if window:
                plt.show()  # the final picture stays until the window is closed
            plt.close(fig)
            return 0
        if timeout is not None and time.monotonic() - started > timeout:
            plt.close(fig)
            print(f"watch: gave up after {timeout:g} s (the run had not ended)", file=out)
            return 1
        if window:
            plt.pause(interval)
            if not plt.fignum_exists(fig.number):
                return 0  # the window was closed
        else:
            time.sleep(interval)


__all__ = ["draw_session", "draw_sweep", "interactive_backend", "watch"]
