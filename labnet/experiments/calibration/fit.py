"""Least squares for in-situ calibration: conductances from KCL rows, and each edge's part model.

* :func:`solve_conductances`: joint weighted least squares for every (edge, code) unknown
  from measured source patterns (Kirchhoff's current law is linear in the conductances);
* :func:`fit_part`: R(D) = D/N·R_AB + R_W (+ c·sin(πD/N)) fitted to one edge;
* :func:`unload`: first-order correction of the meter's loading of floating nodes.

See :mod:`labnet.experiments.calibration` for the method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labnet.core.network import Network
from labnet.core.physics import Solver, thevenin_resistance

#: χ² drop needed to keep the non-linearity correction term (one extra parameter: ~3σ).
CORRECTION_DCHI2 = 9.0


@dataclass
class PatternData:
    """Measurements of one source pattern: held voltages, node voltages (N,), source currents."""

    held: dict[str, float]
    voltages: np.ndarray
    currents: np.ndarray | None  # (len(held),) in held order, or None


@dataclass(frozen=True)
class ConductanceFit:
    """Least-squares conductances of (edge, code) unknowns.

    Attributes
    ----------
    keys : list of (edge, code)
        What each unknown is.
    k, sigma : arrays (U,)
        Conductances and 1σ uncertainties (S).
    chi2_dof : float
        Weighted residual per degree of freedom (≈1 when the noise model is right; the
        uncertainties are scaled up by sqrt of it when larger).
    rank_deficit : int
        Directions the data cannot determine (0 for a good design).
    scale : str
        ``"source_current"`` or ``"nominal"``.
    """

    keys: list[tuple[int, int]]
    k: np.ndarray
    sigma: np.ndarray
    chi2_dof: float
    rank_deficit: int
    scale: str

    def at(self, codes: np.ndarray) -> np.ndarray:
        """Conductances (S), shape (E,), at a code vector that was measured."""
        pos = {key: i for i, key in enumerate(self.keys)}
        return np.array([self.k[pos[(j, int(c))]] for j, c in enumerate(codes)])


def kcl_system(network: Network, data: Sequence[PatternData],
               use_currents: bool) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Rows of the linear system M k = b from measured patterns at one code vector.

    Returns M (R, E), b (R,) in A and the (pattern, node) of each row. A node gives a row when
    its voltage and all its neighbours' are measured; driven nodes give rows only with
    ``use_currents`` (their right-hand side is the source's current).
    """
    src, dst = network.edge_ends
    rows, rhs, where = [], [], []
    for p, d in enumerate(data):
        v = d.voltages
        dv = v[src] - v[dst]
        held_pos = {network.index[n]: i for i, n in enumerate(d.held)}
        for i in range(network.n_nodes):
            if network.nodes[i] == network.ground:
                continue
            at_src, at_dst = src == i, dst == i
            touching = at_src | at_dst
            if not np.all(np.isfinite(dv[touching])):
                continue
            row = np.where(at_src, dv, 0.0) - np.where(at_dst, dv, 0.0)
            if i in held_pos:
                if not use_currents or d.currents is None:
                    continue
                b = float(d.currents[held_pos[i]])
            else:
                b = 0.0
            rows.append(row)
            rhs.append(b)
            where.append((p, i))
    return np.array(rows), np.array(rhs), where


def solve_conductances(network: Network, measured: Sequence[tuple[np.ndarray, Sequence[PatternData]]], *,
                       noise_v: float, scale: str = "source_current", k_nominal: Any = None,
                       current_rel: float = 1e-4) -> ConductanceFit:
    """Joint weighted least squares for the conductance of every (edge, code) pair measured.

    Parameters
    ----------
    measured : sequence of (codes (E,), patterns)
        The code vector and the patterns measured at it. An edge whose code is the same in
        two vectors has *one* unknown for both — that sharing is what makes sub-networks
        without a source identifiable (a sourceless 2-terminal cluster is otherwise
        indistinguishable from a rescaled parallel edge).
    noise_v : float
        1σ noise (V) of one (averaged) node reading; sets the row weights (a KCL row's
        residual variance is σ²[(Σ_j k_j)² + Σ_j k_j²] over the node's edges).
    scale : {"source_current", "nominal"}
        How the overall scale is fixed (module docstring); ``source_current`` needs currents.
    k_nominal : ConductanceModel, optional
        Nominal model; required for ``scale = "nominal"``, and gives the starting weights.
    current_rel : float
        Relative 1σ error assumed for a reported source current.
    """
    has_i = any(d.currents is not None for _, data in measured for d in data)
    use_i = scale == "source_current" and has_i
    mat, b, touch, key_list = joint_system(network, measured, use_i)
    u = len(key_list)
    if k_nominal is not None:
        k = np.array([float(k_nominal.conductance(np.full(network.n_edges, c))[j]) for j, c in key_list])
    else:
        k = np.ones(u)
    k_nom0 = k.copy()
    for _ in range(3):  # the weights depend on k: iterate
        sig = np.array([noise_v * np.sqrt(np.sum(k[t]) ** 2 + np.sum(k[t] ** 2)) for t in touch])
        sig = np.hypot(sig, current_rel * np.abs(b))
        mw, bw = mat / sig[:, None], b / sig
        if use_i:
            k, *_ = np.linalg.lstsq(mw, bw, rcond=None)
        else:
            if k_nominal is None:
                raise ValueError("scale = 'nominal' needs k_nominal")
            _, _, vt = np.linalg.svd(mw, full_matrices=False)
            k = vt[-1] * np.sign(np.sum(vt[-1]))
            k = k * np.exp(np.mean(np.log(k_nom0)) - np.mean(np.log(np.abs(k))))
    sv = np.linalg.svd(mw, compute_uv=False)
    tol = sv[0] * 1e-10
    n_free = u if use_i else u - 1
    deficit = int(n_free - np.sum(sv > tol))
    resid = mw @ k - bw
    dof = max(mw.shape[0] - n_free, 1)
    chi2_dof = float(resid @ resid / dof)
    cov = np.linalg.pinv(mw.T @ mw, rcond=1e-12) * max(chi2_dof, 1.0)
    sigma = np.sqrt(np.clip(np.diag(cov), 0, None))
    return ConductanceFit(key_list, k, sigma, chi2_dof, max(deficit, 0), "source_current" if use_i else "nominal")


def joint_system(network: Network, measured: Sequence[tuple[np.ndarray, Sequence[PatternData]]],
                 use_currents: bool) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[tuple[int, int]]]:
    """The stacked KCL rows of every code vector over (edge, code) unknowns.

    Returns M (R, U), b (R,) in A, the unknown columns each row touches, and the (edge, code)
    of each of the U unknowns.
    """
    keys: dict[tuple[int, int], int] = {}
    for codes, _ in measured:
        for j, c in enumerate(codes):
            keys.setdefault((j, int(c)), len(keys))
    src, dst = network.edge_ends
    blocks, rhs, touch = [], [], []
    for codes, data in measured:
        m, b, where = kcl_system(network, data, use_currents)
        cols = np.array([keys[(j, int(c))] for j, c in enumerate(codes)])
        big = np.zeros((m.shape[0], len(keys)))
        np.add.at(big, (np.arange(m.shape[0])[:, None], cols[None, :]), m)
        blocks.append(big)
        rhs.append(b)
        touch += [cols[(src == i) | (dst == i)] for _, i in where]
    return np.vstack(blocks), np.concatenate(rhs), touch, list(keys)


@dataclass(frozen=True)
class PartFit:
    """R(D) = D/N·R_AB + R_W (+ c·sin(πD/N)) fitted to one edge (Ω); ``cov`` is 3×3 (c=0 row/col when unused)."""

    r_ab_ohm: float
    r_w_ohm: float
    inl_ohm: float
    cov: np.ndarray
    chi2: float
    dof: int
    corrected: bool

    def basis(self, codes: np.ndarray, max_code: int) -> np.ndarray:
        d = np.asarray(codes, dtype=float)
        return np.stack([d / max_code, np.ones_like(d), np.sin(np.pi * d / max_code)], axis=-1)

    def resistance(self, codes: np.ndarray, max_code: int) -> tuple[np.ndarray, np.ndarray]:
        """R (Ω) and its 1σ (Ω) at ``codes``."""
        g = self.basis(codes, max_code)
        p = np.array([self.r_ab_ohm, self.r_w_ohm, self.inl_ohm])
        return g @ p, np.sqrt(np.einsum("...i,ij,...j->...", g, self.cov, g))


def fit_part(codes: np.ndarray, k: np.ndarray, sigma_k: np.ndarray, max_code: int, correction: str = "auto") -> PartFit:
    """Fit one edge's part model to conductances ``k`` (S) ± ``sigma_k`` at ``codes`` (shape (m,))."""
    codes = np.asarray(codes, dtype=float)
    r = 1.0 / np.asarray(k, float)
    sr = np.asarray(sigma_k, float) * r**2
    sr = np.where(sr > 0, sr, 1e-12 * r)
    g = np.stack([codes / max_code, np.ones_like(codes), np.sin(np.pi * codes / max_code)], axis=1)

    def fit(cols: int) -> tuple[np.ndarray, np.ndarray, float]:
        gw = g[:, :cols] / sr[:, None]
        p, *_ = np.linalg.lstsq(gw, r / sr, rcond=None)
        res = gw @ p - r / sr
        return p, np.linalg.pinv(gw.T @ gw), float(res @ res)

    p2, c2, chi2_2 = fit(2)
    use = correction == "inl" or (correction == "auto" and len(codes) > 3)
    if use:
        p3, c3, chi2_3 = fit(3)
        if correction == "inl" or chi2_2 - chi2_3 > CORRECTION_DCHI2:
            dof = len(codes) - 3
            cov = c3 * max(chi2_3 / dof, 1.0) if dof > 0 else c3
            return PartFit(float(p3[0]), float(p3[1]), float(p3[2]), cov, chi2_3, dof, True)
    dof = len(codes) - 2
    cov = np.zeros((3, 3))
    cov[:2, :2] = c2 * (max(chi2_2 / dof, 1.0) if dof > 0 else 1.0)
    return PartFit(float(p2[0]), float(p2[1]), 0.0, cov, chi2_2, dof, False)


def unload(network: Network, k: np.ndarray, data: Sequence[PatternData], r_in_ohm: float) -> list[PatternData]:
    """Undo the meter's loading to first order: V = V_read·(1 + R_th/R_in) at floating nodes,
    with Thevenin resistances R_th (Ω) from conductances ``k`` (S, shape (E,))."""
    out = []
    for d in data:
        solver = Solver(network, k, list(d.held))
        free = [network.nodes[i] for i in solver.free_idx]
        v = d.voltages.copy()
        v[solver.free_idx] *= 1.0 + thevenin_resistance(solver, free) / r_in_ohm
        out.append(PatternData(d.held, v, d.currents))
    return out
