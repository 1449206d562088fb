"""The capacity figure of a sweep over ``n_tasks`` (issue 15, item 5): ``capacity.png``.

Three panels against n_T per network size (one row per ``nodes``; median and interquartile range
over the networks of each n_T):
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

#: the report table's header, in the order of :func:`capacity_rows`
COLUMNS = ("n_T", "networks", "reached", "final/initial error", *RATIOS.values(), "D_eff(H_F) after, of F modes")


def capacity_table(df: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Per n_T: networks, fraction reached, median relative error, median ratios, median D_eff(H_F)
    after training and F (free modes of H_F: nodes − ground − inputs, for the absolute scale); and n_T*."""
    d = df.assign(rel_err=df["err_after"] / df["err_before"])
    g = d.groupby("n_tasks", sort=True)
    table = pd.DataFrame({"networks": g.size(), "reached": g["reached"].mean(), "rel_err": g["rel_err"].median(),
                          **{c: g[c].median() for c in RATIOS}, "deff_after": g["deff_after"].median(),
                          "modes": (d["nodes"] - 1 - d["n_inputs"]).groupby(d["n_tasks"]).median()})
    return table, capacity_index(d["n_tasks"].to_numpy(), d["reached"].to_numpy(dtype=bool))


def fig_capacity(df: pd.DataFrame, path: Path) -> list[tuple[int, pd.DataFrame, float]]:
    """Draw capacity.png from a sweep's results (needs ``n_tasks``, ``nodes`` and the METRICS columns):
    one row of three panels per network size; returns (nodes, per-n_T table, n_T*) per size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(v) for v in df["nodes"].unique())
    fig, axes = plt.subplots(len(sizes), 3, figsize=(14, 3.9 * len(sizes)), squeeze=False)
    out = []
    for row, nodes in zip(axes, sizes):
        part = df[df["nodes"] == nodes]
        table, star = capacity_table(part)
        _size_row(row, part, table, star, f"{nodes} nodes, F = {int(table['modes'].iloc[0])}")
        out.append((nodes, table, star))
    fig.tight_layout()
    save_figure(fig, path, tight=False)
    plt.close(fig)
    return out


def _size_row(axes: Any, df: pd.DataFrame, table: pd.DataFrame, star: float, what: str) -> None:
    """The three panels of one network size: reached and error; D_eff and λ̄; λ_min and ḡ (ratios)."""
    d = df.assign(rel_err=df["err_after"] / df["err_before"])
    n = table.index.to_numpy()
    axes[0].plot(n, table["reached"], "o-", label="fraction reaching the target")
    ax2 = axes[0].twinx()
    _band(ax2, d, "rel_err", "final/initial error", "tab:red")
    ax2.set_yscale("log")
    ax2.set_ylabel("final / initial error (median, IQR)", color="tab:red")
    axes[0].set(ylabel="fraction reached", ylim=(-0.05, 1.05), title=f"Training on n_T targets at once ({what})")
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


def _band(ax: Any, d: pd.DataFrame, col: str, label: str, color: str | None) -> None:
    q = d.groupby("n_tasks", sort=True)[col].quantile([0.25, 0.5, 0.75]).unstack()
    line, = ax.plot(q.index, q[0.5], "o-", label=label, color=color)
    ax.fill_between(q.index, q[0.25], q[0.75], alpha=0.2, color=line.get_color())


def capacity_rows(table: pd.DataFrame) -> list[list[str]]:
    """The per-n_T table as report rows (header: :data:`COLUMNS`)."""
    return [[f"{int(n)}", f"{int(r.networks)}", f"{r.reached:.2f}", f"{r.rel_err:.3g}",
             *(f"{r[c]:.3g}" for c in RATIOS), f"{r.deff_after:.3g} of {int(r.modes)}"] for n, r in table.iterrows()]


__all__ = ["COLUMNS", "RATIOS", "capacity_rows", "capacity_table", "fig_capacity"]
