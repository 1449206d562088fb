"""The training report's model and trajectory figures (PNG): error vs step, tap and
conductance trajectories, the network before/after, the free-state Hessian spectrum, the
task-mode alignment, D_eff and ḡ vs step, probe-measured vs model D_eff.

Every function takes a :class:`~labnet.app.report_data.SessionData` with at least one recorded
step and the PNG path to write (atomically, :func:`labnet.app.report_page.save_figure`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labnet.app.report_data import SessionData
from labnet.app.report_page import edge_colors, save_figure, scaled_legend, step_axis
from labnet.app.report_page import plt as _plt
from labnet.core.network import Network


def _save(fig: Any, path: Path, *, tight: bool = True) -> None:
    save_figure(fig, path, tight=tight)


def layout(network: Network, seed: int = 0, iterations: int = 300) -> np.ndarray:
    """Node positions (N, 2) by a seeded Fruchterman–Reingold force layout in the unit square."""
    n = network.n_nodes
    rng = np.random.default_rng(seed)
    pos = rng.random((n, 2))
    src, dst = network.edge_ends
    kk = 1.0 / np.sqrt(n)
    t = 0.1
    for _ in range(iterations):
        d = pos[:, None, :] - pos[None, :, :]
        dist = np.maximum(np.linalg.norm(d, axis=2), 1e-3)
        disp = np.sum(d / dist[..., None] * (kk**2 / dist)[..., None], axis=1)
        de = pos[src] - pos[dst]
        le = np.maximum(np.linalg.norm(de, axis=1), 1e-3)
        fa = de * (le / kk)[:, None]
        np.add.at(disp, src, -fa)
        np.add.at(disp, dst, fa)
        ln = np.maximum(np.linalg.norm(disp, axis=1), 1e-9)
        pos += disp / ln[:, None] * np.minimum(ln, t)[:, None]
        t = max(t * 0.985, 0.002)
    pos -= pos.min(axis=0)
    return pos / np.maximum(pos.max(axis=0), 1e-9)


def fig_error(d: SessionData, path: Path) -> None:
    plt = _plt()
    ev = d.evals
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for split, style in (("train", "o-"), ("test", "s--")):
        if split in ev:
            ax.semilogy(ev.index, ev[split], style, ms=3, label=split)
    step_axis(ax, float(d.codes.index.max()))
    ax.set_ylabel("mean squared output error (V²)")
    ax.set_title("Error vs step")
    ax.grid(True, which="both", alpha=0.3)
    if len(ev):
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no evaluation recorded", transform=ax.transAxes, ha="center", color="gray")
    _save(fig, path)


def fig_trajectories(d: SessionData, path: Path) -> None:
    """Codes and model conductances of every edge vs step; one colour per edge, keyed by a legend
    whose columns and font scale with the number of edges (readable at 24 edges and beyond)."""
    plt = _plt()
    steps = d.codes.index.to_numpy()
    c = d.codes.to_numpy(dtype=np.int64)
    k = np.array([d.model.conductance(row) for row in c]) * 1e3
    n = c.shape[1]
    ncol = max(1, -(-n // 16))
    fig, axes = plt.subplots(1, 2, figsize=(11 + 0.9 * ncol, 4))
    colors = edge_colors(n)
    for j in range(n):
        axes[0].step(steps, c[:, j], where="post", color=colors[j], lw=1)
        axes[1].step(steps, k[:, j], where="post", color=colors[j], lw=1, label=f"e{j}")
    axes[0].set(ylabel="digipot code (tap)", title="Tap trajectories")
    axes[1].set(ylabel="conductance (mS)", title=f"Conductance trajectories ({d.model_name})")
    axes[1].set_yscale("log")
    scaled_legend(axes[1], n)
    for ax in axes:
        step_axis(ax, float(steps.max()))
        ax.grid(True, alpha=0.3)
    _save(fig, path)


def fig_network(d: SessionData, path: Path) -> None:
    plt = _plt()
    from matplotlib.collections import LineCollection
    from matplotlib.colors import LogNorm

    net = d.network
    pos = layout(net)
    src, dst = net.edge_ends
    first, last = d.codes.index.min(), d.codes.index.max()
    ks = {s: d.model.conductance(d.codes.loc[s].to_numpy(dtype=np.int64)) for s in (first, last)}
    lo = min(float(v.min()) for v in ks.values())
    hi = max(float(v.max()) for v in ks.values())
    norm = LogNorm(vmin=lo, vmax=hi if hi > lo else lo * 1.01)
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, (s, title) in zip(axes, ((first, "before"), (last, "after"))):
        k = ks[s]
        segs = np.stack([pos[src], pos[dst]], axis=1)
        widths = 0.5 + 5.5 * (np.log(k) - np.log(lo)) / max(np.log(hi) - np.log(lo), 1e-9)
        ax.add_collection(LineCollection(list(segs), colors=cmap(norm(k)), linewidths=widths))
        role = np.array(["other"] * net.n_nodes, dtype=object)
        role[net.indices(net.inputs)] = "input"
        role[net.indices(net.outputs)] = "output"
        role[net.index[net.ground]] = "ground"
        for r, colr, mk in (("other", "lightgray", "o"), ("input", "tab:red", "s"), ("output", "tab:blue", "D"),
                            ("ground", "black", "v")):
            sel = role == r
            if np.any(sel):
                ax.scatter(pos[sel, 0], pos[sel, 1], c=colr, marker=mk, s=60 if net.n_nodes < 60 else 12,
                           zorder=3, edgecolors="k", linewidths=0.5, label=r)
        if net.n_nodes <= 30:
            for i, name in enumerate(net.nodes):
                ax.annotate(name, pos[i], xytext=(4, 4), textcoords="offset points", fontsize=7)
        ax.set_title(f"{title} training (step {s})")
        ax.set_xlim(-0.08, 1.08)
        ax.set_ylim(-0.08, 1.08)
        ax.set_aspect("equal")
        ax.axis("off")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=axes, shrink=0.8, label="edge conductance (S)")
    _save(fig, path, tight=False)


def _before_after(d: SessionData) -> tuple[pd.DataFrame, pd.DataFrame, int, int]:
    m = d.modes
    s0, s1 = int(m["step"].min()), int(m["step"].max())
    return m[m["step"] == s0].sort_values("mode"), m[m["step"] == s1].sort_values("mode"), s0, s1


def fig_spectrum(d: SessionData, path: Path) -> None:
    plt = _plt()
    a, b, s0, s1 = _before_after(d)
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.semilogy(a["mode"], a["lam"], "o-", label=f"before (step {s0})")
    ax.semilogy(b["mode"], b["lam"], "s-", label=f"after (step {s1})")
    ax.set(xlabel="mode index n (ascending λ)", ylabel="eigenvalue λ_n of H_F (S)",
           title="Spectrum of H_F (free nodes, voltage-driven) before vs after")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    _save(fig, path)


def fig_alignment(d: SessionData, path: Path) -> None:
    plt = _plt()
    a, b, s0, s1 = _before_after(d)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    wdt = 0.4
    for df, off, lab in ((a, -wdt / 2, f"before (step {s0})"), (b, wdt / 2, f"after (step {s1})")):
        share = df["c"] / df["c"].sum()
        axes[0].bar(df["mode"] + off, share, width=wdt, label=lab)
        axes[1].semilogy(df["mode"], np.abs(df["f"]), "o-" if off < 0 else "s-", label=f"|f_n| {lab}")
        axes[1].semilogy(df["mode"], np.abs(df["a"]), "o:" if off < 0 else "s:", label=f"|a_n| {lab}")
    axes[0].axhline(0, color="k", lw=0.5)
    axes[0].set(xlabel="mode index n", ylabel="c_n / Σ c (share of the task response)",
                title="Alignment: each mode's share of the response")
    axes[1].set(xlabel="mode index n", ylabel="|projection|", title="Raw overlaps: input force f_n (A), output a_n")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    _save(fig, path)


def fig_deff_gbar(d: SessionData, path: Path) -> None:
    plt = _plt()
    t = d.tracking
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot(t["step"], t["deff"], "o-", ms=3)
    axes[0].set(ylabel="D_eff(H_F) = (Σλ⁻²)²/Σλ⁻⁴", title="D_eff(H_F) vs step (free nodes, model)")
    axes[1].plot(t["step"], t["gbar"], "s-", ms=3, color="tab:orange")
    axes[1].set(ylabel="ḡ(H_F) = sqrt(Σλ⁻²) (Ω)", title="Susceptibility ḡ(H_F) vs step")
    for ax in axes:
        step_axis(ax, float(t["step"].max()))
        ax.grid(True, alpha=0.3)
    _save(fig, path)


def _probe_drive(d: SessionData, folder: Path) -> list[str]:
    """The tracking probe's drive nodes (tracking.csv's header ``analysis.probe_drive``; default the inputs)."""
    from labnet.session.folder import read_header

    try:
        drive = read_header(folder / "tracking.csv").get("analysis", {}).get("probe_drive")
    except (OSError, ValueError):
        drive = None
    return list(drive or d.network.inputs)


def fig_deff_measured(d: SessionData, path: Path) -> None:
    plt = _plt()
    t = d.tracking
    fig, ax = plt.subplots(figsize=(6.4, 4))
    has = "probe_deff" in t and t["probe_deff"].notna().any()
    if has:
        p = t[t["probe_deff"].notna()]
        ax.errorbar(p["step"], p["probe_deff"], yerr=p["probe_deff_sd"], fmt="o", capsize=3,
                    label="measured (probe, bootstrap 1σ)")
        ax.plot(p["step"], p["probe_model_deff"], "s--", label=f"model, same ensemble ({d.model_name})")
        drive = ", ".join(_probe_drive(d, path.parent))
        ax.set_title(f"D_eff(probe): random voltages at {drive}, measured vs model")
    else:
        from labnet.experiments.probe import model_probe
        from labnet.experiments.settings import ProbeSettings

        settings = ProbeSettings(drive=tuple(d.network.inputs))
        md = [model_probe(d.network, d.model.conductance(d.codes.loc[s].to_numpy(dtype=np.int64)), settings)[0]
              for s in t["step"]]
        ax.plot(t["step"], md, "s--", label=f"model ({d.model_name}), random inputs 0–0.5 V")
        ax.text(0.5, 0.5, "no probe measurements in this session\n(add [analysis] probe_every)",
                transform=ax.transAxes, ha="center", va="center", color="gray")
        ax.set_title(f"D_eff(probe model): random voltages at {', '.join(d.network.inputs)}")
    step_axis(ax, float(t["step"].max()))
    ax.set(ylabel="D_eff(probe) = (tr C)²/tr C² of free-node responses")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


#: file name -> (figure function, caption), in page order
TRAIN_FIGURES = {
    "error.png": (fig_error, "Error vs step"),
    "trajectories.png": (fig_trajectories, "Tap and conductance trajectories"),
    "network.png": (fig_network, "Network before and after"),
    "spectrum.png": (fig_spectrum, "Eigenvalue spectrum"),
    "alignment.png": (fig_alignment, "Alignment vs mode index"),
    "deff_gbar.png": (fig_deff_gbar, "D_eff and ḡ vs step"),
    "deff_measured.png": (fig_deff_measured, "Measured vs model D_eff"),
}

__all__ = ["TRAIN_FIGURES", "layout"]
