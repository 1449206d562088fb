"""What ``labnet report`` reads from a folder: which kind of folder it is, and a training
session's data (rows, codes, model, task, tracking) — tolerant of sessions that failed early.

Kinds (:func:`folder_kind`): ``"sweep"`` (``results.parquet`` + ``manifest.json``), ``"train"``,
``"calibrate"``, ``"probe"`` (``session.csv``'s ``protocol.kind``; a training folder that failed
before its first row has ``run.json`` but no CSV and is still ``"train"``). Anything else is not a
session: :class:`~labnet.core.errors.ConfigError` (one line, exit 2 at the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labnet.core.analysis import task_modes
from labnet.core.conductance import ConductanceModel, PartModel
from labnet.core.errors import ConfigError
from labnet.core.network import Network
from labnet.core.tasks import Task
from labnet.session.folder import read_header, read_markers, read_status, superseded_mask

KINDS = ("train", "calibrate", "probe", "sweep")


def folder_kind(folder: str | Path) -> str:
    """One of :data:`KINDS`; :class:`ConfigError` when ``folder`` is no session or sweep folder."""
    f = Path(folder)
    if not f.is_dir():
        raise ConfigError(str(f), "-", "folder not found (expected a session or sweep folder)")
    if (f / "results.parquet").is_file() and (f / "manifest.json").is_file():
        return "sweep"
    csv = f / "session.csv"
    if csv.is_file():
        try:
            header = read_header(csv)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(str(csv), "-", f"unreadable session CSV ({exc})") from None
        if header.get("labnet_session") is None:
            raise ConfigError(str(csv), "labnet_session", "missing from the header (not a labnet session CSV)")
        proto = header.get("protocol")
        kind = str(proto.get("kind", "train")) if isinstance(proto, dict) else "train"
        return kind if kind in KINDS else "train"
    if (f / "run.json").is_file():  # a training run that stopped or failed before its first row
        return "train"
    raise ConfigError(str(f), "session.csv", "missing (not a labnet session or sweep folder)")


@dataclass
class SessionData:
    """Everything the training report needs from a session folder.

    ``states`` holds the rows (superseded rows of a resumed run dropped; possibly none);
    ``codes`` the last codes of every step (index: step; columns ``code_e<j>``); ``task`` the
    protocol's task (None when the copied protocol no longer loads); ``status`` status.json.
    """

    folder: Path
    header: dict[str, Any]
    states: pd.DataFrame
    network: Network
    model: ConductanceModel
    model_name: str
    inputs_v: np.ndarray
    weights: np.ndarray
    codes: pd.DataFrame
    tracking: pd.DataFrame
    modes: pd.DataFrame
    task: Task | None
    status: dict[str, Any] | None

    @property
    def evals(self) -> pd.DataFrame:
        """Mean error per evaluation step and split (columns ``train``/``test``)."""
        ev = self.states[self.states["phase"] == "eval"] if "phase" in self.states else self.states.iloc[:0]
        if ev.empty:
            return pd.DataFrame()
        return ev.groupby(["step", "split"])["error"].mean().unstack()

    @property
    def has_rows(self) -> bool:
        return not self.codes.empty


def load_session_data(folder: str | Path) -> SessionData:
    """Read a training session folder; compute tracking from the codes when no tracking.csv exists.

    :class:`ConfigError` when the folder has no readable session CSV header (nothing to report).
    """
    from labnet.app.report_input import read_training_csv

    f = Path(folder)
    csv = f / "session.csv"
    header, states = read_training_csv(f)  # ConfigError (exit 2) unless a readable training session CSV
    states = states.loc[~superseded_mask(states, read_markers(csv, "resumed"))].reset_index(drop=True)
    network = Network.from_dict(header["network"], file=str(csv), key="network")
    model, model_name = session_model(f, header, network)
    code_cols = [f"code_e{j}" for j in range(network.n_edges)]
    rows = states.dropna(subset=code_cols) if set(code_cols) <= set(states.columns) else states.iloc[:0]
    codes = rows.groupby("step")[code_cols].last() if not rows.empty else pd.DataFrame(columns=code_cols)
    task: Task | None = None
    try:
        from labnet.config.protocol import load_protocol

        task = load_protocol(f / "protocol.toml", rig=f / "rig.toml").build_task()
    except Exception:  # noqa: BLE001 - the report still works from the CSV alone
        task = None
    spec = header.get("task", {})
    if task is not None:
        x, y = task.train.inputs.mean(axis=0), task.train.targets.mean(axis=0)
    else:
        x = np.asarray(spec.get("inputs_a", spec.get("inputs_v", np.ones(len(network.inputs)))), float)
        y = np.asarray(spec.get("targets_v", np.ones(len(network.outputs))), float)
    w = y / np.linalg.norm(y) if np.linalg.norm(y) > 0 else np.ones_like(y)
    if (f / "tracking.csv").exists() and (f / "tracking_modes.csv").exists():
        # a resumed run appends; a step recorded twice keeps its last record
        tracking = pd.read_csv(f / "tracking.csv", comment="#").drop_duplicates("step", keep="last")
        modes = pd.read_csv(f / "tracking_modes.csv", comment="#").drop_duplicates(["step", "mode"], keep="last")
    elif not codes.empty:
        tracking, modes = compute_tracking(network, model, codes, x, w, states)
    else:
        tracking, modes = pd.DataFrame(), pd.DataFrame()
    return SessionData(f, header, states, network, model, model_name, x, w, codes, tracking, modes, task,
                       read_status(f))


def session_model(folder: Path, header: dict[str, Any], network: Network) -> tuple[ConductanceModel, str]:
    """The rig's model for this session: its calibration table if found, else the nominal part."""
    from labnet.core.parts import PartSpec
    from labnet.experiments.calibration.table import CalibrationTable

    if (folder / "calibration.csv").exists():  # the table the run used (copied by labnet.experiments.tracking)
        return CalibrationTable.from_csv(folder / "calibration.csv", network.n_edges), "calibration table"
    try:
        from labnet.config.schema import read_toml

        cal = read_toml(folder / "protocol.toml").get("calibration", {}).get("table")
        if cal:
            for base in (folder, Path.cwd()):
                p = Path(cal) if Path(cal).is_absolute() else base / cal
                if p.exists():
                    return CalibrationTable.from_csv(p, network.n_edges), f"calibration table {p.name}"
    except Exception:  # noqa: BLE001 - fall back to the nominal model
        pass
    part = PartSpec(**header["rig"]["part"])
    return PartModel(part, network.n_edges), f"nominal {part.name}"


def compute_tracking(network: Network, model: ConductanceModel, codes: pd.DataFrame, inputs_v: np.ndarray,
                     weights: np.ndarray, states: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Model quantities at every evaluation step (and the last step) from recorded codes."""
    evs = set(states.loc[states["phase"] == "eval", "step"]) if "phase" in states else set()
    steps = sorted((evs & set(codes.index)) | {int(codes.index.max())})
    rows, mrows = [], []
    for s in steps:
        k = model.conductance(codes.loc[s].to_numpy(dtype=np.int64))
        tm = task_modes(network, k, inputs_v, weights)
        rows.append({"step": s, "lam_min": tm.lam[0], "share_soft": tm.share_soft, "abs_share_soft": tm.abs_share_soft,
                     "f0": tm.f[0], "a0": tm.a[0], "deff": tm.deff, "gbar": tm.gbar, "response_v": tm.response})
        mrows += [{"step": s, "mode": n, "lam": tm.lam[n], "f": tm.f[n], "a": tm.a[n], "c": tm.c[n]}
                  for n in range(tm.lam.size)]
    return pd.DataFrame(rows), pd.DataFrame(mrows)


__all__ = ["KINDS", "SessionData", "compute_tracking", "folder_kind", "load_session_data", "session_model"]
