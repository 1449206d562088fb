"""``labnet report`` on calibration and probe sessions.

* Calibration (``labnet calibrate``): ``calibration_rd.png`` — every edge's resistance
  R(D) = 1/k vs code from the table (lines) and the least-squares points measured in situ
  (markers, 1σ bars), and below it the residuals (measured − table)/table in percent; the page
  tabulates the per-edge part-model fit (``calibration_fit.csv``).
* Probe (``labnet probe``): ``probe_spectrum.png`` — the eigenvalues of the free-node response
  covariance (V²), measured from ``session.csv`` and modelled for the same ensemble at the
  session's codes, and their cumulative share; the page lists ``probe.csv``'s statistics.

A session that stopped before its result files were written gets a partial page (what
``session.csv`` holds, and ``status.json`` when present).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labnet.app.report_data import session_model
from labnet.app.report_page import Page, edge_colors, plt, save_figure, scaled_legend
from labnet.core.analysis import empirical_covariance, participation_ratio, probe_covariance_model
from labnet.core.network import Network
from labnet.session.folder import read_header, read_session, read_status


def _rows(folder: Path) -> pd.DataFrame:
    try:
        return read_session(folder / "session.csv")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _status_line(page: Page, folder: Path, rows: int) -> None:
    st = read_status(folder)
    state = f"{st.get('status')} ({st.get('reason')})" if st else "no status.json"
    page.p(f"Session `{folder.name}`: {rows} rows in session.csv; run status: {state}.")


def calibration_page(folder: Path) -> Page:
    """Figures and page of a calibration session folder."""
    header = read_header(folder / "session.csv")
    rows = _rows(folder)
    rig = header.get("rig", {}).get("name", "?") if isinstance(header.get("rig"), dict) else "?"
    page = Page(f"labnet report — calibration of {rig}")
    _status_line(page, folder, len(rows))
    table_csv, points_csv = folder / "calibration.csv", folder / "calibration_points.csv"
    if not (table_csv.is_file() and points_csv.is_file()):
        page.p("**Partial report**: the calibration did not finish (no calibration.csv / calibration_points.csv); "
               "nothing to fit. Re-run `labnet calibrate`.")
        return page
    from labnet.experiments.calibration.table import CalibrationTable

    network = Network.from_dict(header["network"], file=str(folder / "session.csv"), key="network")
    table = CalibrationTable.from_csv(table_csv, network.n_edges)
    pts = pd.read_csv(points_csv)
    fig_calibration(table, pts, folder / "calibration_rd.png")
    rel = (pts["conductance_siemens"] - table.k[pts["edge"], pts["code"]]) / table.k[pts["edge"], pts["code"]]
    page.p(f"{network.n_edges} edges, {len(pts)} measured edge-code points; median 1σ "
           f"{np.median(pts['sigma_siemens'] / pts['conductance_siemens']) * 100:.3f} % of k; rms residual "
           f"to the table {np.sqrt(np.mean(rel**2)) * 100:.3f} %.")
    if (folder / "calibration_fit.csv").is_file():
        fit = pd.read_csv(folder / "calibration_fit.csv")
        page.table(["edge", "R_AB (Ω)", "R_W (Ω)", "INL (Ω)", "χ²/dof", "INL corrected"],
                   [[str(int(r.edge)), f"{r.r_ab_ohm:.1f} ± {r.sigma_r_ab_ohm:.1f}", f"{r.r_w_ohm:.2f} ± {r.sigma_r_w_ohm:.2f}",
                     f"{r.inl_ohm:.2f}", f"{r.chi2 / max(int(r.dof), 1):.3g}", "yes" if int(r.corrected) else "no"]
                    for r in fit.itertuples()])
    page.fig("calibration_rd.png", "Resistance vs code R(D) with residuals")
    return page


def fig_calibration(table: Any, pts: pd.DataFrame, path: Path) -> None:
    """R(D) per edge (table line, measured points with 1σ bars) over the residuals in percent."""
    p = plt()
    n = table.n_edges
    ncol = max(1, -(-n // 16))
    fig, (ax, res) = p.subplots(2, 1, figsize=(9 + 0.9 * ncol, 6.4), sharex=True, height_ratios=[3, 1.3])
    colors = edge_colors(n)
    codes = np.arange(table.k.shape[1])
    for j in range(n):
        ax.plot(codes, 1e-3 / table.k[j], "-", color=colors[j], lw=1, label=f"e{j}")
        q = pts[pts["edge"] == j]
        if q.empty:
            continue
        k, s = q["conductance_siemens"].to_numpy(), q["sigma_siemens"].to_numpy()
        ax.errorbar(q["code"], 1e-3 / k, yerr=1e-3 * s / k**2, fmt="o", ms=3, color=colors[j], capsize=2)
        kt = table.k[j, q["code"].to_numpy(dtype=np.int64)]
        res.errorbar(q["code"] + (j - n / 2) * 0.15, (k - kt) / kt * 100, yerr=s / kt * 100, fmt="o", ms=3,
                     color=colors[j], capsize=2)
    ax.set(ylabel="R = 1/k (kΩ)", title="Calibration: table (lines) and measured points (1σ)")
    res.axhline(0, color="k", lw=0.8)
    res.set(xlabel="digipot code D (tap)", ylabel="(k − table)/table (%)")
    scaled_legend(ax, n)
    for a in (ax, res):
        a.grid(True, alpha=0.3)
    save_figure(fig, path)


def probe_page(folder: Path) -> Page:
    """Figures and page of a probe session folder."""
    header = read_header(folder / "session.csv")
    rows = _rows(folder)
    page = Page(f"labnet report — probe {header.get('protocol', {}).get('name', folder.name)}")
    _status_line(page, folder, len(rows))
    network = Network.from_dict(header["network"], file=str(folder / "session.csv"), key="network")
    settings = header.get("probe", {})
    drive = list(settings.get("drive") or network.inputs)
    free = [n for n in network.nodes if n not in drive and n != network.ground and f"v_{n}" in rows.columns]
    x = rows[[f"v_{n}" for n in free]].to_numpy(dtype=float) if len(rows) else np.zeros((0, len(free)))
    x = x[np.all(np.isfinite(x), axis=1)]
    if (folder / "probe.csv").is_file():
        st = pd.read_csv(folder / "probe.csv", comment="#").iloc[-1]
        page.table(["quantity", "measured", "model"],
                   [[f"D_eff(probe) (drives {', '.join(drive)})",
                     f"{st['deff']:.4f} ± {st['deff_sd']:.4f}", f"{st['model_deff']:.4f}"],
                    ["response gain", f"{st['gain']:.4f} ± {st['gain_sd']:.4f}", f"{st['model_gain']:.4f}"],
                    ["patterns (refused)", f"{int(st['samples'])} ({int(st['refused'])})", "—"]])
    else:
        page.p("**Partial report**: the probe did not finish (no probe.csv); the spectrum below is of the "
               f"{len(x)} patterns recorded.")
    if len(x) < 3 or not free:
        page.p(f"Too few patterns recorded ({len(x)}) for a covariance spectrum.")
        return page
    codes_cols = [f"code_e{j}" for j in range(network.n_edges)]
    model = None
    if set(codes_cols) <= set(rows.columns):
        m, name = _probe_model(folder, header, network)
        k = m.conductance(rows[codes_cols].iloc[-1].to_numpy(dtype=np.int64))
        var = (float(settings.get("v_max", 0.5)) - float(settings.get("v_min", 0.0))) ** 2 / 12.0
        cov, free_idx = probe_covariance_model(network, k, drive, var)
        keep = np.isin(free_idx, network.indices(free))
        model = (np.linalg.eigvalsh(cov[np.ix_(keep, keep)])[::-1], name)
    fig_probe_spectrum(np.linalg.eigvalsh(empirical_covariance(x))[::-1], model, free, folder / "probe_spectrum.png")
    page.p(f"Responses of the {len(free)} free nodes ({', '.join(free)}) to {len(x)} random patterns at "
           f"{', '.join(drive)}; D_eff(probe) = (tr C)²/tr C² = {participation_ratio(empirical_covariance(x)):.4f}.")
    page.fig("probe_spectrum.png", "Probe response spectrum")
    return page


def _probe_model(folder: Path, header: dict[str, Any], network: Network) -> tuple[Any, str]:
    cal = header.get("calibration")
    if isinstance(cal, str) and Path(cal).is_file():
        from labnet.experiments.calibration.table import CalibrationTable

        try:
            return CalibrationTable.from_csv(cal, network.n_edges), f"calibration table {Path(cal).name}"
        except Exception:  # noqa: BLE001 - the nominal part model instead
            pass
    return session_model(folder, header, network)


def fig_probe_spectrum(measured: np.ndarray, model: tuple[np.ndarray, str] | None, free: list[str], path: Path) -> None:
    """Eigenvalues (descending, V²) of the response covariance and their cumulative share."""
    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(10, 4))
    n = np.arange(1, measured.size + 1)
    axes[0].semilogy(n, np.maximum(measured, 1e-300), "o-", label="measured (meter noise floors the last)")
    axes[1].plot(n, np.cumsum(measured) / measured.sum(), "o-", label="measured")
    if model is not None:
        ev, name = model
        nz = ev > 1e-12 * ev.max()  # the rest are zero in exact arithmetic (rank ≤ number of drive nodes)
        axes[0].semilogy(n[nz], ev[nz], "s--", label=f"model ({name}); {int((~nz).sum())} zero")
        axes[1].plot(n, np.cumsum(ev) / ev.sum(), "s--", label=f"model ({name})")
    axes[0].set(xlabel="component (descending variance)", ylabel="eigenvalue of C (V²)",
                title=f"Response spectrum, {len(free)} free nodes")
    axes[1].set(xlabel="components kept", ylabel="share of the response variance", title="Cumulative share",
                ylim=(0, 1.02))
    for ax in axes:
        ax.set_xticks(n)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


__all__ = ["calibration_page", "fig_calibration", "fig_probe_spectrum", "probe_page"]
