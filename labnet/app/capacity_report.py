"""The capacity figure of a sweep over ``n_tasks`` (issue 15, item 5): ``capacity.png``.

Four panels against n_T (median and interquartile range over the networks of each n_T):
the fraction of networks that reach the target and the final error relative to the untrained
one; the after/before ratios of D_eff(H_F) and of the mean eigenvalue λ̄ = tr H_F / F (the
network's stiffness); the ratios of λ_min(H_F) and ḡ(H_F). The capacity n_T*
(:func:`labnet.insilico.capacity.capacity_index`: the first n_T where at most half the networks
reach the target) is marked in every panel and returned with the per-n_T medians.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from labnet.app.report_page import save_figure
from labnet.insilico.capacity import capacity_index

#: ratio column -> label (all after/before, computed over H_F's free nodes)
RATIOS = {"deff_ratio": "D_eff(H_F) after/before", "lam_mean_ratio": "λ̄(H_F) = tr H_F/F after/before",
          "lam_ratio": "λ_min(H_F) after/before", "gbar_ratio": "ḡ(H_F) after/before"}


def capacity_table(df: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Per n_T: networks, fraction reached, median relative error and median ratios; and n_T*."""
    d = df.assign(rel_err=df["err_after"] / df["err_before"])
    g = d.groupby("n_tasks", sort=True)
    table = pd.DataFrame({"networks": g.size(), "reached": g["reached"].mean(), "rel_err": g["rel_err"].median(),
                          **{c: g[c].median() for c in RATIOS}})
    return table, capacity_index(d["n_tasks"].to_numpy(), d["reached"].to_numpy(dtype=bool))


def fig_capacity(df: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, float]:
    """Draw capacity.png from a sweep's results (needs ``n_tasks`` and the METRICS columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table, star = capacity_table(df)
    d = df.assign(rel_err=df["err_after"] / df["err_before"])
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
    n = table.index.to_numpy()
    axes[0].plot(n, table["reached"], "o-", label="fraction reaching the target")
    ax2 = axes[0].twinx()
    _band(ax2, d, "rel_err", "final/initial error", "tab:red")
    ax2.set_yscale("log")
    ax2.set_ylabel("final / initial error (median, IQR)", color="tab:red")
    axes[0].set(ylabel="fraction reached", ylim=(-0.05, 1.05), title="Training on n_T targets at once")
    for ax, cols in ((axes[1], ("deff_ratio", "lam_mean_ratio")), (axes[2], ("lam_ratio", "gbar_ratio"))):
        for c in cols:
            _band(ax, d, c, RATIOS[c], None)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set(ylabel="after / before (median, IQR)")
        ax.legend(fontsize=7)
    axes[1].set_title("Dimension and stiffness")
    axes[2].set_title("Softest mode and susceptibility")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("n_T (targets trained together)")
        ax.grid(alpha=0.3)
        if star == star:
            ax.axvline(star, color="gray", ls="--", lw=1)
    if star == star:
        axes[0].text(star, 0.5, f" n_T* = {star:g}", color="gray", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, tight=False)
    plt.close(fig)
    return table, star


def _band(ax: Any, d: pd.DataFrame, col: str, label: str, color: str | None) -> None:
    q = d.groupby("n_tasks", sort=True)[col].quantile([0.25, 0.5, 0.75]).unstack()
    line, = ax.plot(q.index, q[0.5], "o-", label=label, color=color)
    ax.fill_between(q.index, q[0.25], q[0.75], alpha=0.2, color=line.get_color())


def capacity_rows(table: pd.DataFrame) -> list[list[str]]:
    """The per-n_T table as report rows."""
    return [[f"{int(n)}", f"{int(r.networks)}", f"{r.reached:.2f}", f"{r.rel_err:.3g}",
             *(f"{r[c]:.3g}" for c in RATIOS)] for n, r in table.iterrows()]


__all__ = ["RATIOS", "capacity_rows", "capacity_table", "fig_capacity"]
