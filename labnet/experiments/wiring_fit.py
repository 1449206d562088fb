"""Kirchhoff least squares for the wiring check: which single wiring fault explains the readings.

Model
-----
For every code vector v and every edge position p an unknown conductance k(p, v) (S); KCL at
every released, metered node of every pattern is linear in them (the calibration's rows,
:func:`labnet.experiments.calibration.kcl_system`), weighted by the meter noise. Two soft
constraints tie the conductances to the parts:

* **part consistency** k(p, v) = a_p · k_nom(c(p, v)), with a per-position scale a_p (the part's
  R_AB tolerance) and a model error relative to R(c): one tap of absolute linearity and one
  typical wiper resistance in quadrature, taken as the bounds of a uniform error (1σ = bound/√3)
  (X9C102/103/104/503 datasheet, Intersil FN8222 Rev 3.00, p. 4-5: absolute linearity ±1 MI,
  1 MI = R_TOT/99, wiper resistance 40 Ω typ, 100 Ω max);
* **tolerance prior** a_p = 1 ± tol/√3 (R_AB uniform within the part's ±tolerance).

A **hypothesis** changes the model: an open edge removes its unknowns; a shorted edge replaces
them by one free current per pattern; swapped edges exchange the codes two positions follow;
swapped meter channels exchange two nodes' readings; a loaded node adds one conductance to
ground g (S) at that node. A shorted edge adds the χ² of its two ends' readings being equal (a
wire holds them at one voltage: the free currents alone would fit any edge to ground), except in
patterns where sources hold both ends. Every hypothesis is one weighted linear least-squares problem; its
score is χ² plus a penalty (:data:`FAULT_PENALTY` for naming a fault, 2 per extra parameter),
and the lowest score names the wiring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from labnet.core.network import Network
from labnet.core.parts import PartSpec
from labnet.experiments.calibration import PatternData, kcl_system

#: Score a fault hypothesis must gain over "as wired" to be named (χ² units: 5σ).
FAULT_PENALTY = 25.0
#: Re-weightings of a loaded node's rows by its fitted load (the load's share of their error).
LOAD_REWEIGHTS = 6
#: Weight of the row pinning the mean part scale to 1 (a constraint, not a measurement).
SCALE_WEIGHT = 1e4
KINDS = ("as_wired", "open_edge", "shorted_edge", "swapped_edges", "swapped_meter_channels", "loaded_node")


@dataclass(frozen=True)
class Hypothesis:
    """One way the bench may be wired: ``kind`` (one of :data:`KINDS`) and what it names."""

    kind: str
    edges: tuple[int, ...] = ()
    nodes: tuple[str, ...] = ()

    def text(self, network: Network) -> str:
        """A readable name: ``open edge 3 (n7-n8, channel 3)``."""
        def edge(j: int) -> str:
            a, b = network.edges[j]
            return f"edge {j} ({a}-{b}, channel {network.edge_channels[j]})"

        if self.kind == "as_wired":
            return "wired as the rig file says"
        if self.kind == "open_edge":
            return f"open {edge(self.edges[0])}"
        if self.kind == "shorted_edge":
            return f"shorted {edge(self.edges[0])}"
        if self.kind == "swapped_edges":
            return f"swapped digipots: {edge(self.edges[0])} <-> {edge(self.edges[1])}"
        if self.kind == "swapped_meter_channels":
            u, w = self.nodes
            return (f"swapped meter channels: {network.meter_channels[u]} ({u}) <-> "
                    f"{network.meter_channels[w]} ({w})")
        return f"node {self.nodes[0]} loaded to ground"


def hypotheses(network: Network, swap_pairs: Sequence[tuple[int, int]] | None = None) -> list[Hypothesis]:
    """"As wired" and every single fault the check can name; swapped digipots only for
    ``swap_pairs`` (edge index pairs; default: every pair)."""
    e = network.n_edges
    pairs = sorted({tuple(sorted(p)) for p in swap_pairs} if swap_pairs is not None else
                   {(a, b) for a in range(e) for b in range(a + 1, e)})
    metered = [n for n in network.nodes if n in network.meter_channels]
    out = [Hypothesis("as_wired")]
    out += [Hypothesis("open_edge", (j,)) for j in range(e)]
    out += [Hypothesis("shorted_edge", (j,)) for j in range(e)]
    out += [Hypothesis("swapped_edges", (int(a), int(b))) for a, b in pairs if a != b]
    out += [Hypothesis("swapped_meter_channels", nodes=(u, w)) for i, u in enumerate(metered) for w in metered[i + 1:]]
    out += [Hypothesis("loaded_node", nodes=(n,)) for n in network.nodes if n != network.ground]
    return out


@dataclass
class Problem:
    """What every hypothesis is fitted to.

    Attributes
    ----------
    voltages : array (V, P, N)
        Mean readings (V), meter loading undone.
    sigma_v : float
        1σ of one mean reading (V).
    vectors : array (V, E)
        Codes of each vector.
    patterns : list of dict
        Held nodes of each pattern (node -> set V).
    """

    network: Network
    part: PartSpec
    vectors: np.ndarray
    patterns: list[dict[str, float]]
    voltages: np.ndarray
    sigma_v: float
    #: node index -> conductance (S) to ground the rig file declares while the node is released
    #: (a source whose output-off state loads its node: ``[release]`` / ``off_resistance_ohm``)
    known_loads: dict[int, float] = field(default_factory=dict)

    def k_nominal(self, codes: np.ndarray) -> np.ndarray:
        return self.part.conductance(codes)

    def model_error(self, codes: np.ndarray) -> np.ndarray:
        """Relative 1σ of k = a·k_nom(c): one tap (MI) of linearity and one typical wiper resistance
        in quadrature, over R(c), as a uniform bound (/√3)."""
        r = self.part.resistance(codes)
        mi = self.part.r_ab_ohm / self.part.max_code
        return np.hypot(mi, self.part.r_w_ohm) / r / math.sqrt(3)


@dataclass
class Fit:
    """One hypothesis fitted: ``chi2``, ``score``, per-position scale ``a`` (NaN where removed),
    the load conductance (S) of a loaded node, the fitted conductances, weighted KCL residuals
    and where they are. A loaded node whose fitted load is not a positive conductance scores
    infinity (no physical load explains the readings)."""

    hypothesis: Hypothesis
    chi2: float
    score: float
    n_rows: int
    n_params: int
    a: np.ndarray
    load_siemens: float = math.nan
    k: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (V, E) fitted conductances (S), NaN where removed
    residuals: np.ndarray = field(default_factory=lambda: np.zeros(0))
    misfit: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (E,) χ² of each position's part consistency
    where: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))  # rows' (vector, pattern, node)

    def node_residuals(self, n_nodes: int) -> np.ndarray:
        """RMS weighted KCL residual per node (σ units; NaN where the node gave no row), shape (N,)."""
        out = np.full(n_nodes, np.nan)
        if not self.where.size:
            return out
        nodes = self.where[:, 2]
        for i in np.unique(nodes):
            r = self.residuals[nodes == i]
            out[i] = float(np.sqrt(np.mean(r**2)))
        return out


@dataclass
class _Rows:
    """KCL rows of one code vector: M (R, E), the (pattern, node) of each row, and which edges touch its node."""

    mat: np.ndarray
    pats: np.ndarray
    nodes: np.ndarray
    touch: np.ndarray  # (R, E) bool
    sign: np.ndarray  # (R, E): +1 where the row's node is the edge's "from" end, -1 at its "to" end

    def with_voltages(self, network: Network, volts: np.ndarray) -> _Rows:
        """The same rows (same released nodes) for other readings (P, N), e.g. two nodes' exchanged."""
        src, dst = network.edge_ends
        dv = volts[:, src] - volts[:, dst]  # (P, E)
        return _Rows(self.sign * dv[self.pats], self.pats, self.nodes, self.touch, self.sign)


def _kcl_rows(prob: Problem, volts: np.ndarray) -> _Rows:
    """The calibration's KCL rows (:func:`~labnet.experiments.calibration.kcl_system`) of readings (P, N)."""
    net = prob.network
    data = [PatternData(dict(pat), volts[p], None) for p, pat in enumerate(prob.patterns)]
    mat, _, where = kcl_system(net, data, use_currents=False)
    mat = mat.reshape(len(where), net.n_edges)
    pats = np.array([w[0] for w in where], dtype=np.int64)
    nodes = np.array([w[1] for w in where], dtype=np.int64)
    src, dst = net.edge_ends
    at_src, at_dst = src[None, :] == nodes[:, None], dst[None, :] == nodes[:, None]
    return _Rows(mat, pats, nodes, at_src | at_dst, at_src.astype(float) - at_dst)


class Fitter:
    """Fits hypotheses to one :class:`Problem` (the KCL rows of the readings as measured are built once)."""

    def __init__(self, prob: Problem) -> None:
        self.prob = prob
        self._rows = [_kcl_rows(prob, prob.voltages[v]) for v in range(prob.vectors.shape[0])]
        t = prob.part.tolerance
        self._sig_a = t / math.sqrt(3) if t > 0 else 0.05

    def fit(self, h: Hypothesis, voltages: np.ndarray | None = None, sigma: np.ndarray | None = None) -> Fit:
        """Weighted least squares of the model under ``h`` (module docstring) on the problem's
        readings, or on ``voltages`` (V, P, N; the same released nodes, e.g. corrected for the
        meter's loading in ``h``'s circuit), with a 1σ per reading ``sigma`` (V, P, N; default: the
        problem's ``sigma_v`` everywhere); columns are scaled to O(1): k/k_nom, a, current/k̄ (V), load/k̄."""
        prob, net = self.prob, self.prob.network
        e, n_v, n_pat = net.n_edges, prob.vectors.shape[0], len(prob.patterns)
        rows, volts = self._rows, prob.voltages
        if voltages is not None:
            volts = voltages
            rows = [r.with_voltages(net, volts[v]) for v, r in enumerate(rows)]
        if h.kind == "swapped_meter_channels":
            u, w = net.index[h.nodes[0]], net.index[h.nodes[1]]
            volts = volts.copy()
            volts[:, :, [u, w]] = volts[:, :, [w, u]]
            rows = [r.with_voltages(net, volts[v]) for v, r in enumerate(rows)]
            if sigma is not None:
                sigma = sigma.copy()
                sigma[:, :, [u, w]] = sigma[:, :, [w, u]]
        removed = set(h.edges) if h.kind in ("open_edge", "shorted_edge") else set()
        active = np.array([j for j in range(e) if j not in removed], dtype=np.int64)
        n_act = active.size
        chan = np.arange(e)  # chan[p]: the edge whose codes position p follows
        if h.kind == "swapped_edges":
            chan[list(h.edges)] = chan[list(h.edges[::-1])]
        codes = prob.vectors[:, chan]  # (V, E): the codes at each position
        k_nom = prob.k_nominal(codes)
        k_bar = float(np.mean(k_nom))
        n_k = n_v * n_act
        n_cols = n_k + n_act
        col_i = n_cols
        if h.kind == "shorted_edge":
            n_cols += n_v * n_pat
        col_g = n_cols if h.kind == "loaded_node" else -1
        n_cols += col_g >= 0
        act_mask = np.zeros(e, dtype=bool)
        act_mask[active] = True
        blocks, rhs, where = [], [], []
        row_info: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        gk = np.zeros(net.n_nodes)
        for i, g in prob.known_loads.items():
            gk[i] = g
        src, dst = net.edge_ends
        for v, r in enumerate(rows):
            kn = k_nom[v]
            big = np.zeros((r.mat.shape[0], n_cols))
            big[:, v * n_act:(v + 1) * n_act] = r.mat[:, active] * kn[active]
            ks = np.where(r.touch & act_mask, kn, 0.0)
            g_known = gk[r.nodes]  # declared loads: a known current g·V out of the row's node
            b_rows = -g_known * volts[v, r.pats, r.nodes]
            ksum = ks.sum(axis=1) + g_known
            if sigma is None:
                sig = prob.sigma_v * np.sqrt(ksum ** 2 + (ks**2).sum(axis=1))
            else:  # the row's node's reading error times every conductance, each neighbour's times its own
                s_v = sigma[v]
                s_self = s_v[r.pats, r.nodes]
                s_other = s_v[r.pats[:, None], np.where(src[None, :] == r.nodes[:, None], dst[None, :], src[None, :])]
                sig = np.sqrt((ksum * s_self) ** 2 + ((ks * s_other) ** 2).sum(axis=1))
            sig = np.where(sig > 0, sig, prob.sigma_v * k_bar)
            row_info.append((sig, ksum, s_v[r.pats, r.nodes] if sigma is not None else np.full(sig.size, prob.sigma_v),
                             r.nodes))
            if h.kind == "shorted_edge":
                j = h.edges[0]
                cols = col_i + v * n_pat + r.pats
                at_src, at_dst = r.nodes == src[j], r.nodes == dst[j]
                big[at_src, cols[at_src]] = k_bar
                big[at_dst, cols[at_dst]] = -k_bar
            if col_g >= 0:
                at = r.nodes == net.index[h.nodes[0]]
                big[at, col_g] = volts[v, r.pats[at], r.nodes[at]] * k_bar
            blocks.append(big / sig[:, None])
            rhs.append(b_rows / sig)
            where.append(np.stack([np.full(r.pats.size, v), r.pats, r.nodes], axis=1))
        where_all = np.concatenate(where) if where else np.zeros((0, 3), dtype=np.int64)
        n_data = where_all.shape[0]
        # part consistency (k/k_nom - a)/err = 0, tolerance prior (a - 1)/sig_a = 0, mean scale pinned
        err = prob.model_error(codes)[:, active]  # (V, n_act)
        cons = np.zeros((n_k, n_cols))
        rr = np.arange(n_k)
        cons[rr, rr] = 1.0 / err.ravel()
        cons[rr, n_k + np.tile(np.arange(n_act), n_v)] = -1.0 / err.ravel()
        prior = np.zeros((n_act, n_cols))
        prior[np.arange(n_act), n_k + np.arange(n_act)] = 1.0 / self._sig_a
        scale = np.zeros((1, n_cols))
        scale[0, n_k:n_k + n_act] = SCALE_WEIGHT / n_act
        mat_all = np.vstack(blocks + [cons, prior, scale])
        b_all = np.concatenate([*rhs, np.zeros(n_k), np.full(n_act, 1.0 / self._sig_a), [SCALE_WEIGHT]])
        x = scipy.linalg.lstsq(mat_all, b_all, lapack_driver="gelsy", check_finite=False)[0]
        g_used = 0.0
        for _ in range(LOAD_REWEIGHTS if col_g >= 0 else 0):  # the load's own share of its node's row error
            g = float(x[col_g] * k_bar)
            if not g > 0 or abs(g - g_used) <= 0.01 * g:
                break
            n_load = net.index[h.nodes[0]]
            scale_rows = np.concatenate([np.where(nodes == n_load, np.sqrt(
                (sig**2 + ((ksum + g_used) ** 2 - ksum**2) * s_self**2) / (sig**2 + ((ksum + g) ** 2 - ksum**2) * s_self**2)),
                1.0) for sig, ksum, s_self, nodes in row_info])
            mat_all[:n_data] *= scale_rows[:, None]
            b_all[:n_data] *= scale_rows
            g_used = g
            x = scipy.linalg.lstsq(mat_all, b_all, lapack_driver="gelsy", check_finite=False)[0]
        res = mat_all @ x - b_all
        chi2 = float(res @ res)
        if h.kind == "shorted_edge":  # a wire holds its two ends at one voltage: the readings must agree
            a_, b_ = net.edges[h.edges[0]]
            dv = volts[:, :, net.index[a_]] - volts[:, :, net.index[b_]]
            # where sources hold both ends the wire meets their current limits (not modelled): skipped
            both = np.array([{a_, b_} <= {*pat, net.ground} for pat in prob.patterns])
            ok = np.isfinite(dv) & ~both[None, :]
            sd = (np.hypot(sigma[:, :, net.index[a_]], sigma[:, :, net.index[b_]]) if sigma is not None
                  else np.full(dv.shape, math.sqrt(2) * prob.sigma_v))
            chi2 += float(np.sum((dv[ok] / sd[ok]) ** 2))
        extra = n_cols - n_cols_base(n_k, n_act)
        score = chi2 + (0.0 if h.kind == "as_wired" else FAULT_PENALTY + 2.0 * extra)
        a = np.full(e, np.nan)
        a[active] = x[n_k:n_k + n_act]
        load = float(x[col_g] * k_bar) if col_g >= 0 else math.nan
        if col_g >= 0 and not load > 0:
            score = math.inf
        k = np.full((n_v, e), np.nan)
        k[:, active] = x[:n_k].reshape(n_v, n_act) * k_nom[:, active]
        misfit = np.full(e, np.nan)
        misfit[active] = (res[n_data:n_data + n_k].reshape(n_v, n_act) ** 2).sum(axis=0)
        return Fit(h, chi2, score, mat_all.shape[0] - 1, n_cols, a, load_siemens=load, k=k, residuals=res[:n_data],
                   misfit=misfit, where=where_all)


def n_cols_base(n_k: int, n_act: int) -> int:
    """Columns of the model without extra unknowns: conductances and part scales."""
    return n_k + n_act


def fit_all(prob: Problem, hyps: Sequence[Hypothesis]) -> list[Fit]:
    """Every hypothesis fitted, best (lowest score) first."""
    fitter = Fitter(prob)
    return sorted((fitter.fit(h) for h in hyps), key=lambda f: f.score)


__all__ = ["FAULT_PENALTY", "KINDS", "Fit", "Fitter", "Hypothesis", "Problem", "fit_all", "hypotheses"]
