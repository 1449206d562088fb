"""Worst-case edge currents of a resistor network whose conductances are only known within a box.

A real digipot is not its nominal curve: R_AB lies within its tolerance, the wiper resistance
and the tap non-linearity vary from part to part (:meth:`labnet.core.parts.PartSpec.conductance_box`),
a calibration table is only known within its fitted uncertainty. The limit check therefore asks:
over *every* conductance vector ``k`` with ``k_lo ≤ k ≤ k_hi`` (elementwise) and every set of
source states the bench may pass through, how large can |I_e| = k_e·|V_a − V_b| get?
:func:`edge_current_bound` answers with a rigorous upper bound, shape (E,), in A.

Source states
    Node ``i`` is *held* (a source drives it somewhere in [v_lo_i, v_hi_i] V — an interval covers
    a supply slewing from one level to another and its setpoint error), *free* (floating), or
    *maybe* held (held within [v_lo_i, v_hi_i] in some of the states, floating in others: a
    source that is being switched on or off). Ground is held at [0, 0].

Soundness (the proof the tests check against random and corner draws)
    1. *Maximum principle.* A free node's voltage is the conductance-weighted mean of its
       neighbours' (Kirchhoff's current law), so every node lies in [V_min, V_max], the extreme
       held voltages (ground's 0 V included).
    2. *Interval contraction.* Suppose every node ``j`` lies in [L_j, U_j] for every ``k`` in the
       box and every state. For a free node ``i``, V_i = Σ_j k_ij V_j / Σ_j k_ij ≤ max over the box of
       Σ_j k_ij U_j / Σ_j k_ij =: M_i (the weights are positive). That maximum of a linear-fractional
       function over a box is attained at a *threshold vertex*: for the optimum t*, the vertex
       with k_ij = hi where U_j > t* and lo where U_j < t* has Σ k_ij (U_j − t*) ≥ 0, i.e. mean ≥ t*.
       So M_i is the largest mean over the D+1 vertices "the p largest U_j at k_hi, the rest at
       k_lo" (:func:`max_weighted_mean`) — exact, not an estimate. U_i ← min(U_i, M_i) (and, for a
       maybe-held node, max(M_i, v_hi_i)) keeps the invariant; likewise for L_i. Starting from
       [V_min, V_max] (step 1) and iterating, every iterate is a sound enclosure; stopping at any
       point is sound.
    3. *Edge currents.* For edge e = (a, b), I = k_e (V_a − V_b) ≤ k_hi,e · max(0, U_a − L_b).
       Where ``a`` floats, KCL at ``a`` gives I = s·(W − V_b) with s = k_e K / (k_e + K) the series
       conductance of e and K = Σ k over a's other edges, and W their conductance-weighted mean:
       s ≤ s(k_hi,e, K_hi) (increasing in both) and W ≤ the maximal mean of step 2 over a's other
       neighbours, so I ≤ s_hi · max(0, M_{a∖e} − L_b) — usually much tighter, as it keeps the
       divider that feeds the edge. The same at ``b``. Each bound holds in its states; the
       smallest applicable one is returned (for a maybe-held end, the larger of its held and
       its floating case). |I_e| is bounded by the larger of the two directions.

The bound covers every conductance inside the box, so a code change whose wiper passes through
intermediate taps is covered by the hull (elementwise min of k_lo, max of k_hi) of the old and
new codes' boxes, and a source moving between two levels by the interval between them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from labnet.core.network import Network

#: Contraction sweeps at most (each is sound; the enclosure stops shrinking long before on small
#: networks).
MAX_SWEEPS = 200


@dataclass(frozen=True)
class Neighbours:
    """Padded neighbour lists of a network (built once per network by :func:`neighbours`).

    Attributes
    ----------
    node_nb, node_edge : (N, D) int
        For each node, the other end and the edge of each incident edge (padding: 0, −1).
    side_nb, side_edge : (2E, D) int
        Row ``e`` (and ``E + e``): the neighbours of edge e's first (second) end, edge e left out.
    side_node : (2E,) int
        The node whose neighbours row ``r`` of ``side_*`` lists.
    """

    node_nb: np.ndarray
    node_edge: np.ndarray
    side_nb: np.ndarray
    side_edge: np.ndarray
    side_node: np.ndarray


def neighbours(network: Network) -> Neighbours:
    """Padded neighbour and "all but one edge" lists of ``network`` (see :class:`Neighbours`)."""
    src, dst = network.edge_ends
    n, e = network.n_nodes, network.n_edges
    inc: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for j, (a, b) in enumerate(zip(src.tolist(), dst.tolist())):
        inc[a].append((b, j))
        inc[b].append((a, j))
    d = max((len(x) for x in inc), default=1) or 1
    node_nb = np.zeros((n, d), dtype=np.int64)
    node_edge = np.full((n, d), -1, dtype=np.int64)
    for i, lst in enumerate(inc):
        for c, (o, j) in enumerate(lst):
            node_nb[i, c], node_edge[i, c] = o, j
    side_node = np.concatenate((src, dst)).astype(np.int64)
    side_nb = node_nb[side_node].copy()
    side_edge = node_edge[side_node].copy()
    own = np.concatenate((np.arange(e), np.arange(e)))
    side_edge[side_edge == own[:, None]] = -1  # leave the edge itself out
    return Neighbours(node_nb, node_edge, side_nb, side_edge, side_node)


def max_weighted_mean(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max over w with lo ≤ w ≤ hi of Σ_j w_j x_j / Σ_j w_j, per row; shape (R,).

    ``x``, ``lo``, ``hi``: (R, D); entries with lo = hi = 0 are padding. Exact (the maximum is at a
    threshold vertex, see the module docstring). A row without weight gives −inf.
    """
    order = np.argsort(-x, axis=1, kind="stable")
    xs = np.take_along_axis(x, order, 1)
    ls = np.take_along_axis(lo, order, 1)
    hs = np.take_along_axis(hi, order, 1)
    zero = np.zeros((x.shape[0], 1))
    num_hi = np.concatenate((zero, np.cumsum(hs * xs, axis=1)), axis=1)
    den_hi = np.concatenate((zero, np.cumsum(hs, axis=1)), axis=1)
    lx = ls * xs
    num_lo = np.sum(lx, axis=1, keepdims=True) - np.concatenate((zero, np.cumsum(lx, axis=1)), axis=1)
    den_lo = np.sum(ls, axis=1, keepdims=True) - np.concatenate((zero, np.cumsum(ls, axis=1)), axis=1)
    den = den_hi + den_lo
    with np.errstate(invalid="ignore", divide="ignore"):
        val = np.where(den > 0, (num_hi + num_lo) / np.where(den > 0, den, 1.0), -np.inf)
    return np.max(val, axis=1)


def _weights(edges: np.ndarray, k_lo: np.ndarray, k_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pad = edges < 0
    lo = np.where(pad, 0.0, k_lo[np.where(pad, 0, edges)])
    hi = np.where(pad, 0.0, k_hi[np.where(pad, 0, edges)])
    return lo, hi


def node_bounds(nb: Neighbours, k_lo: np.ndarray, k_hi: np.ndarray, v_lo: np.ndarray, v_hi: np.ndarray,
                held: np.ndarray, maybe: np.ndarray, *, rtol: float = 1e-7,
                enough: Callable[[np.ndarray, np.ndarray], bool] | None = None,
                check_every: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Sound enclosure [L, U] (V), shapes (N,), of every node voltage over the box and the states.

    ``held`` (N,) bool: driven within [v_lo, v_hi] in every state; ``maybe`` (N,) bool: driven
    within [v_lo, v_hi] in some states, floating in others; other nodes float. Sweeps until the
    enclosure moves by less than ``rtol`` × the voltage span, or until ``enough(L, U)`` (asked
    before the first sweep, after sweeps 1, 2, 4, 8, … and every ``check_every``) says the caller
    needs no tighter one — every iterate is sound.
    """
    any_held = held | maybe
    vmin = float(min(np.min(v_lo[any_held]), 0.0)) if any_held.any() else 0.0
    vmax = float(max(np.max(v_hi[any_held]), 0.0)) if any_held.any() else 0.0
    lower = np.where(held, v_lo, vmin).astype(float)
    upper = np.where(held, v_hi, vmax).astype(float)
    rows = np.flatnonzero(~held)
    if not rows.size or vmax == vmin:
        return lower, upper
    w_lo, w_hi = _weights(nb.node_edge[rows], k_lo, k_hi)
    w_lo2, w_hi2 = np.concatenate((w_lo, w_lo)), np.concatenate((w_hi, w_hi))
    idx = nb.node_nb[rows]
    r = rows.size
    m_hi = np.where(maybe[rows], v_hi[rows], -np.inf)
    m_lo = np.where(maybe[rows], v_lo[rows], np.inf)
    tol = rtol * (vmax - vmin)
    if enough is not None and enough(lower, upper):
        return lower, upper
    for sweep in range(1, MAX_SWEEPS + 1):
        # the upper ends' maximal means and (negated) the lower ends' minimal means in one call
        both = max_weighted_mean(np.concatenate((upper[idx], -lower[idx])), w_lo2, w_hi2)
        new_u = np.minimum(upper[rows], np.maximum(m_hi, both[:r]))
        new_l = np.maximum(lower[rows], np.minimum(m_lo, -both[r:]))
        change = max(float(np.max(upper[rows] - new_u)), float(np.max(new_l - lower[rows])))
        upper[rows], lower[rows] = new_u, new_l
        if change <= tol or (enough is not None and (sweep & (sweep - 1) == 0 or sweep % check_every == 0)
                             and enough(lower, upper)):
            break
    return lower, upper


def edge_current_bound(network: Network, k_lo: np.ndarray, k_hi: np.ndarray, v_lo: np.ndarray,
                       v_hi: np.ndarray, held: np.ndarray, maybe: np.ndarray | None = None,
                       nb: Neighbours | None = None, enough: float | None = None) -> np.ndarray:
    """Upper bound (A), shape (E,), on |I_e| over every k in [k_lo, k_hi] (S, (E,)) and every state.

    ``v_lo``, ``v_hi`` (N,) V: intervals of the held and maybe-held nodes (ignored elsewhere);
    ``held``, ``maybe`` (N,) bool (see :func:`node_bounds`; ground must be held at [0, 0]).
    ``nb``: :func:`neighbours` of the network, if already built. ``enough`` (A): stop tightening
    once every edge's bound is at most this (the answer is then "safe"; still a sound bound).
    Proof: module docstring.
    """
    nb = neighbours(network) if nb is None else nb
    k_lo = np.asarray(k_lo, dtype=float)
    k_hi = np.asarray(k_hi, dtype=float)
    held = np.asarray(held, dtype=bool)
    maybe = np.zeros(network.n_nodes, dtype=bool) if maybe is None else np.asarray(maybe, dtype=bool) & ~held
    v_lo = np.asarray(v_lo, dtype=float)
    v_hi = np.asarray(v_hi, dtype=float)
    sides = _Sides(network, nb, k_lo, k_hi, v_lo, v_hi, held, maybe)
    stop = None if enough is None else (lambda lo, up: bool(np.max(sides.bound(lo, up)) <= enough))
    lower, upper = node_bounds(nb, k_lo, k_hi, v_lo, v_hi, held, maybe, enough=stop)
    return sides.bound(lower, upper)


class _Sides:
    """Step 3 of the module docstring: edge-current bounds from a node enclosure [L, U]."""

    def __init__(self, network: Network, nb: Neighbours, k_lo: np.ndarray, k_hi: np.ndarray, v_lo: np.ndarray,
                 v_hi: np.ndarray, held: np.ndarray, maybe: np.ndarray) -> None:
        self.src, self.dst = network.edge_ends
        self.e = network.n_edges
        self.k_hi, self.v_lo, self.v_hi, self.held, self.maybe = k_hi, v_lo, v_hi, held, maybe
        # each end's neighbours but the edge itself: their weights and total k_hi
        self.w_lo, self.w_hi = _weights(nb.side_edge, k_lo, k_hi)
        self.idx = nb.side_nb
        k_rest = np.sum(self.w_hi, axis=1)
        k2 = np.concatenate((k_hi, k_hi))
        with np.errstate(invalid="ignore", divide="ignore"):
            series = np.where(k_rest > 0, k2 * k_rest / (k2 + k_rest), 0.0)
        self.series = np.where(np.isinf(k2), k_rest, series)  # s(k_hi,e, K_hi), (2E,)

    def bound(self, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """Bound (A), (E,), on |I_e| given every node in [lower, upper]."""
        e = self.e
        w_lo2, w_hi2 = np.concatenate((self.w_lo, self.w_lo)), np.concatenate((self.w_hi, self.w_hi))
        both = max_weighted_mean(np.concatenate((upper[self.idx], -lower[self.idx])), w_lo2, w_hi2)
        side_max = np.where(np.isfinite(both[:2 * e]), both[:2 * e], 0.0)  # no other neighbour: s = 0 anyway
        side_min = np.where(np.isfinite(both[2 * e:]), -both[2 * e:], 0.0)
        k_hi, v_lo, v_hi, held, maybe, series = self.k_hi, self.v_lo, self.v_hi, self.held, self.maybe, self.series

        def one_way(a: np.ndarray, b: np.ndarray, sa: np.ndarray, sb: np.ndarray) -> np.ndarray:
            """Bound on k_e (V_a − V_b); ``sa``/``sb``: rows of the a-side / b-side lists."""
            out = _times(k_hi, np.maximum(0.0, upper[a] - lower[b]))
            free_a = _times(series[sa], np.maximum(0.0, side_max[sa] - lower[b]))  # KCL at a
            held_a = _times(k_hi, np.maximum(0.0, v_hi[a] - lower[b]))
            via_a = np.where(maybe[a], np.maximum(free_a, held_a), free_a)
            out = np.where(held[a], out, np.minimum(out, via_a))
            free_b = _times(series[sb], np.maximum(0.0, upper[a] - side_min[sb]))  # KCL at b
            held_b = _times(k_hi, np.maximum(0.0, upper[a] - v_lo[b]))
            via_b = np.where(maybe[b], np.maximum(free_b, held_b), free_b)
            return np.where(held[b], out, np.minimum(out, via_b))

        ra, rb = np.arange(e), e + np.arange(e)
        return np.maximum(one_way(self.src, self.dst, ra, rb), one_way(self.dst, self.src, rb, ra))


def _times(k: np.ndarray, dv: np.ndarray) -> np.ndarray:
    """k·dv with inf·0 = 0 (an unbounded conductance across no voltage carries nothing)."""
    with np.errstate(invalid="ignore"):
        return np.where(dv > 0, k * dv, 0.0)


__all__ = ["MAX_SWEEPS", "Neighbours", "edge_current_bound", "max_weighted_mean", "neighbours", "node_bounds"]
