"""The talk's perturbation theory on measured data: predicted vs measured δλ_n of a bench run.

Voltage-driven network (inputs and ground held): H = L_ff over the other nodes, from the
conductances k_s (S, (E,)) that the calibrated code → conductance map gives for the codes the
session recorded at step s. Measured: δλ_n(s) = λ_n(k_{s+1}) − λ_n(k_s) (ascending modes).
Predicted from the step's *measured* free and clamped voltages V^F, V^C (V, (N,)):

* ``rule``: first-order theory δλ_n = Σ_e δk_e (b_e·v_n)² with δk the continuous coupled-learning
  update (α/η)[(ΔV^F)² − (ΔV^C)²] of the measured drops (no tap quantisation);
* ``talk``: the talk's formula δλ_n ≈ Σ_o α'_o c_o Σ_m Y_nm f_m a_{o,m}/λ_m² with f_m = F·v_m,
  F = −L_fh V_h the held voltages' force (V_h measured), a_{o,m} = e_o·v_m, c_o = V^F_o − t_o
  and the target read back from the clamp, t_o = V^F_o + (V^C_o − V^F_o)/η, α'_o = 2α/(e_o·H⁻¹e_o)
  (:func:`labnet.insilico.perturbation.predictions`);
* ``taps``: the same with δk the rule's *tap-quantised* step from those voltages (``dk_taps``,
  computed by the caller with the session's rule and conductance model) — what the bench's
  quantiser makes of the prediction;
* ``first_order``: Σ_e δk_e (b_e·v_n)² with the step's actual (tap-quantised) δk = k_{s+1} − k_s.

With voltage inputs the talk's force picture misses the held nodes' part of each edge drop
(ΔV_e = b_e·x + the held voltage at its end), which dominates edges at the inputs; that is why
``talk`` tracks ``rule`` poorly on the 16-edge rig (measured, ``benchmarks/perturbation_bench.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labnet.core.analysis import reduced_hessian
from labnet.core.network import Network
from labnet.core.rules import coupled_learning
from labnet.insilico.perturbation import _incidence_free, predictions


@dataclass(frozen=True)
class BenchEigenChanges:
    """Per step (rows) and mode (columns): measured and predicted δλ (S); ``lam`` λ at each step (S)."""

    measured: np.ndarray
    rule: np.ndarray
    taps: np.ndarray
    talk: np.ndarray
    first_order: np.ndarray
    lam: np.ndarray


def bench_eigen_changes(net: Network, k_steps: np.ndarray, vf: np.ndarray, vc: np.ndarray, *,
                        alpha: float, eta: float, held: Sequence[str] | None = None,
                        dk_taps: np.ndarray | None = None) -> BenchEigenChanges:
    """δλ measured vs predicted over S steps.

    ``k_steps`` (S+1, E) conductances (S) before each step and after the last; ``vf``, ``vc``
    (S, N) measured free and clamped node voltages (V) of each step; ``held`` the driven nodes
    (default: the inputs; ground always held); ``dk_taps`` (S, E) the rule's quantised δk (S) from
    the same voltages (default: zeros). Raises ValueError on shapes.
    """
    k_steps, vf, vc = (np.asarray(x, dtype=float) for x in (k_steps, vf, vc))
    s = vf.shape[0]
    if k_steps.shape != (s + 1, net.n_edges) or vf.shape != (s, net.n_nodes) or vc.shape != vf.shape:
        raise ValueError(f"shapes: k_steps {k_steps.shape} (expected ({s + 1}, {net.n_edges})), "
                         f"vf {vf.shape}, vc {vc.shape} (expected ({s}, {net.n_nodes}))")
    taps_dk = np.zeros((s, net.n_edges)) if dk_taps is None else np.asarray(dk_taps, dtype=float)
    if taps_dk.shape != (s, net.n_edges):
        raise ValueError(f"dk_taps shape {taps_dk.shape}, expected ({s}, {net.n_edges})")
    held = list(held if held is not None else net.inputs)
    red = reduced_hessian(net, k_steps[0], held, dense=True)
    free, hold = red.free_idx, net.indices(list(dict.fromkeys([net.ground, *held])))
    b = _incidence_free(net, free)
    outs = [int(np.flatnonzero(free == i)[0]) for i in net.indices(list(net.outputs))]
    rows: dict[str, list[np.ndarray]] = {n: [] for n in ("measured", "rule", "taps", "talk", "first_order", "lam")}
    for step in range(s):
        k, k1 = k_steps[step], k_steps[step + 1]
        r = reduced_hessian(net, k, held, dense=True)
        vh = vf[step, hold].copy()
        vh[0] = 0.0  # ground
        force = -(r.l_fh @ vh)
        h = np.asarray(r.h)
        dk_rule = coupled_learning(net.delta_v(vf[step]), net.delta_v(vc[step]), alpha=alpha, eta=eta)
        talk = np.zeros(free.size)
        for o in outs:
            a = np.zeros(free.size)
            a[o] = 1.0
            z = np.linalg.solve(h, a)
            c = -(vc[step, free[o]] - vf[step, free[o]]) / eta
            lam, first, t_o, _ = predictions(b, k, k1 - k, force, a, 2 * alpha / float(a @ z) * c)
            talk += t_o
        rule = dk_rule @ (b @ np.linalg.eigh(h)[1]) ** 2
        taps = taps_dk[step] @ (b @ np.linalg.eigh(h)[1]) ** 2
        lam1 = np.linalg.eigvalsh((b.T * k1) @ b)
        for name, val in (("measured", lam1 - lam), ("rule", rule), ("taps", taps), ("talk", talk), ("first_order", first),
                          ("lam", lam)):
            rows[name].append(val)
    return BenchEigenChanges(*(np.array(rows[n]) for n in ("measured", "rule", "taps", "talk", "first_order", "lam")))


__all__ = ["BenchEigenChanges", "bench_eigen_changes"]
