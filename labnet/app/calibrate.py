"""``labnet calibrate``: build the rig, calibrate, write the calibration session folder."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from labnet.app import build
from labnet.app.oneshot import OneShot, session_folder
from labnet.bench.rig import Rig
from labnet.config.calibrate_file import CalibrateProtocol
from labnet.config.tables import BINDING_KEY, table_binding
from labnet.experiments.calibration import CalibrationResult, calibrate, calibration_columns
from labnet.session.folder import SessionWriter, atomic_write_text, versions


def run_calibration(proto: CalibrateProtocol, out: str | Path = "sessions", *,
                    session_dir: Path | None = None) -> tuple[CalibrationResult, Path, Rig]:
    """Build the rig, calibrate, write the session folder (session.csv, calibration.csv,
    calibration_fit.csv, calibration_points.csv, status.json).

    The folder is made before any instrument is opened (a bad ``out``: :class:`ConfigError`).
    A calibration cannot be resumed (:mod:`labnet.app.oneshot`): a stopped or failed one is
    recorded in ``status.json`` (``resumable: false``) with the rows measured so far.
    """
    folder = session_folder(out, proto.name, session_dir)
    rig = build.build_rig(proto.rig, sim_seed=proto.seed)
    header = {"labnet_session": 1, "protocol": {"name": proto.name, "kind": "calibrate", "seed": proto.seed},
              "calibration": asdict(proto.settings), "network": rig.network.to_dict(), "versions": versions()}
    files = {"rig.toml": proto.rig.text}
    if proto.text:
        files["protocol.toml"] = proto.text
    with OneShot(rig, folder, "calibrate"):
        described: dict[str, Any] = rig.describe()
        header["rig"] = described
        writer = SessionWriter(folder, header, calibration_columns(rig.network), files=files)
        try:
            if proto.rig.initial_code is not None:
                rig.write_codes(np.full(rig.network.n_edges, proto.rig.initial_code))
            res = calibrate(rig, proto.settings, log=writer.write)
        finally:
            writer.close()
        res.table.meta[BINDING_KEY] = table_binding(proto.rig, described["instruments"].get("digipots"), proto.seed)
        res.table.to_csv(folder / "calibration.csv")
        rows = ["edge,r_ab_ohm,r_w_ohm,inl_ohm,sigma_r_ab_ohm,sigma_r_w_ohm,sigma_inl_ohm,corrected,chi2,dof"]
        for j, f in enumerate(res.fits):
            sd = np.sqrt(np.diag(f.cov))
            vals = [f.r_ab_ohm, f.r_w_ohm, f.inl_ohm, *sd]
            rows.append(f"{j}," + ",".join(repr(float(v)) for v in vals)
                        + f",{int(f.corrected)},{float(f.chi2)!r},{f.dof}")
        atomic_write_text(folder / "calibration_fit.csv", "\n".join(rows) + "\n")
        pts = ["edge,code,conductance_siemens,sigma_siemens"]
        for (j, c), kk, ss in zip(res.points.keys, res.points.k, res.points.sigma):
            pts.append(f"{j},{c},{float(kk)!r},{float(ss)!r}")
        atomic_write_text(folder / "calibration_points.csv", "\n".join(pts) + "\n")
    return res, folder, rig


def calibration_summary(res: CalibrationResult, folder: Path, rig: Rig) -> str:
    """The end-of-calibration summary (modelled bench time on a simulator)."""
    rel = res.points.sigma / res.points.k
    n_corr = sum(f.corrected for f in res.fits)
    lines = [
        f"labnet calibrate: {rig.name} — {rig.network.n_edges} edges, {len(res.design)} code vectors, "
        f"{res.n_states} meter scans",
        f"  edge groups    {res.table.meta.get('groups')}",
        f"  scale          {res.scale}",
        f"  median 1σ      {np.median(rel) * 100:.3f} % of k (least squares, {len(rel)} edge-code points)",
        f"  LS χ²/dof      {res.points.chi2_dof:.3g}",
        f"  INL correction {n_corr} of {len(res.fits)} edges",
        f"  bench time     {res.bench_s:.1f} s" + (" (modelled)" if rig.simulated else ""),
        f"  table          {folder / 'calibration.csv'}",
    ]
    lines += [f"  note           {n}" for n in res.notes]
    return "\n".join(lines)


__all__ = ["calibration_summary", "run_calibration"]
