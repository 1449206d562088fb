"""``labnet probe``: probe a built rig and write the probe session folder."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from labnet.app.build import build_rig
from labnet.bench.rig import Rig
from labnet.config.probe_file import ProbeProtocol
from labnet.experiments.calibration.table import CalibrationTable
from labnet.experiments.probe import SUMMARY_COLUMNS, CsvLog, ProbeResult, model_probe, probe_columns, run_probe
from labnet.experiments.settings import ProbeSettings
from labnet.session.folder import SessionWriter, discard_if_empty, new_session_dir, versions


def run_probe_protocol(proto: ProbeProtocol, out: str | Path = "sessions", *, codes: np.ndarray | None = None,
                       samples: int | None = None, codes_from: str | Path | None = None,
                       ) -> tuple[ProbeResult, Path, Rig, tuple[float, float]]:
    """Probe on the protocol's rig: session.csv (one row per pattern) and probe.csv (the statistics).

    ``codes`` sets the digipots first (e.g. a trained session's final codes); otherwise the
    rig file's initial code; ``codes_from`` (the session folder they came from, ``--codes-from``)
    is recorded in the CSV header. The model D_eff uses the rig's model (the calibration table when
    the protocol names one).
    """
    settings = proto.settings if samples is None else ProbeSettings(**{**asdict(proto.settings), "samples": samples})
    rig = build_rig(proto.rig, sim_seed=proto.seed, network=proto.network)
    if proto.calibration is not None:
        rig.model = CalibrationTable.from_csv(proto.calibration, proto.network.n_edges)
    folder = new_session_dir(out, proto.name)
    drive = list(settings.drive or proto.network.inputs)
    header = {"labnet_session": 1, "protocol": {"name": proto.name, "kind": "probe", "seed": proto.seed},
              "probe": asdict(settings), "network": proto.network.to_dict(), "versions": versions(),
              "calibration": str(proto.calibration) if proto.calibration else None,
              "codes_from": str(Path(codes_from).resolve()) if codes_from is not None else None}
    files = {"rig.toml": proto.rig.text}
    if proto.text:
        files["protocol.toml"] = proto.text
    with discard_if_empty(folder), rig:  # a rig that fails to open leaves no empty folder
        header["rig"] = rig.describe()
        writer = SessionWriter(folder, header, probe_columns(proto.network, drive), files=files)
        try:
            if codes is not None:
                rig.write_codes(np.asarray(codes, dtype=np.int64))
            elif proto.rig.initial_code is not None:
                rig.write_codes(np.full(rig.network.n_edges, proto.rig.initial_code))
            res = run_probe(rig, settings, np.random.default_rng([proto.seed, 23]), log=writer.write)
        finally:
            writer.close()
        model = model_probe(rig.network, rig.conductances(), settings, res.free_nodes)
    log = CsvLog(folder / "probe.csv", {"labnet_probe": 1, "free_nodes": res.free_nodes, "drive": drive},
                 SUMMARY_COLUMNS)
    log.write({"step": 0, "samples": settings.samples, "deff": res.deff, "deff_sd": res.deff_sd,
               "deff_lo": res.deff_ci[0], "deff_hi": res.deff_ci[1], "gain": res.gain, "gain_sd": res.gain_sd,
               "model_deff": model[0], "model_gain": model[1], "refused": res.refused, "bench_s": res.bench_s})
    log.close()
    return res, folder, rig, model


def codes_from_session(folder: str | Path) -> np.ndarray:
    """The last codes recorded in a session's CSV (its final state), shape (E,)."""
    df = pd.read_csv(Path(folder) / "session.csv", comment="#")
    cols = sorted((c for c in df.columns if c.startswith("code_e")), key=lambda c: int(c[6:]))
    return df[cols].iloc[-1].to_numpy(dtype=np.int64)


def probe_summary(res: ProbeResult, folder: Path, rig: Rig, model: tuple[float, float]) -> str:
    lines = [
        f"labnet probe: {rig.name} — {len(res.applied)} random patterns, {len(res.free_nodes)} free nodes",
        f"  measured D_eff {res.deff:.4f} ± {res.deff_sd:.4f} (bootstrap 1σ)",
        f"  model D_eff    {model[0]:.4f} (rig model conductances)",
        f"  response gain  {res.gain:.4f} ± {res.gain_sd:.4f} (model {model[1]:.4f})",
        f"  refused        {res.refused} patterns over the limits (redrawn)",
        f"  bench time     {res.bench_s:.1f} s" + (" (modelled)" if rig.simulated else ""),
        f"  session        {folder}",
    ]
    return "\n".join(lines)


__all__ = ["codes_from_session", "probe_summary", "run_probe_protocol"]
