"""``labnet report DIR`` for a sweep folder: the ensemble's figures and ``report.md``.

Figures (PNG, in DIR):

* ``effects_vs_demand.png``: the fraction of networks showing each effect (λ_min falls, softest
  share rises, D_eff falls, ḡ rises, all four) against the demand, one panel per group of the
  other varied parameters (e.g. voltage vs force inputs);
* ``ratio_histograms.png``: after/before ratios of λ_min, D_eff, ḡ and the change of the
  softest share, over every point;
* ``error_vs_<param>.png``: final task error against each varied numeric parameter (median
  and interquartile range over the points that share it).

``report.md`` and the self-contained ``report.html`` tabulate the fractions per group and demand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from labnet.app.report_page import Page, save_figure
from labnet.insilico.effects import EFFECTS

_LABELS = {"lam_falls": "λ_min(H) falls", "share_rises": "softest share |c0|/Σ|c| rises",
           "deff_falls": "D_eff(H) falls", "gbar_rises": "ḡ(H) rises", "all_four": "all four"}


def is_sweep_folder(folder: str | Path) -> bool:
    """True when ``folder`` holds a sweep's ``results.parquet`` and ``manifest.json``."""
    f = Path(folder)
    return (f / "results.parquet").is_file() and (f / "manifest.json").is_file()


def _groups(df: Any, varied: list[str]) -> tuple[list[str], Any]:
    keys = [v for v in varied if v not in ("seed", "demand")]
    return keys, (df.groupby(keys, sort=False) if keys else [((), df)])


def _label(keys: list[str], vals: Any) -> str:
    vals = vals if isinstance(vals, tuple) else (vals,)
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in zip(keys, vals)) or "all points"


def fractions(df: Any, varied: list[str]) -> list[tuple[str, float, int, dict[str, float]]]:
    """(group label, demand, networks, {effect: fraction}) per group of the non-seed parameters and demand."""
    keys, groups = _groups(df, varied)
    out = []
    for vals, g in groups:
        for d, gd in g.groupby("demand", sort=True):
            out.append((_label(keys, vals), float(d), len(gd), {e: float(gd[e].mean()) for e in (*EFFECTS, "all_four")}))
    return out


def write_sweep_report(folder: str | Path) -> Path:
    """Draw the sweep figures and write ``report.md`` in ``folder``; returns the page's path."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    folder = Path(folder)
    df = pd.read_parquet(folder / "results.parquet")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    varied = [v for v in manifest.get("varied", []) if v in df.columns]
    keys, groups = _groups(df, varied)
    groups = list(groups)
    figs = []

    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.8), squeeze=False, sharey=True)
    for ax, (vals, g) in zip(axes[0], groups):
        frac = g.groupby("demand", sort=True)[[*EFFECTS, "all_four"]].mean()
        for e in (*EFFECTS, "all_four"):
            ax.plot(frac.index, frac[e], "o-", lw=2.5 if e == "all_four" else 1.2, label=_LABELS[e])
        ax.set_title(_label(keys, vals), fontsize=9)
        ax.set_xlabel("demand d")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction of networks")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, folder / "effects_vs_demand.png", tight=False)
    figs.append("effects_vs_demand.png")

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    hists = [("lam_ratio", "λ_min(H) after/before", True), ("deff_ratio", "D_eff(H) after/before", True),
             ("gbar_ratio", "ḡ(H) after/before", True), (None, "|c0|/Σ|c| after − before", False)]
    for ax, (col, title, log) in zip(axes, hists):
        for vals, g in groups:
            x = (g["abs_share_after"] - g["abs_share_before"]).to_numpy() if col is None else g[col].to_numpy()
            x = x[np.isfinite(x) & ((x > 0) if log else True)]
            if x.size:
                bins = np.geomspace(x.min(), x.max(), 30) if log and x.min() < x.max() else 30
                ax.hist(x, bins=bins, alpha=0.55, label=_label(keys, vals))
        if log:
            ax.set_xscale("log")
            ax.axvline(1.0, color="k", lw=0.8)
        else:
            ax.axvline(0.0, color="k", lw=0.8)
        ax.set_title(title, fontsize=9)
    axes[0].set_ylabel("points")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, folder / "ratio_histograms.png", tight=False)
    figs.append("ratio_histograms.png")

    for param in [v for v in varied if v != "seed" and pd.api.types.is_numeric_dtype(df[v])]:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for vals, g in groups if param not in keys else [((), df)]:
            q = g.groupby(param, sort=True)["err_after"].quantile([0.25, 0.5, 0.75]).unstack()
            ax.plot(q.index, q[0.5], "o-", label=_label(keys, vals) if param not in keys else "all points")
            ax.fill_between(q.index, q[0.25], q[0.75], alpha=0.2)
        ax.set_yscale("symlog", linthresh=1e-12)
        ax.set_xlabel(param)
        ax.set_ylabel("final task error (median, IQR)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        name = f"error_vs_{param}.png"
        save_figure(fig, folder / name, tight=False)
        figs.append(name)

    page = Page(f"sweep {manifest.get('name')}: {len(df)} points")
    page.p(f"Varied: {', '.join(varied) or 'nothing'}. Fraction of networks showing each effect:")
    page.table(["group", "demand", "networks", *(_LABELS[e] for e in (*EFFECTS, "all_four"))],
               [[label, f"{d:g}", str(n), *(f"{fr[e]:.2f}" for e in (*EFFECTS, "all_four"))]
                for label, d, n, fr in fractions(df, varied)])
    page.p(f"Median |Δk|/|k0| {df['dk_rel'].median():.3g}; target reached in {df['reached'].mean():.0%} of points.")
    page.p("λ_min, D_eff and ḡ are model quantities of the network's Hessian, computed over its free nodes: "
           "with voltage inputs H_F (ground and the inputs held; labnet.core.quantities), with force (current) "
           "inputs H_N, the Laplacian over all non-ground nodes (only ground held). D_eff = (Σλ⁻²)²/Σλ⁻⁴, "
           "ḡ = sqrt(Σλ⁻²); the softest share is abs(c_0)/Σabs(c_n).")
    if "n_tasks" in varied and "lam_mean_ratio" in df:
        _capacity(page, df, folder, figs)
    for f in figs:
        page.fig(f, f.removesuffix(".png").replace("_", " "))
    return page.write(folder)


def _capacity(page: Page, df: Any, folder: Path, figs: list[str]) -> None:
    """capacity.png and the per-n_T table (one per network size) of a sweep over n_tasks."""
    from labnet.app.capacity_report import COLUMNS, capacity_rows, fig_capacity

    sizes = fig_capacity(df, folder / "capacity.png")
    figs.append("capacity.png")
    for nodes, table, star in sizes:
        page.p(f"Capacity, {nodes}-node networks: n_T* = {star:g} (the first n_T at which at most half the "
               "networks reach the target); λ̄ = tr H_F / F is the mean eigenvalue of H_F (the network's stiffness).")
        page.table(list(COLUMNS), capacity_rows(table))


__all__ = ["fractions", "is_sweep_folder", "write_sweep_report"]
