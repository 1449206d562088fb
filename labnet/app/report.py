"""``labnet report SESSION``: figures (PNG) and a short Markdown page for a training session.

Reads the session folder written by ``labnet run``: ``session.csv`` (every measured state),
the copied ``protocol.toml``/``rig.toml``, and — when the protocol had an ``[analysis]``
table — ``tracking.csv``/``tracking_modes.csv``. Without tracking files the model quantities
are computed here from the recorded codes (at every evaluation step) through the rig's model
(the protocol's calibration table when it can be found, the nominal part model otherwise).

Figures written into the session folder:

* ``error.png`` — train and test error vs step;
* ``trajectories.png`` — every edge's code and model conductance vs step;
* ``network.png`` — the network drawn with edge width and colour by conductance, before/after;
* ``spectrum.png`` — eigenvalues of the free-state Hessian before vs after (log scale);
* ``alignment.png`` — each mode's share of the task response, and |f_n|, |a_n|, vs mode index;
* ``deff_gbar.png`` — model D_eff and ḡ vs step;
* ``deff_measured.png`` — probe-measured vs model D_eff (model only, marked, without probes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labnet.app.report_input import read_training_csv
from labnet.core.analysis import task_modes
from labnet.core.conductance import ConductanceModel, PartModel
from labnet.core.network import Network

FIGURES = ("error.png", "trajectories.png", "network.png", "spectrum.png", "alignment.png", "deff_gbar.png",
           "deff_measured.png")


@dataclass
class SessionData:
    """Everything the report needs from a session folder."""

    folder: Path
    header: dict[str, Any]
    states: pd.DataFrame
    network: Network
    model: ConductanceModel
    model_name: str
    inputs_v: np.ndarray
    weights: np.ndarray
    codes: pd.DataFrame  # index: step; columns: code_e<j>
    tracking: pd.DataFrame
    modes: pd.DataFrame


def load_session_data(folder: str | Path) -> SessionData:
    """Read a session folder; compute tracking from the codes when no tracking.csv exists."""
    f = Path(folder)
    csv = f / "session.csv"
    header, states = read_training_csv(f)  # ConfigError (exit 2) unless a readable training session
    network = Network.from_dict(header["network"], file=str(csv), key="network")
    model, model_name = _model(f, header, network)
    code_cols = [f"code_e{j}" for j in range(network.n_edges)]
    codes = states.groupby("step")[code_cols].last()
    task = header.get("task", {})
    proto = None
    try:
        from labnet.config.protocol import load_protocol

        proto = load_protocol(f / "protocol.toml", rig=f / "rig.toml")
    except Exception:  # noqa: BLE001 - the report still works from the CSV alone
        proto = None
    if proto is not None:
        t = proto.build_task()
        x, y = t.train.inputs.mean(axis=0), t.train.targets.mean(axis=0)
    else:
        x = np.asarray(task.get("inputs_v", np.ones(len(network.inputs))), float)
        y = np.asarray(task.get("targets_v", np.ones(len(network.outputs))), float)
    w = y / np.linalg.norm(y) if np.linalg.norm(y) > 0 else np.ones_like(y)
    if (f / "tracking.csv").exists() and (f / "tracking_modes.csv").exists():
        # a resumed run appends; a step recorded twice keeps its last record
        tracking = pd.read_csv(f / "tracking.csv", comment="#").drop_duplicates("step", keep="last")
        modes = pd.read_csv(f / "tracking_modes.csv", comment="#").drop_duplicates(["step", "mode"], keep="last")
    else:
        tracking, modes = compute_tracking(network, model, codes, x, w, states)
    return SessionData(f, header, states, network, model, model_name, x, w, codes, tracking, modes)


def _model(folder: Path, header: dict[str, Any], network: Network) -> tuple[ConductanceModel, str]:
    """The rig's model for this session: its calibration table if found, else the nominal part."""
    from labnet.core.parts import PartSpec
    from labnet.experiments.calibration.table import CalibrationTable

    if (folder / "calibration.csv").exists():  # the table the run used (copied by labnet.experiments.tracking)
        return CalibrationTable.from_csv(folder / "calibration.csv", network.n_edges), "calibration table"
    try:
        from labnet.config.schema import read_toml

        cal = read_toml(folder / "protocol.toml").get("calibration", {}).get("table")
        if cal:
            for base in (folder, Path.cwd()):
                p = Path(cal) if Path(cal).is_absolute() else base / cal
                if p.exists():
                    return CalibrationTable.from_csv(p, network.n_edges), f"calibration table {p.name}"
    except Exception:  # noqa: BLE001 - fall back to the nominal model
        pass
    part = PartSpec(**header["rig"]["part"])
    return PartModel(part, network.n_edges), f"nominal {part.name}"


def compute_tracking(network: Network, model: ConductanceModel, codes: pd.DataFrame, inputs_v: np.ndarray,
                     weights: np.ndarray, states: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Model quantities at every evaluation step (and the last step) from recorded codes."""
    steps = sorted(set(states.loc[states["phase"] == "eval", "step"]) | {int(codes.index.max())})
    rows, mrows = [], []
    for s in steps:
        k = model.conductance(codes.loc[s].to_numpy(dtype=np.int64))
        tm = task_modes(network, k, inputs_v, weights)
        rows.append({"step": s, "lam_min": tm.lam[0], "share_soft": tm.share_soft, "abs_share_soft": tm.abs_share_soft,
                     "f0": tm.f[0], "a0": tm.a[0], "deff": tm.deff, "gbar": tm.gbar, "response_v": tm.response})
        mrows += [{"step": s, "mode": n, "lam": tm.lam[n], "f": tm.f[n], "a": tm.a[n], "c": tm.c[n]}
                  for n in range(tm.lam.size)]
    return pd.DataFrame(rows), pd.DataFrame(mrows)


# ---------------------------------------------------------------------------------- drawing
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


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt



def _save(fig: Any, path: Path, *, tight: bool = True) -> None:
    """Lay out (unless the figure places its own legend and colour bar), write a PNG, close."""
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)

def fig_error(d: SessionData, path: Path) -> None:
    plt = _plt()
    ev = d.states[d.states["phase"] == "eval"].groupby(["step", "split"])["error"].mean().unstack()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for split, style in (("train", "o-"), ("test", "s--")):
        if split in ev:
            ax.semilogy(ev.index, ev[split], style, ms=3, label=split)
    ax.set_xlabel("training step")
    ax.set_ylabel("mean squared output error (V²)")
    ax.set_title("Error vs step")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    _save(fig, path)


def fig_trajectories(d: SessionData, path: Path) -> None:
    plt = _plt()
    steps = d.codes.index.to_numpy()
    c = d.codes.to_numpy(dtype=np.int64)
    k = np.array([d.model.conductance(row) for row in c]) * 1e3
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    cmap = plt.get_cmap("tab20")
    for j in range(c.shape[1]):
        col = cmap(j % 20)
        axes[0].step(steps, c[:, j], where="post", color=col, lw=1)
        axes[1].step(steps, k[:, j], where="post", color=col, lw=1, label=f"e{j}" if c.shape[1] <= 20 else None)
    axes[0].set(xlabel="training step", ylabel="digipot code (tap)", title="Tap trajectories")
    axes[1].set(xlabel="training step", ylabel="conductance (mS)", title=f"Conductance trajectories ({d.model_name})")
    axes[1].set_yscale("log")
    if c.shape[1] <= 20:
        axes[1].legend(fontsize=6, ncol=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    for ax in axes:
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
    ax.set(xlabel="mode index n (ascending λ)", ylabel="eigenvalue λ_n of L_ff (S)",
           title="Hessian spectrum before vs after training")
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
    axes[0].set(xlabel="training step", ylabel="D_eff = (Σλ⁻²)²/Σλ⁻⁴", title="Model D_eff vs step")
    axes[1].plot(t["step"], t["gbar"], "s-", ms=3, color="tab:orange")
    axes[1].set(xlabel="training step", ylabel="ḡ = sqrt(Σλ⁻²) (Ω)", title="Susceptibility ḡ vs step")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    _save(fig, path)


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
        ax.set_title("Probe D_eff: measured vs model")
    else:
        from labnet.experiments.probe import model_probe
        from labnet.experiments.settings import ProbeSettings

        settings = ProbeSettings(drive=tuple(d.network.inputs))
        md = [model_probe(d.network, d.model.conductance(d.codes.loc[s].to_numpy(dtype=np.int64)), settings)[0]
              for s in t["step"]]
        ax.plot(t["step"], md, "s--", label=f"model ({d.model_name}), random inputs 0–0.5 V")
        ax.text(0.5, 0.5, "no probe measurements in this session\n(add [analysis] probe_every)",
                transform=ax.transAxes, ha="center", va="center", color="gray")
        ax.set_title("Probe D_eff (model only)")
    ax.set(xlabel="training step", ylabel="participation ratio of response covariance")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def write_report(folder: str | Path) -> Path:
    """Write every figure and ``report.md`` into the session folder; return the page's path."""
    d = load_session_data(folder)
    f = d.folder
    for name, fn in zip(FIGURES, (fig_error, fig_trajectories, fig_network, fig_spectrum, fig_alignment,
                                  fig_deff_gbar, fig_deff_measured)):
        fn(d, f / name)
    page = f / "report.md"
    page.write_text(_markdown(d), encoding="utf-8")
    return page


def _markdown(d: SessionData) -> str:
    ev = d.states[d.states["phase"] == "eval"].groupby(["step", "split"])["error"].mean().unstack()
    t = d.tracking.sort_values("step")
    a, b = t.iloc[0], t.iloc[-1]
    proto = d.header.get("protocol", {})
    lines = [
        f"# labnet report — {proto.get('name', d.folder.name)}",
        "",
        f"Session `{d.folder.name}`; rig `{d.header.get('rig', {}).get('name', '?')}`; "
        f"{d.network.n_nodes} nodes, {d.network.n_edges} edges; conductances from the {d.model_name} model.",
        "",
        "| quantity | before | after |",
        "|---|---|---|",
    ]
    if "train" in ev:
        lines.append(f"| train error (V²) | {ev['train'].iloc[0]:.4g} | {ev['train'].iloc[-1]:.4g} |")
    if "test" in ev:
        lines.append(f"| test error (V²) | {ev['test'].iloc[0]:.4g} | {ev['test'].iloc[-1]:.4g} |")
    lines += [
        f"| λ_min (S) | {a['lam_min']:.4g} | {b['lam_min']:.4g} |",
        f"| softest mode's share c_0/Σc | {a['share_soft']:.3f} | {b['share_soft']:.3f} |",
        f"| same without cancellations, abs(c_0)/Σabs(c) | {a['abs_share_soft']:.3f} | {b['abs_share_soft']:.3f} |",
        f"| model D_eff | {a['deff']:.3f} | {b['deff']:.3f} |",
        f"| ḡ (Ω) | {a['gbar']:.4g} | {b['gbar']:.4g} |",
        f"| raw overlaps abs(f_0) (A), abs(a_0) | {abs(a['f0']):.3g}, {abs(a['a0']):.3g} | {abs(b['f0']):.3g}, "
        f"{abs(b['a0']):.3g} |",
    ]
    if "probe_deff" in t and t["probe_deff"].notna().any():
        p = t[t["probe_deff"].notna()]
        lines.append(f"| probe D_eff measured (model) | {p['probe_deff'].iloc[0]:.3f} ± {p['probe_deff_sd'].iloc[0]:.3f} "
                     f"({p['probe_model_deff'].iloc[0]:.3f}) | {p['probe_deff'].iloc[-1]:.3f} ± "
                     f"{p['probe_deff_sd'].iloc[-1]:.3f} ({p['probe_model_deff'].iloc[-1]:.3f}) |")
    lines += ["", "D_eff here is the participation ratio (Σλ⁻²)²/Σλ⁻⁴; the talk's formula is one third of it "
              "(see labnet.core.analysis).", ""]
    titles = {"error.png": "Error vs step", "trajectories.png": "Tap and conductance trajectories",
              "network.png": "Network before and after", "spectrum.png": "Eigenvalue spectrum",
              "alignment.png": "Alignment vs mode index", "deff_gbar.png": "D_eff and ḡ vs step",
              "deff_measured.png": "Measured vs model D_eff"}
    for name in FIGURES:
        lines += [f"## {titles[name]}", "", f"![{titles[name]}]({name})", ""]
    return "\n".join(lines)


__all__ = ["FIGURES", "compute_tracking", "layout", "load_session_data", "write_report"]
