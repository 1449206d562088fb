"""The talk's perturbation theory of learning, tested: predicted vs measured eigenvalue changes.

A resistor network driven by currents (the talk's *forces*) ``F`` at its input nodes, ground held,
every other node free: the physical Hessian is H = L_ff (S), the free state x = H⁻¹F (V), the
output o = A·x with A the output functional. With v_n, λ_n the eigenvectors/values of H,
f_n = F·v_n and a_n = A·v_n. Coupled learning with a small nudge is gradient descent on
C = c²/2, c = o − t, with the local update

    δk_e = α' c (b_e·x)(b_e·z),   z = H⁻¹A,   α' = 2α / (A·z)        (first order in η)

(b_e: edge e's incidence row over the free nodes). First-order perturbation theory of the
symmetric H = Σ_e k_e b_e b_eᵀ then gives three predictions of one step's δλ_n, from the exact
to the talk's approximations ("The Physical Effects of Learning", change in eigenvalues):

1. ``first_order``: δλ_n = Σ_e δk_e (b_e·v_n)² with the step's actual δk;
2. ``talk``: δλ_n ≈ α' c Σ_m Y_nm f_m a_m / λ_m²,  Y_nm = Σ_e (b_e·v_m)² (b_e·v_n)²
   (the cross terms m ≠ p of Σ_{m,p} Y_nmp f_m a_p/(λ_m λ_p) dropped: random initial network);
3. ``linear``: δλ_n ≈ α' c Y_nn f_n a_n / λ_n²  (the talk's "linear networks" example,
   δ(λ_n⁻¹) ≈ αB f_n a_n/λ_n⁴ up to the factor Y_nn).

:func:`eigen_changes` trains by the coupled-learning rule itself (finite η, clipping) and records
every step's measured δλ_n beside the three predictions. Units: k in S, x in V, F in A.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labnet.core.analysis import reduced_hessian
from labnet.core.network import Network
from labnet.core.rules import clip_conductance, coupled_learning


@dataclass(frozen=True)
class EigenChanges:
    """Per step s (rows) and mode n (columns, ascending λ at step s): measured δλ (S) and the
    three predictions (S); ``lam`` the eigenvalues at each step (S), ``err`` c² (V²)."""

    measured: np.ndarray
    first_order: np.ndarray
    talk: np.ndarray
    linear: np.ndarray
    lam: np.ndarray
    err: np.ndarray


def _incidence_free(net: Network, free: np.ndarray) -> np.ndarray:
    """Edge incidence rows over the free nodes, shape (E, F)."""
    b = np.zeros((net.n_edges, free.size))
    pos = {int(n): i for i, n in enumerate(free)}
    src, dst = net.edge_ends
    for e, (p, q) in enumerate(zip(src, dst, strict=True)):
        if int(p) in pos:
            b[e, pos[int(p)]] += 1.0
        if int(q) in pos:
            b[e, pos[int(q)]] -= 1.0
    return b


def predictions(b: np.ndarray, k: np.ndarray, dk: np.ndarray, force: np.ndarray, a: np.ndarray,
                alpha_eff_c: float) -> tuple[np.ndarray, ...]:
    """λ (F,), and the three predicted δλ (F,) for one step (see the module docstring).

    ``b`` (E, F) incidence over free nodes, ``k`` (E,) S, ``dk`` (E,) the step's update (S),
    ``force``/``a`` (F,), ``alpha_eff_c`` = α'·c.
    """
    h = (b.T * k) @ b
    lam, v = np.linalg.eigh(h)
    bv2 = (b @ v) ** 2  # (E, F): (b_e·v_n)²
    first = dk @ bv2
    f, an = v.T @ force, v.T @ a
    y = bv2.T @ bv2  # Y_nm
    talk = alpha_eff_c * (y @ (f * an / lam**2))
    linear = alpha_eff_c * np.diag(y) * f * an / lam**2
    return lam, first, talk, linear


def eigen_changes(net: Network, k0: np.ndarray, force: np.ndarray, a: np.ndarray, target: float, *,
                  alpha: float, eta: float, steps: int, k_min: float = 1e-5, k_max: float = 1e-2) -> EigenChanges:
    """Train ``steps`` coupled-learning steps with current inputs ``force`` (A, over the free nodes of
    ``reduced_hessian(net, k, [])``) toward output ``target`` (V) and record measured and predicted
    eigenvalue changes (:class:`EigenChanges`)."""
    free = reduced_hessian(net, k0, []).free_idx
    b = _incidence_free(net, free)
    op = int(np.flatnonzero(a)[0])
    k = np.array(k0, dtype=float)
    rows: dict[str, list[np.ndarray]] = {"measured": [], "first_order": [], "talk": [], "linear": [], "lam": []}
    errs = []
    vf, vc = np.zeros(net.n_nodes), np.zeros(net.n_nodes)
    lam_prev = None
    for _ in range(steps + 1):
        h = (b.T * k) @ b
        x = np.linalg.solve(h, force)
        z = np.linalg.solve(h, a)
        o = float(a @ x)
        c = o - target
        errs.append(c * c)
        vf[free] = x
        vc[free] = x + z * (eta * (target - o) / z[op])
        dk = coupled_learning(net.delta_v(vf), net.delta_v(vc), alpha=alpha, eta=eta)
        k_new = clip_conductance(k + dk, k_min, k_max)
        lam, first, talk, linear = predictions(b, k, k_new - k, force, a, 2 * alpha / float(a @ z) * c)
        if lam_prev is not None:
            rows["measured"].append(lam - lam_prev)
        lam_prev = lam
        if len(rows["lam"]) < steps:
            for name, val in (("first_order", first), ("talk", talk), ("linear", linear), ("lam", lam)):
                rows[name].append(val)
        k = k_new
    return EigenChanges(measured=np.array(rows["measured"]), first_order=np.array(rows["first_order"]),
                        talk=np.array(rows["talk"]), linear=np.array(rows["linear"]), lam=np.array(rows["lam"]),
                        err=np.array(errs[:steps]))


def correlation(pred: np.ndarray, meas: np.ndarray) -> float:
    """Pearson correlation over every (step, mode) pair."""
    p, m = np.ravel(pred), np.ravel(meas)
    return float(np.corrcoef(p, m)[0, 1])


__all__ = ["EigenChanges", "correlation", "eigen_changes", "predictions"]
