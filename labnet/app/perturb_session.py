"""δλ_n predicted vs measured for the first steps of a training session (the bench half of issue 15, item 4).

Reads a training session folder (``labnet run``): the codes and the measured free/clamped node
voltages of each step, the rule's α and η from the header, the session's conductance model
(calibration table if the run had one, else the nominal part: :func:`labnet.app.report_data.session_model`).
:func:`labnet.insilico.perturbation_bench.bench_eigen_changes` does the physics; :func:`figure`
draws predicted against measured (PNG, matplotlib).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labnet.app.report_data import load_session_data
from labnet.core.errors import ConfigError
from labnet.core.rules import Rule, apply_step
from labnet.insilico.perturbation_bench import BenchEigenChanges, bench_eigen_changes


def session_eigen_changes(folder: str | Path, steps: int) -> tuple[BenchEigenChanges, str]:
    """Measured and predicted δλ over the session's first ``steps`` training steps, and the model's name."""
    d = load_session_data(folder)
    st, net = d.states, d.network
    vcols = [f"v_{n}" for n in net.nodes]
    free, clamped = st[st["phase"] == "free"], st[st["phase"] == "clamped"]
    train = sorted(set(free["step"]) & set(clamped["step"]))
    if len(train) < steps + 1:
        raise ConfigError(str(folder), "steps", f"need {steps + 1} training steps in the session, found {len(train)}")
    use = train[: steps + 1]
    codes = np.array([free[free["step"] == s][[f"code_e{j}" for j in range(net.n_edges)]].iloc[0] for s in use], float)
    k = np.array([d.model.conductance(c.astype(np.int64)) for c in codes])
    vf = np.array([free[free["step"] == s][vcols].iloc[0] for s in use[:-1]], float)
    vc = np.array([clamped[clamped["step"] == s][vcols].iloc[0] for s in use[:-1]], float)
    try:
        rule = Rule(**d.header["rule"])
    except (KeyError, TypeError) as exc:
        raise ConfigError(str(folder), "rule", f"no usable rule in the session header ({exc})") from None
    lim = d.header.get("rig", {}).get("limits", {}) if isinstance(d.header.get("rig"), dict) else {}
    lo, hi = int(lim.get("code_min", 0)), int(lim.get("code_max", int(codes.max())))
    rng = np.random.default_rng(0)
    dk_taps = np.zeros((steps, net.n_edges))
    for s in range(steps):
        dk = rule.dk(net.delta_v(vf[s]), net.delta_v(vc[s]))
        c = codes[s].astype(np.int64)
        dk_taps[s] = d.model.conductance(apply_step(c, rule.step(dk, d.model.slope(c), rng), lo, hi)) - k[s]
    return bench_eigen_changes(net, k, vf, vc, alpha=rule.alpha, eta=rule.eta, dk_taps=dk_taps), d.model_name


def correlation(pred: np.ndarray, meas: np.ndarray) -> float:
    """Pearson correlation over every (step, mode) pair."""
    return float(np.corrcoef(np.ravel(pred), np.ravel(meas))[0, 1])


def figure(ch: BenchEigenChanges, path: str | Path, title: str = "") -> None:
    """Predicted against measured δλ_n (one panel per prediction), written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 4))
    for ax, name, label in zip(axes, ("first_order", "taps", "rule", "talk"),
                               ("first order, recorded (tap) δk", "first order, rule's tap step from measured V",
                                "first order, continuous rule δk from measured V", "talk: Σ_m Y_nm f_m a_m/λ_m²"),
                               strict=True):
        pred, meas = getattr(ch, name), ch.measured
        sm, sp = np.abs(meas).max() or 1.0, np.abs(pred).max() or 1.0
        for n in range(meas.shape[1]):
            ax.plot(meas[:, n] / sm, pred[:, n] / sp, ".", ms=4, label=f"mode {n}")
        ax.set_xlabel("measured δλ_n (scaled)")
        ax.set_ylabel("predicted δλ_n (scaled)")
        ax.set_title(f"{label}\nr = {correlation(pred, meas):.3f}", fontsize=8)
    axes[0].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["correlation", "figure", "session_eigen_changes"]
