"""Random probing: the network's response to an ensemble of random input-voltage patterns.

"Can we discover what a network was trained for from its response to random inputs?" A probe
applies M seeded random voltage patterns at the ``drive`` nodes (default: the network's
inputs; uniform in [v_min, v_max], each pattern checked against the rig's limits), measures
every node, and from the responses x_m of the nodes no source holds (shape (M, F)) computes

* the empirical covariance C (F, F) and its participation ratio D_eff = (tr C)²/tr C²
  (the measured D_eff; see :mod:`labnet.core.analysis` for the model and the talk's factor 1/3);
* the response gain sqrt(tr C / tr Σ_V): rms response per rms applied voltage;
* bootstrap error bars (resampling the M patterns).

The ``[probe]`` table (:class:`~labnet.experiments.settings.ProbeSettings`) is read by
:mod:`labnet.config.probe_file`; ``labnet probe`` (a session folder) is :mod:`labnet.app.probe_run`.
The same code runs on the bench and on the simulator (it only uses :class:`~labnet.bench.rig.Rig`).
The model counterpart for the same ensemble is
:func:`labnet.core.analysis.probe_covariance_model` (C = T Σ_V Tᵀ, Σ_V = (v_max − v_min)²/12 · I).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labnet.bench.rig import Rig
from labnet.core.analysis import empirical_covariance, participation_ratio, probe_covariance_model
from labnet.core.errors import LimitError
from labnet.core.network import Network
from labnet.experiments.settings import ProbeSettings
from labnet.session.folder import header_json


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
    boots = np.array([stats(np.asarray(rng.integers(0, m, m))) for _ in range(n_boot)]) if n_boot else np.full((1, 2), np.nan)
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
    applied: list[np.ndarray] = []
    resp: list[np.ndarray] = []
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


# ---------------------------------------------------------------------------------- session columns
def probe_columns(network: Network, drive: Sequence[str]) -> list[str]:
    return (["bench_s", "step", "sample"] + [f"set_{n}" for n in drive] + [f"v_{n}" for n in network.nodes]
            + [f"code_e{j}" for j in range(network.n_edges)])


SUMMARY_COLUMNS = ["step", "samples", "deff", "deff_sd", "deff_lo", "deff_hi", "gain", "gain_sd",
                   "model_deff", "model_gain", "refused", "bench_s"]


__all__ = [
    "SUMMARY_COLUMNS",
    "CsvLog",
    "ProbeResult",
    "ProbeSettings",
    "model_probe",
    "probe_columns",
    "probe_stats",
    "run_probe",
]
