"""Tracking the physical effects of learning during a training run (an engine event subscriber).

A training protocol's optional tables::

    [analysis]
    track_every = 10        # model quantities every K steps (and at the start and the end)
    probe_every = 100       # a short random probe every this many steps (0: never)
    probe_samples = 40      # patterns per probe
    probe_v_max = 0.5       # V; probe voltages uniform in [0, probe_v_max] at the probe nodes
    probe_drive = ["n1", "n2"]   # default: the task's input nodes
    probe_bootstrap = 200

    [calibration]
    table = "sessions/.../calibration.csv"   # relative to the protocol file; the rig's model

The tables are validated by :mod:`labnet.config.analysis_file` (``[analysis]`` becomes an
:class:`~labnet.experiments.settings.AnalysisSettings`). Every K steps :class:`Tracker`
computes, from the present codes through the rig's model (the calibration table when given,
the nominal part model otherwise), the free-state Hessian's spectrum and the task alignment
(:func:`labnet.core.analysis.task_modes`), and writes a row to ``tracking.csv`` (same
``# key: JSON`` header style as the session CSV) and every mode to ``tracking_modes.csv``.
Probes write their statistics into the same row.

The task's free state is taken at the mean training input; the output functional is
A = Σ_o w_o e_o with w the mean target vector divided by its norm (one output: A = e_o).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from labnet.bench.rig import Rig
from labnet.core.analysis import talk_deff, task_modes
from labnet.experiments.calibration.table import CalibrationTable
from labnet.experiments.engine import Evaluated, Event, RunEnded, StepDone
from labnet.experiments.probe import CsvLog, model_probe, run_probe
from labnet.experiments.settings import AnalysisSettings, ProbeSettings

TRACK_COLUMNS = [
    "step", "bench_s", "lam_min", "lam_2", "lam_max", "response_v", "share_soft", "share_soft2", "abs_share_soft",
    "f0", "a0", "deff", "talk_deff", "gbar", "probe_deff", "probe_deff_sd", "probe_gain", "probe_gain_sd",
    "probe_model_deff", "probe_model_gain",
]
MODE_COLUMNS = ["step", "mode", "lam", "f", "a", "c"]
#: Name of the copy of the calibration table a training session keeps.
SESSION_TABLE = "calibration.csv"


class Tracker:
    """Engine subscriber: model quantities every ``track_every`` steps, probes every ``probe_every``.

    Parameters
    ----------
    rig : Rig
        The open rig (its ``model`` turns codes into conductances).
    inputs_v : array (n_in,)
        Input voltages of the tracked free state (V).
    output_weights : array (n_out,)
        Weights of the output functional A.
    settings : AnalysisSettings
    folder : Path
        Session folder: ``tracking.csv`` and ``tracking_modes.csv`` go there.
    seed : int
        Seeds the probes.
    """

    def __init__(self, rig: Rig, inputs_v: np.ndarray, output_weights: np.ndarray, settings: AnalysisSettings,
                 folder: Path, seed: int = 0, header: dict[str, Any] | None = None) -> None:
        self.rig = rig
        self.inputs_v = np.asarray(inputs_v, dtype=float)
        self.weights = np.asarray(output_weights, dtype=float)
        self.settings = settings
        self.rng = np.random.default_rng([seed, 31])
        self.probe = ProbeSettings(samples=settings.probe_samples, drive=settings.probe_drive or tuple(rig.network.inputs),
                                   v_min=0.0, v_max=settings.probe_v_max, settle_s=0.01, bootstrap=settings.probe_bootstrap)
        meta = {"labnet_tracking": 1, "analysis": settings.__dict__, "inputs_v": self.inputs_v,
                "output_weights": self.weights, "model": type(rig.model).__name__, **(header or {})}
        self.log = CsvLog(Path(folder) / "tracking.csv", meta, TRACK_COLUMNS, append=True)
        self.modes = CsvLog(Path(folder) / "tracking_modes.csv", {"labnet_tracking_modes": 1}, MODE_COLUMNS, append=True)
        self.last = -1

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, Evaluated) and self.last < 0:
            self.record(ev.step, self.rig.codes)
        elif isinstance(ev, StepDone) and self._due(ev.step):
            self.record(ev.step, ev.codes)
        elif isinstance(ev, RunEnded):
            if ev.steps != self.last:
                self.record(ev.steps, self.rig.codes, probe_ok=False)
            self.close()

    def _due(self, step: int) -> bool:
        pe = self.settings.probe_every
        return step % self.settings.track_every == 0 or bool(pe and step % pe == 0)

    def record(self, step: int, codes: np.ndarray, probe_ok: bool = True) -> dict[str, Any]:
        """Compute and log the model quantities (and a probe when due) at ``codes``."""
        net = self.rig.network
        k = self.rig.model.conductance(np.asarray(codes))
        tm = task_modes(net, k, self.inputs_v, self.weights)
        row: dict[str, Any] = {
            "step": step, "bench_s": self.rig.clock.now(), "lam_min": tm.lam[0],
            "lam_2": tm.lam[1] if tm.lam.size > 1 else None, "lam_max": tm.lam[-1], "response_v": tm.response,
            "share_soft": tm.share_soft, "share_soft2": tm.share(2), "abs_share_soft": tm.abs_share_soft,
            "f0": tm.f[0], "a0": tm.a[0], "deff": tm.deff, "talk_deff": talk_deff(tm.lam), "gbar": tm.gbar,
        }
        pe = self.settings.probe_every
        if probe_ok and pe and step % pe == 0 and self.rig.is_open:
            res = run_probe(self.rig, self.probe, self.rng, step=step)
            md, mg = model_probe(net, k, self.probe, res.free_nodes)
            row.update({"probe_deff": res.deff, "probe_deff_sd": res.deff_sd, "probe_gain": res.gain,
                        "probe_gain_sd": res.gain_sd, "probe_model_deff": md, "probe_model_gain": mg})
        self.log.write(row)
        for n in range(tm.lam.size):
            self.modes.write({"step": step, "mode": n, "lam": tm.lam[n], "f": tm.f[n], "a": tm.a[n], "c": tm.c[n]})
        self.last = step
        return row

    def close(self) -> None:
        self.log.close()
        self.modes.close()


def attach(protocol: Any, rig: Rig, engine: Any, folder: Path) -> Tracker | None:
    """Wire a protocol's ``[calibration]`` and ``[analysis]`` tables into a run (called by the runner).

    Loads the calibration table into ``rig.model`` (and copies it into the session folder as
    ``calibration.csv``, which a resumed run and the report find); subscribes a :class:`Tracker` when the
    protocol has an ``[analysis]`` table. Returns the tracker (or None).
    """
    extra = getattr(protocol, "extra", {}) or {}
    if "calibration" in extra:
        src = Path(extra["calibration"]["table"])
        rig.model = CalibrationTable.from_csv(src, rig.network.n_edges, rig.part.positions)
        dst = Path(folder) / SESSION_TABLE
        if not dst.exists():  # the session keeps the table it ran with
            shutil.copyfile(src, dst)
    if "analysis" not in extra:
        return None
    settings: AnalysisSettings = extra["analysis"]  # validated by labnet.config.analysis_file
    task = engine.task
    x = task.train.inputs.mean(axis=0)
    t = task.train.targets.mean(axis=0)
    w = t / np.linalg.norm(t) if np.linalg.norm(t) > 0 else np.ones_like(t)
    tracker = Tracker(rig, x, w, settings, folder, seed=protocol.seed,
                      header={"calibration": extra.get("calibration")})
    engine.subscribe(tracker)
    return tracker


__all__ = ["SESSION_TABLE", "Tracker", "attach"]
