"""``labnet probe``: probe a built rig and write the probe session folder."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from labnet.app import build
from labnet.app.oneshot import OneShot, session_folder
from labnet.bench.limits import Limits
from labnet.bench.rig import Rig
from labnet.config.probe_file import ProbeProtocol
from labnet.core.errors import ConfigError
from labnet.core.network import Network
from labnet.experiments.calibration.table import CalibrationTable
from labnet.experiments.probe import SUMMARY_COLUMNS, CsvLog, ProbeResult, model_probe, probe_columns, run_probe
from labnet.experiments.settings import ProbeSettings
from labnet.session.folder import SessionWriter, read_header, read_session, versions


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
    folder = session_folder(out, proto.name)  # before anything is opened: a bad --out is bad input
    rig = build.build_rig(proto.rig, sim_seed=proto.seed, network=proto.network)
    if proto.calibration is not None:
        rig.model = CalibrationTable.from_csv(proto.calibration, proto.network.n_edges, proto.rig.part.positions)
    drive = list(settings.drive or proto.network.inputs)
    header = {"labnet_session": 1, "protocol": {"name": proto.name, "kind": "probe", "seed": proto.seed},
              "probe": asdict(settings), "network": proto.network.to_dict(), "versions": versions(),
              "calibration": str(proto.calibration) if proto.calibration else None,
              "codes_from": str(Path(codes_from).resolve()) if codes_from is not None else None}
    files = {"rig.toml": proto.rig.text}
    if proto.text:
        files["protocol.toml"] = proto.text
    with OneShot(rig, folder, "probe"):
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
                   "model_deff": model[0], "model_gain": model[1], "refused": res.refused,
                   "bench_s": res.bench_s})
        log.close()
    return res, folder, rig, model


def codes_from_session(folder: str | Path, network: Network, limits: Limits) -> np.ndarray:
    """The last codes recorded in a session's CSV (its final state), shape (E,), checked before
    anything is opened: :class:`ConfigError` naming ``--codes-from`` and the folder unless it is
    a session of the same network (nodes and edges) whose final codes are within ``limits``."""
    f = Path(folder)
    csv = f / "session.csv"
    if not f.is_dir():
        raise ConfigError(str(f), "--codes-from", "session folder not found")
    if not csv.is_file():
        raise ConfigError(str(f), "--codes-from", "no session.csv in the folder (not a labnet session)")
    header = read_header(csv)
    net = header.get("network")
    have = (net.get("nodes"), net.get("edges")) if isinstance(net, dict) else (None, None)
    want = (list(network.nodes), [list(e) for e in network.edges])
    if have != want:
        n = f"{len(have[0])} nodes, {len(have[1])} edges" if have[0] is not None and have[1] is not None else "none"
        raise ConfigError(str(csv), "--codes-from", f"the session's network ({n}) is not the probe rig's "
                          f"({network.n_nodes} nodes, {network.n_edges} edges, same names and order)")
    try:
        df = read_session(f)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ConfigError(str(csv), "--codes-from", f"unreadable session CSV ({str(exc).splitlines()[0]})") from None
    cols = [f"code_e{j}" for j in range(network.n_edges)]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ConfigError(str(csv), "--codes-from", f"no column {missing[0]!r} (not a session of this network)")
    if not len(df):
        raise ConfigError(str(csv), "--codes-from", "the session has no rows: no final codes to probe")
    last = pd.to_numeric(df[cols].iloc[-1], errors="coerce").to_numpy(dtype=float)
    lo, hi = limits.code_min, limits.code_max
    bad = np.flatnonzero(~np.isfinite(last) | (last != np.round(last)) | (last < lo) | (last > hi))
    if bad.size:
        j = int(bad[0])
        raise ConfigError(str(csv), "--codes-from", f"final code of edge {j} is {last[j]!r}, expected an integer "
                          f"{lo}..{hi} (the rig's code limits)")
    return last.astype(np.int64)


def _drive(res: ProbeResult, rig: Rig) -> list[str]:
    """The probe's drive nodes: every node but ground that is not among the measured free nodes."""
    net = rig.network
    return [n for n in net.nodes if n != net.ground and n not in res.free_nodes]


def probe_summary(res: ProbeResult, folder: Path, rig: Rig, model: tuple[float, float]) -> str:
    lines = [
        f"labnet probe: {rig.name} — {len(res.applied)} random patterns, {len(res.free_nodes)} free nodes",
        f"  D_eff(probe)   {res.deff:.4f} ± {res.deff_sd:.4f} (measured, bootstrap 1σ; free-node responses to "
        f"random voltages at {', '.join(_drive(res, rig))})",
        f"  D_eff(probe model) {model[0]:.4f} (same ensemble, rig model conductances)",
        f"  response gain  {res.gain:.4f} ± {res.gain_sd:.4f} (model {model[1]:.4f})",
        f"  refused        {res.refused} patterns over the limits in the worst case (redrawn)",
        f"  planned        {rig.planned_transitions} changes applied one safe step at a time "
        "(reordered, dropped first or ramped)",
        f"  bench time     {res.bench_s:.1f} s" + (" (modelled)" if rig.simulated else ""),
        f"  session        {folder}",
    ]
    return "\n".join(lines)


__all__ = ["codes_from_session", "probe_summary", "run_probe_protocol"]
