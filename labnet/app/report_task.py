"""The training report's task figures: measured outputs vs targets, code and conductance
histograms before/after, and (classification) the confusion matrix with its accuracy.

Inputs are a :class:`~labnet.app.report_data.SessionData`; the task (targets, labels, class
names) comes from the session's copied protocol (``SessionData.task``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labnet.app.report_data import SessionData
from labnet.app.report_page import edge_colors, plt, save_figure


def eval_outputs(d: SessionData, step: int, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At evaluation ``step``: measured outputs (S, n_out) (V), targets (S, n_out) (V) and the
    sample indices (S,) of ``split`` (``"train"``/``"test"``)."""
    assert d.task is not None
    ev = d.states[(d.states["phase"] == "eval") & (d.states["step"] == step) & (d.states["split"] == split)]
    ev = ev.drop_duplicates("sample", keep="last").sort_values("sample")
    samples = d.task.train if split == "train" else d.task.test
    idx = ev["sample"].to_numpy(dtype=np.int64)
    idx = idx[idx < len(samples)]
    ev = ev[ev["sample"].isin(idx)]
    outs = ev[[f"v_{n}" for n in d.network.outputs]].to_numpy(dtype=float)
    return outs, samples.targets[idx], idx


def eval_steps(d: SessionData) -> list[int]:
    """The evaluation steps recorded, ascending."""
    if "phase" not in d.states:
        return []
    return sorted(int(s) for s in set(d.states.loc[d.states["phase"] == "eval", "step"]))


def fig_outputs_vs_targets(d: SessionData, path: Path) -> None:
    """One panel per split: each output node's measured free-state voltage vs its target, at the
    first (hollow) and last (filled) evaluation; the diagonal is a perfect network."""
    p = plt()
    steps = eval_steps(d)
    first, last = steps[0], steps[-1]
    colors = edge_colors(len(d.network.outputs))
    fig, axes = p.subplots(1, 2, figsize=(10, 4.4), squeeze=False)
    for ax, split in zip(axes[0], ("train", "test")):
        lo, hi = np.inf, -np.inf
        for step, filled in ((first, False), (last, True)):
            outs, targets, _ = eval_outputs(d, step, split)
            for j, node in enumerate(d.network.outputs):
                if not len(outs):
                    continue
                ax.scatter(targets[:, j], outs[:, j], s=18, marker="o", linewidths=1,
                           facecolors=colors[j] if filled else "none", edgecolors=colors[j],
                           label=f"{node}, step {step}")
                lo = min(lo, float(np.nanmin(targets[:, j])), float(np.nanmin(outs[:, j])))
                hi = max(hi, float(np.nanmax(targets[:, j])), float(np.nanmax(outs[:, j])))
        if np.isfinite(lo):
            pad = 0.05 * max(hi - lo, 1e-3)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k-", lw=0.8, label="output = target")
            ax.legend(fontsize=7, loc="upper left")
        else:
            ax.text(0.5, 0.5, f"no {split} evaluation", transform=ax.transAxes, ha="center", color="gray")
        ax.set(xlabel="target (V)", ylabel="measured output (V)", title=f"{split}: outputs vs targets")
        ax.grid(True, alpha=0.3)
    save_figure(fig, path)


def fig_histograms(d: SessionData, path: Path) -> None:
    """Histograms of the E edges' codes and model conductances at the first and the last step."""
    p = plt()
    first, last = d.codes.index.min(), d.codes.index.max()
    c0, c1 = (d.codes.loc[s].to_numpy(dtype=np.int64) for s in (first, last))
    k0, k1 = (d.model.conductance(c) * 1e3 for c in (c0, c1))
    fig, axes = p.subplots(1, 2, figsize=(10, 3.8))
    top = max(int(np.max([c0, c1])), 1)
    cbins = np.linspace(-0.5, top + 0.5, min(top + 2, 41))
    axes[0].hist([c0, c1], bins=cbins, label=[f"step {first}", f"step {last}"], color=["tab:gray", "tab:blue"])
    axes[0].set(xlabel="digipot code (tap)", ylabel="edges", title="Code histogram")
    lo, hi = float(min(k0.min(), k1.min())), float(max(k0.max(), k1.max()))
    kbins = np.geomspace(lo * 0.95, hi * 1.05, 25)
    axes[1].hist([k0, k1], bins=kbins, label=[f"step {first}", f"step {last}"], color=["tab:gray", "tab:blue"])
    axes[1].set_xscale("log")
    axes[1].set(xlabel=f"conductance (mS, {d.model_name})", ylabel="edges", title="Conductance histogram")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
    save_figure(fig, path)


@dataclass
class Confusion:
    """Counts (C, C): row = true class, column = predicted class, of one split at one step."""

    counts: np.ndarray
    names: tuple[str, ...]
    step: int
    split: str

    @property
    def accuracy(self) -> float:
        total = self.counts.sum()
        return float(np.trace(self.counts) / total) if total else float("nan")


def confusion(d: SessionData, step: int, split: str) -> Confusion | None:
    """The confusion matrix from the CSV's ``predicted`` column and the task's labels, or None
    (not a classification task, or no evaluation of ``split`` at ``step``)."""
    if d.task is None or d.task.patterns is None or "predicted" not in d.states:
        return None
    samples = d.task.train if split == "train" else d.task.test
    if samples.labels is None:
        return None
    ev = d.states[(d.states["phase"] == "eval") & (d.states["step"] == step) & (d.states["split"] == split)]
    ev = ev.drop_duplicates("sample", keep="last").dropna(subset=["predicted"])
    ev = ev[ev["sample"] < len(samples)]
    if ev.empty:
        return None
    n = len(d.task.patterns)
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (samples.labels[ev["sample"].to_numpy(dtype=np.int64)], ev["predicted"].to_numpy(dtype=np.int64)), 1)
    names = d.task.class_names or tuple(str(i) for i in range(n))
    return Confusion(counts, tuple(names), step, split)


def fig_confusion(d: SessionData, path: Path) -> None:
    """The test (and train) confusion matrices at the last evaluation, counts annotated."""
    p = plt()
    last = eval_steps(d)[-1]
    mats = [m for m in (confusion(d, last, "test"), confusion(d, last, "train")) if m is not None]
    fig, axes = p.subplots(1, len(mats), figsize=(4.6 * len(mats), 4.2), squeeze=False)
    for ax, m in zip(axes[0], mats):
        ax.imshow(m.counts, cmap="Blues", vmin=0)
        for (i, j), v in np.ndenumerate(m.counts):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > m.counts.max() / 2 else "black")
        ax.set_xticks(range(len(m.names)), m.names, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(m.names)), m.names, fontsize=8)
        ax.set(xlabel="predicted class", ylabel="true class",
               title=f"{m.split} (step {m.step}): accuracy {m.accuracy:.1%}")
    save_figure(fig, path)


__all__ = ["Confusion", "confusion", "eval_outputs", "eval_steps", "fig_confusion", "fig_histograms",
           "fig_outputs_vs_targets"]
