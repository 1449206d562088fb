"""The calibration procedure: sweep, fit, table (see :mod:`labnet.experiments.calibration`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labnet.bench.rig import Rig
from labnet.core.conductance import PartModel
from labnet.core.errors import LimitError
from labnet.core.network import Network
from labnet.experiments.calibration.design import (
    choose_groups,
    default_codes,
    estimate_noise,
    measure_patterns,
    scaled_pattern,
    source_patterns,
    sweep_design,
)
from labnet.experiments.calibration.fit import ConductanceFit, PartFit, fit_part, solve_conductances, unload
from labnet.experiments.calibration.table import CalibrationTable
from labnet.experiments.settings import CalibrationSettings
from labnet.session.folder import versions


@dataclass
class CalibrationResult:
    """What :func:`calibrate` measured and fitted."""

    table: CalibrationTable
    fits: list[PartFit]
    points: ConductanceFit  # least-squares conductance of every (edge, code) measured
    design: np.ndarray  # (V, E) code vectors measured
    scale: str
    bench_s: float
    n_states: int
    notes: list[str] = field(default_factory=list)


def calibrate(rig: Rig, settings: CalibrationSettings, *, log: Any = None, noise_v: float | None = None,
              seed: int = 0) -> CalibrationResult:
    """Run the calibration on an open rig; leaves it in the safe state with its codes restored.

    ``noise_v`` is the 1σ noise of one meter reading (V); by default estimated from repeated
    scans of the first pattern. ``log(row)`` receives every measured pattern; ``seed`` seeds
    the choice of edge groups.
    """
    net, part, lim = rig.network, rig.part, rig.limits
    sweep = np.array(settings.codes or default_codes(lim.code_min, lim.code_max), dtype=np.int64)
    base = int(sweep[len(sweep) // 2])
    codes0 = rig.codes
    t0 = rig.clock.now()
    notes: list[str] = []
    scale = settings.scale
    if scale == "source_current" and rig.read_source_currents(list(net.source_channels)[:1]) is None:
        scale = "nominal"
        notes.append("sources cannot measure current: scale fixed by the nominal part model (geometric mean)")
    unit = source_patterns(net, settings.pairs)
    nominal = PartModel(part, net.n_edges)
    groups = choose_groups(net, nominal, sweep, base, unit, np.random.default_rng([seed, 5]))
    design = sweep_design(net.n_edges, sweep, base, groups)
    measured = []
    n_states = 0
    est_noise = noise_v
    try:
        for s, codes in enumerate(design):
            rig.write_codes(codes)
            pats = [scaled_pattern(rig, p, settings.current_fraction) for p in unit]
            if est_noise is None:
                est_noise = estimate_noise(rig, pats[0], settings.settle_s)
                n_states += 8
            data = measure_patterns(rig, pats, scans=settings.scans, settle_s=settings.settle_s, log=log, step=s)
            n_states += len(pats) * settings.scans
            measured.append((codes, data))
    finally:
        rig.safe_state()
        try:
            rig.write_codes(codes0)
        except LimitError:
            pass
    fit = solve_conductances(net, measured, noise_v=est_noise / np.sqrt(settings.scans), scale=scale, k_nominal=nominal)
    if settings.meter_input_ohm > 0:
        measured = [(codes, unload(net, fit.at(codes), data, settings.meter_input_ohm)) for codes, data in measured]
        fit = solve_conductances(net, measured, noise_v=est_noise / np.sqrt(settings.scans), scale=scale,
                                 k_nominal=nominal)
    if fit.rank_deficit:
        notes.append(f"{fit.rank_deficit} direction(s) of the conductances are not determined by the data")
    keys = np.array(fit.keys)
    fits = []
    for j in range(net.n_edges):
        sel = keys[:, 0] == j
        fits.append(fit_part(keys[sel, 1], fit.k[sel], fit.sigma[sel], part.max_code, settings.correction))
    all_codes = np.arange(part.positions)
    table_k = np.empty((net.n_edges, part.positions))
    table_sigma = np.empty_like(table_k)
    for j, f in enumerate(fits):
        r, sr = f.resistance(all_codes, part.max_code)
        r = np.maximum(r, 1e-3)
        table_k[j] = 1.0 / r
        table_sigma[j] = sr / r**2
    bench = rig.clock.now() - t0
    meta = {
        "labnet_calibration": 1,
        "rig": rig.name,
        "part": part.name,
        "scale": scale,
        "sweep_codes": sweep.tolist(),
        "base_code": base,
        "groups": groups,
        "noise_v": est_noise,
        "chi2_dof": fit.chi2_dof,
        "bench_s": bench,
        "fits": [{"edge": j, "r_ab_ohm": f.r_ab_ohm, "r_w_ohm": f.r_w_ohm, "inl_ohm": f.inl_ohm,
                  "corrected": f.corrected, "chi2": f.chi2, "dof": f.dof} for j, f in enumerate(fits)],
        "notes": notes,
        "versions": versions(),
    }
    table = CalibrationTable(table_k, table_sigma, meta)
    return CalibrationResult(table, fits, fit, design, scale, bench, n_states, notes)


def calibration_columns(network: Network) -> list[str]:
    """Columns of the calibration session CSV (one row per measured pattern)."""
    src = [n for n in network.nodes if n in network.source_channels]
    return (["bench_s", "step", "pattern"] + [f"set_{n}" for n in src] + [f"v_{n}" for n in network.nodes]
            + [f"i_{n}" for n in src] + [f"code_e{j}" for j in range(network.n_edges)])
