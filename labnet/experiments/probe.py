"""Random probing: the network's response to an ensemble of random input-voltage patterns.

"Can we discover what a network was trained for from its response to random inputs?" A probe
applies M seeded random voltage patterns at the ``drive`` nodes (default: the network's
inputs; uniform in [v_min, v_max], each pattern checked against the rig's limits), measures
every node, and from the responses x_m of the nodes no source holds (shape (M, F)) computes

* the empirical covariance C (F, F) and its participation ratio D_eff = (tr C)²/tr C²
  (the measured D_eff; see :mod:`labnet.core.analysis` for the model and the talk's factor 1/3);
* the response gain sqrt(tr C / tr Σ_V): rms response per rms applied voltage;
* bootstrap error bars (resampling the M patterns).

The same code runs on the bench and on the simulator (it only uses :class:`~labnet.bench.rig.Rig`).
The model counterpart for the same ensemble is
:func:`labnet.core.analysis.probe_covariance_model` (C = T Σ_V Tᵀ, Σ_V = (v_max − v_min)²/12 · I).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labnet.bench.rig import Rig
from labnet.config.schema import Table
from labnet.core.analysis import empirical_covariance, participation_ratio, probe_covariance_model
from labnet.core.errors import LimitError
from labnet.core.network import Network
from labnet.session.folder import header_json


@dataclass(frozen=True)
class ProbeSettings:
    """The ``[probe]`` table.

    Attributes
    ----------
    samples : int
        Number M of random patterns.
    drive : tuple of str
        Nodes driven with random voltages (default: the network's inputs).
    v_min, v_max : float
        Each driven voltage is uniform in [v_min, v_max] (V); unipolar by default so bench
        supplies can apply it.
    settle_s : float
        Wait after applying a pattern (s).
    bootstrap : int
        Bootstrap resamples for the error bars.
    """

    samples: int = 200
    drive: tuple[str, ...] = ()
    v_min: float = 0.0
    v_max: float = 0.5
    settle_s: float = 0.01
    bootstrap: int = 500


def parse_probe_settings(t: Table, network: Network, max_v: float) -> ProbeSettings:
    """Validate a ``[probe]`` table against the network and the rig's voltage limit."""
    drive = tuple(t.strs("drive", list(network.inputs)))
    for n in drive:
        if n not in network.source_channels:
            raise t.error("drive", f"node {n!r} has no source channel")
    if len(set(drive)) != len(drive) or not drive:
        raise t.error("drive", f"expected distinct source nodes, got {list(drive)}")
    v_min = t.float("v_min", 0.0, lo=-max_v, hi=max_v)
    v_max = t.float("v_max", min(0.5, max_v), lo=-max_v, hi=max_v)
    if v_max <= v_min:
        raise t.error("v_max", f"expected v_max > v_min ({v_min}), got {v_max}")
    s = ProbeSettings(
        samples=t.int("samples", 200, lo=3, hi=1_000_000),
        drive=drive,
        v_min=v_min,
        v_max=v_max,
        settle_s=t.float("settle_s", 0.01, lo=0.0, hi=60.0),
        bootstrap=t.int("bootstrap", 500, lo=0, hi=100_000),
    )
    t.finish()
    return s


@dataclass
class ProbeResult:
    """A probe's measurements and statistics.

    Attributes
    ----------
    applied : (M, D) voltages set at the drive nodes (V)
    responses : (M, F) measured voltages of the free nodes (V)
    free_nodes : names of the F free nodes
    deff, deff_sd : measured participation ratio and its bootstrap standard deviation
    deff_ci : (2,) bootstrap 16th–84th percentile interval
    gain, gain_sd : response gain (dimensionless) and its bootstrap standard deviation
    refused : patterns redrawn because the rig's limits refused them
    bench_s : rig time the probe took (s)
    """

    applied: np.ndarray
    responses: np.ndarray
    free_nodes: list[str]
    deff: float
    deff_sd: float
    deff_ci: tuple[float, float]
    gain: float
    gain_sd: float
    refused: int
    bench_s: float


def probe_stats(applied: np.ndarray, responses: np.ndarray, rng: np.random.Generator, n_boot: int) -> dict[str, Any]:
    """D_eff and gain of responses (M, F) to applied voltages (M, D), with bootstrap spreads."""
    def stats(idx: np.ndarray) -> tuple[float, float]:
        c = empirical_covariance(responses[idx])
        cv = empirical_covariance(applied[idx])
        return participation_ratio(c), float(np.sqrt(np.trace(c) / np.trace(cv)))

    m = responses.shape[0]
    d, g = stats(np.arange(m))
    boots = np.array([stats(rng.integers(0, m, m)) for _ in range(n_boot)]) if n_boot else np.full((1, 2), np.nan)
    return {
        "deff": d, "gain": g,
        "deff_sd": float(np.std(boots[:, 0], ddof=1)) if n_boot > 1 else float("nan"),
        "gain_sd": float(np.std(boots[:, 1], ddof=1)) if n_boot > 1 else float("nan"),
        "deff_ci": (float(np.percentile(boots[:, 0], 16)), float(np.percentile(boots[:, 0], 84))) if n_boot else (d, d),
    }


def run_probe(rig: Rig, settings: ProbeSettings, rng: np.random.Generator,
              log: Callable[[dict[str, Any]], None] | None = None, step: int = 0) -> ProbeResult:
    """Apply the random patterns on an open rig and measure; leaves the rig in the safe state.

    ``log(row)`` receives one dict per measured pattern (session CSV columns).
    """
    net = rig.network
    drive = list(settings.drive or net.inputs)
    free_idx = np.array([i for i, n in enumerate(net.nodes) if n not in drive and n != net.ground])
    t0 = rig.clock.now()
    applied, resp = [], []
    refused = 0
    try:
        while len(applied) < settings.samples:
            v = rng.uniform(settings.v_min, settings.v_max, len(drive))
            held = dict(zip(drive, map(float, v)))
            try:
                rig.apply(held)
            except LimitError:
                refused += 1
                if refused > 10 * settings.samples:
                    raise
                continue
            rig.settle(settings.settle_s)
            meas = rig.measure()
            applied.append(v)
            resp.append(meas[free_idx])
            if log is not None:
                row: dict[str, Any] = {"bench_s": rig.clock.now(), "step": step, "sample": len(applied) - 1}
                row.update({f"set_{n}": x for n, x in held.items()})
                row.update({f"v_{n}": float(x) for n, x in zip(net.nodes, meas)})
                row.update({f"code_e{j}": int(c) for j, c in enumerate(rig.codes)})
                log(row)
    finally:
        rig.safe_state()
    a, r = np.array(applied), np.array(resp)
    ok = np.all(np.isfinite(r), axis=0)  # nodes without a meter channel drop out
    s = probe_stats(a, r[:, ok], rng, settings.bootstrap)
    return ProbeResult(a, r[:, ok], [net.nodes[i] for i in free_idx[ok]], s["deff"], s["deff_sd"], s["deff_ci"],
                       s["gain"], s["gain_sd"], refused, rig.clock.now() - t0)


def model_probe(network: Network, conductances: np.ndarray, settings: ProbeSettings,
                nodes: Sequence[str] | None = None) -> tuple[float, float]:
    """Model D_eff and gain of the probe ensemble for conductances (S, shape (E,)).

    ``nodes`` restricts the responses to the measured free nodes (default: all free nodes).
    """
    drive = list(settings.drive or network.inputs)
    var = (settings.v_max - settings.v_min) ** 2 / 12.0
    cov, free_idx = probe_covariance_model(network, conductances, drive, var)
    if nodes is not None:
        keep = np.isin(free_idx, network.indices(nodes))
        cov = cov[np.ix_(keep, keep)]
    return participation_ratio(cov), float(np.sqrt(np.trace(cov) / (var * len(drive))))


# ---------------------------------------------------------------------------------- CSV logs
class CsvLog:
    """A CSV with the session's ``# key: JSON`` header style, appended and flushed row by row."""

    def __init__(self, path: str | Path, header: Mapping[str, Any], columns: Sequence[str], *, append: bool = False) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        if append and self.path.exists():  # a resumed run continues the same file
            self._fh = open(self.path, "a", encoding="utf-8", newline="")
            return
        self._fh = open(self.path, "w", encoding="utf-8", newline="")
        for k, v in header.items():
            self._fh.write(f"# {k}: {header_json(v)}\n")
        self._fh.write(",".join(self.columns) + "\n")
        self._fh.flush()

    def write(self, row: Mapping[str, Any]) -> None:
        self._fh.write(",".join(_cell(row.get(c)) for c in self.columns) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return "" if f != f else repr(f)
    if isinstance(v, (np.integer,)):
        return str(int(v))
    s = str(v)
    return f'"{s}"' if "," in s else s


# ---------------------------------------------------------------------------------- protocol + CLI
@dataclass
class ProbeProtocol:
    """A validated ``kind = "probe"`` protocol (or defaults for a bare rig file)."""

    path: Path | None
    name: str
    seed: int
    rig: Any  # RigSpec
    network: Network
    settings: ProbeSettings
    calibration: Path | None = None
    text: str = ""


def load_probe_protocol(path: str | Path, *, rig: str | Path | None = None) -> ProbeProtocol:
    """Read a probe protocol (``[protocol] kind = "probe"``, ``[probe]``, optional ``[roles]``
    and ``[calibration] table``), or a rig file with default settings."""
    from labnet.config.rigfile import load_rig
    from labnet.config.schema import read_toml

    p = Path(path)
    data = read_toml(p)
    if "protocol" not in data:
        spec = load_rig(p if rig is None else rig)
        return ProbeProtocol(None, "probe", 0, spec, spec.network,
                             parse_probe_settings(Table({}, str(p), "probe"), spec.network, spec.limits.max_source_v))
    from labnet.config.protocol import read_head, read_roles

    f = str(p)
    top = Table(data, f)
    head = read_head(top, p, ["probe"], rig)
    name, seed = head.name, head.seed
    spec = load_rig(head.rig_path)
    network = read_roles(top, spec.network, f)
    settings = parse_probe_settings(top.table("probe", required=False), network, spec.limits.max_source_v)
    cal = None
    if top.has("calibration"):
        ct = top.table("calibration")
        cal = p.parent / ct.str("table")
        ct.finish()
        if not cal.exists():
            raise ct.error("table", f"calibration table {cal} not found")
    top.finish()
    return ProbeProtocol(p, name, seed, spec, network, settings, cal, p.read_text(encoding="utf-8"))


def probe_columns(network: Network, drive: Sequence[str]) -> list[str]:
    return (["bench_s", "step", "sample"] + [f"set_{n}" for n in drive] + [f"v_{n}" for n in network.nodes]
            + [f"code_e{j}" for j in range(network.n_edges)])


SUMMARY_COLUMNS = ["step", "samples", "deff", "deff_sd", "deff_lo", "deff_hi", "gain", "gain_sd",
                   "model_deff", "model_gain", "refused", "bench_s"]


def run_probe_protocol(proto: ProbeProtocol, out: str | Path = "sessions", *, codes: np.ndarray | None = None,
                       samples: int | None = None) -> tuple[ProbeResult, Path, Rig, tuple[float, float]]:
    """Probe on the protocol's rig: session.csv (one row per pattern) and probe.csv (the statistics).

    ``codes`` sets the digipots first (e.g. a trained session's final codes); otherwise the
    rig file's initial code. The model D_eff uses the rig's model (the calibration table when
    the protocol names one).
    """
    from labnet.config.rigfile import build_rig
    from labnet.session.folder import SessionWriter, new_session_dir, versions

    settings = proto.settings if samples is None else ProbeSettings(**{**asdict(proto.settings), "samples": samples})
    rig = build_rig(proto.rig, sim_seed=proto.seed, network=proto.network)
    if proto.calibration is not None:
        from labnet.experiments.calibration import CalibrationTable

        rig.model = CalibrationTable.from_csv(proto.calibration, proto.network.n_edges)
    folder = new_session_dir(out, proto.name)
    drive = list(settings.drive or proto.network.inputs)
    header = {"labnet_session": 1, "protocol": {"name": proto.name, "kind": "probe", "seed": proto.seed},
              "probe": asdict(settings), "network": proto.network.to_dict(), "versions": versions(),
              "calibration": str(proto.calibration) if proto.calibration else None}
    files = {"rig.toml": proto.rig.text}
    if proto.text:
        files["protocol.toml"] = proto.text
    with rig:
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
    import pandas as pd

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


__all__ = [
    "CsvLog",
    "ProbeProtocol",
    "ProbeResult",
    "ProbeSettings",
    "codes_from_session",
    "load_probe_protocol",
    "model_probe",
    "parse_probe_settings",
    "probe_stats",
    "run_probe",
    "run_probe_protocol",
]
