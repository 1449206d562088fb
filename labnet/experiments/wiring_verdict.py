"""From the wiring check's readings to findings: noise, meter loading, hypotheses, verdict.

:func:`judge` takes the raw scans of :func:`labnet.experiments.wiring_check.measure_wiring`,
estimates the meter noise from the repeated scans, undoes the meter's loading of released
nodes (calibration's :func:`~labnet.experiments.calibration.unload`, from the as-wired fit),
fits every single-fault hypothesis (:mod:`labnet.experiments.wiring_fit`) and names the best.

Verdict: the rig is **clean** when "as wired" scores best, its χ² is consistent with the noise,
and every driven node reads its setpoint. Otherwise the findings say what is wrong: the fault
that explains the readings best (with the runner-up and the score margin), driven nodes that do
not read their setpoints, and — when no single fault explains the readings — that the wiring
differs in a way the check cannot name, with the nodes of largest KCL residual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from labnet.core.network import Network
from labnet.core.parts import PartSpec
from labnet.experiments.calibration import PatternData, unload
from labnet.experiments.wiring_check import WiringData
from labnet.experiments.wiring_fit import KINDS, Fit, Fitter, Hypothesis, Problem, hypotheses

#: A driven node must read its setpoint within this fraction plus :data:`READBACK_ABS_V`.
READBACK_REL, READBACK_ABS_V = 0.01, 0.005
#: χ² of the best fit above this many times its degrees of freedom is "not explained by any
#: single fault" (noise and the parts' model error give about 1).
UNEXPLAINED_RATIO = 2.0
#: Swapped-digipot hypotheses tried: every pair among the :data:`SWAP_CANDIDATES` positions that
#: follow their own channel's codes worst in the as-wired fit, and every pair with one of the
#: :data:`SWAP_ANCHORS` worst (a swap puts its positions near the top; a soft direction of the
#: fit, such as a sourceless cluster, may spread the misfit of one of them onto its neighbours).
SWAP_CANDIDATES, SWAP_ANCHORS = 6, 3
#: Relative 1σ of the meter-loading correction of a reading (R_th from parts known to their
#: tolerance; much larger at a node hanging on one part whose current is zero, where nothing
#: determines that part).
LOADING_UNCERTAINTY = 0.1
#: Fitted/nominal conductance range used for the meter-loading correction (±tolerance and some).
KAPPA_CLIP = (0.75, 1.35)
#: Hypotheses of each kind fitted again on readings unloaded in their own circuit.
FINALISTS = 3
#: A load to ground is named only below this many times the largest nominal edge resistance of
#: the design (20 x 10 kOhm on sim16): a weaker load moves node voltages by a few per cent at most,
#: which is what the parts' model error and the meter's loading leave over.
MAX_LOAD_VS_EDGE = 20.0


@dataclass
class Finding:
    """One thing doctor reports: ``kind`` (a hypothesis kind, ``readback`` or ``unexplained``),
    a sentence, and machine-readable details."""

    kind: str
    text: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, **self.detail}


@dataclass
class WiringVerdict:
    """The wiring check's outcome: ``findings`` (empty: clean), the best fit and "as wired"."""

    findings: list[Finding]
    best: Fit
    as_wired: Fit
    ranked: list[Fit]
    node_residuals: dict[str, float]
    sigma_v: float
    network: Network

    @property
    def clean(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        def fit(f: Fit) -> dict[str, Any]:
            return {"hypothesis": f.hypothesis.text(self.network), "kind": f.hypothesis.kind,
                    "edges": list(f.hypothesis.edges), "nodes": list(f.hypothesis.nodes),
                    "chi2": round(f.chi2, 3), "score": round(f.score, 3), "rows": f.n_rows, "params": f.n_params}

        return {"clean": self.clean, "findings": [x.to_dict() for x in self.findings],
                "sigma_v": self.sigma_v, "node_residual_sigma": self.node_residuals,
                "best": fit(self.best), "as_wired": fit(self.as_wired), "ranked": [fit(f) for f in self.ranked[:5]]}


def noise_sigma(scans: np.ndarray, released: np.ndarray) -> float:
    """1σ (V) of a reading averaged over the S scans of ``scans`` (V, P, S, N), pooled over the
    released nodes (``released`` (V, P, N) bool) from the scan-to-scan spread."""
    s = scans.shape[2]
    if s < 2:
        return 2e-5
    var = np.nanvar(scans, axis=2, ddof=1)  # (V, P, N)
    v = var[released & np.isfinite(var)]
    sigma1 = math.sqrt(float(np.mean(v))) if v.size else 2e-5
    return max(sigma1 / math.sqrt(s), 1e-7)


def _readback(network: Network, prob: Problem, skip: frozenset[str] = frozenset()) -> list[Finding]:
    """Driven nodes that do not read their setpoints (nodes in ``skip``, e.g. behind an analog
    switch whose on-resistance drops part of the setpoint, are not checked)."""
    out = []
    for v in range(prob.voltages.shape[0]):
        for p, pat in enumerate(prob.patterns):
            for node, setv in pat.items():
                if node not in network.meter_channels or node in skip:
                    continue
                got = float(prob.voltages[v, p, network.index[node]])
                if not abs(got - setv) <= READBACK_REL * abs(setv) + READBACK_ABS_V:
                    out.append(Finding("readback", f"driven node {node} (meter channel "
                                       f"{network.meter_channels[node]}) reads {got:.4f} V, set to {setv:.4f} V",
                                       {"node": node, "read_v": got, "set_v": setv}))
    first: dict[str, Finding] = {}
    for f in out:  # one per node
        first.setdefault(f.detail["node"], f)
    return list(first.values())


def _problem(network: Network, part: PartSpec, data: WiringData, volts: np.ndarray, sigma: float) -> Problem:
    return Problem(network, part, data.design.vectors, [dict(p) for p in data.design.patterns], volts, sigma)


def _chan(h: Hypothesis, e: int) -> list[int]:
    """Which edge's codes each position follows under ``h``."""
    chan = list(range(e))
    if h.kind == "swapped_edges":
        a, b = h.edges
        chan[a], chan[b] = b, a
    return chan


def _circuit(prob: Problem, fit: Fit, v: int) -> tuple[Network, np.ndarray]:
    """The circuit a hypothesis describes at code vector ``v``: a network (the rig's, or with one
    edge to ground added for a loaded node that has none) and its conductances (S): the fitted
    ones clipped to :data:`KAPPA_CLIP` × nominal (the nominal ones for a fit without any). Clipped:
    fitted conductances have soft directions (a sourceless cluster against a parallel edge) that
    an unclipped correction would feed back into."""
    network, h = prob.network, fit.hypothesis
    codes = prob.vectors[v][_chan(h, network.n_edges)]
    k = prob.part.conductance(codes)
    if fit.k.size:  # fitted where it is determined, within the parts' tolerance of nominal
        kap = fit.k[v] / prob.part.conductance(prob.vectors[v][np.asarray(_chan(h, len(codes)))])
        k = k * np.clip(np.where(np.isfinite(kap), kap, 1.0), *KAPPA_CLIP)
    ref = float(np.median(k))
    if h.kind == "open_edge":
        k[h.edges[0]] = 1e-6 * ref
    elif h.kind == "shorted_edge":
        k[h.edges[0]] = 1e3 * ref
    loads = {network.nodes[i]: g for i, g in prob.known_loads.items()}
    if h.kind == "loaded_node" and fit.load_siemens > 0:
        loads[h.nodes[0]] = loads.get(h.nodes[0], 0.0) + fit.load_siemens
    if not loads:
        return network, k
    g0 = network.ground
    extra: list[tuple[str, float]] = []
    for node, g in loads.items():
        j = next((j for j, (a, b) in enumerate(network.edges) if {a, b} == {node, g0}), None)
        if j is None:
            extra.append((node, g))
        else:
            k[j] += g
    if not extra:
        return network, k
    d = network.to_dict()
    d["edges"] = [list(x) for x in network.edges] + [[n, g0] for n, _ in extra]
    d["edge_channels"] = list(network.edge_channels) + [max(network.edge_channels) + 1 + i for i in range(len(extra))]
    return Network.from_dict(d, file="<doctor>", key="network"), np.append(k, [g for _, g in extra])


def _unloaded(prob: Problem, raw: np.ndarray, fit: Fit, r_in_ohm: float) -> np.ndarray:
    """Readings ``raw`` (V, P, N) with the meter's loading undone in the circuit of ``fit`` (in
    measurement order: a meter-swap hypothesis's exchange is undone before and redone after)."""
    net = prob.network
    volts = raw.copy()
    swap = None
    if fit.hypothesis.kind == "swapped_meter_channels":
        swap = [net.index[n] for n in fit.hypothesis.nodes]
        volts[:, :, swap] = volts[:, :, swap[::-1]]
    for v in range(volts.shape[0]):
        circ, k = _circuit(prob, fit, v)
        volts[v] = unload_dense(circ, k, prob.patterns, volts[v], r_in_ohm)
    if swap is not None:
        volts[:, :, swap] = volts[:, :, swap[::-1]]
    return volts


def _free_groups(network: Network, patterns: list[dict[str, float]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Patterns grouped by their number of released nodes: (pattern indices (G,), released node indices (G, F))."""
    g = network.index[network.ground]
    free = [np.array([i for i in range(network.n_nodes) if i != g and network.nodes[i] not in pat], dtype=np.int64)
            for pat in patterns]
    out = []
    for size in sorted({f.size for f in free if f.size}):
        sel = np.array([p for p, f in enumerate(free) if f.size == size], dtype=np.int64)
        out.append((sel, np.stack([free[p] for p in sel])))
    return out


def unload_dense(network: Network, k: np.ndarray, patterns: list[dict[str, float]], volts: np.ndarray,
                 r_in_ohm: float) -> np.ndarray:
    """The calibration's meter-loading correction (:func:`labnet.experiments.calibration.unload`:
    V·(1 + R_th/R_in) at released nodes, R_th = diag(L_ff⁻¹) from conductances ``k`` (S)) for
    readings ``volts`` (P, N), with batched dense inverses: the wiring check's networks are small
    and it corrects many circuits. Above 200 nodes it calls ``unload`` itself."""
    if network.n_nodes > 200:
        pats = [PatternData(dict(p), volts[i], None) for i, p in enumerate(patterns)]
        return np.array([d.voltages for d in unload(network, k, pats, r_in_ohm)])
    n = network.n_nodes
    src, dst = network.edge_ends
    lap = np.zeros((n, n))
    np.add.at(lap, (src, src), k)
    np.add.at(lap, (dst, dst), k)
    np.add.at(lap, (src, dst), -k)
    np.add.at(lap, (dst, src), -k)
    out = volts.copy()
    for sel, idx in _free_groups(network, patterns):
        r_th = np.diagonal(np.linalg.inv(lap[idx[:, :, None], idx[:, None, :]]), axis1=1, axis2=2)  # (G, F)
        out[sel[:, None], idx] = volts[sel[:, None], idx] * (1.0 + r_th / r_in_ohm)
    return out


def _fit_unloaded(fitter: Fitter, fit: Fit, r_in_ohm: float) -> Fit:
    """``fit``'s hypothesis fitted on the readings unloaded in the circuit ``fit`` describes; each
    reading's 1σ is the noise and :data:`LOADING_UNCERTAINTY` of its correction in quadrature."""
    if not np.isfinite(fit.score):
        return fit
    raw = fitter.prob.voltages
    fixed = _unloaded(fitter.prob, raw, fit, r_in_ohm)
    sigma = np.hypot(fitter.prob.sigma_v, LOADING_UNCERTAINTY * np.nan_to_num(np.abs(fixed - raw)))
    return fitter.fit(fit.hypothesis, fixed, sigma)


def judge(network: Network, part: PartSpec, data: WiringData, *, meter_input_ohm: float = 10e6,
          finalists: int = FINALISTS, known_loads: dict[str, float] | None = None,
          switched: frozenset[str] = frozenset()) -> WiringVerdict:
    """Fit every hypothesis to ``data`` and say what is wrong (module docstring).

    The meter's loading is undone in each hypothesis's own circuit, in two stages: every
    hypothesis is fitted to readings unloaded in its circuit with nominal parts; the
    ``finalists`` best of each kind again, with the parts it fitted. ``known_loads`` (node ->
    S to ground while released: the rig file's off-states) are part of every hypothesis,
    "as wired" included; ``switched`` nodes (behind analog switches) skip the setpoint readback."""
    with threadpool_limits(1):  # small dense problems: BLAS threads cost more than they give
        return _judge(network, part, data, meter_input_ohm, finalists, known_loads or {}, switched)


def _judge(network: Network, part: PartSpec, data: WiringData, r_in: float, finalists: int,
           known_loads: dict[str, float], switched: frozenset[str]) -> WiringVerdict:
    design = data.design
    n_v, n_p = design.vectors.shape[0], len(design.patterns)
    released = np.ones((n_v, n_p, network.n_nodes), dtype=bool)
    for p, pat in enumerate(design.patterns):
        for node in [*pat, network.ground]:
            released[:, p, network.index[node]] = False
    sigma = noise_sigma(data.scans, released)
    raw = np.nanmean(data.scans, axis=2)
    prob = _problem(network, part, data, raw, sigma)
    prob.known_loads = {network.index[n]: float(g) for n, g in known_loads.items()}
    loading = r_in > 0 and math.isfinite(r_in)
    fitter = Fitter(prob)

    def first(h: Hypothesis) -> Fit:  # unloaded in h's circuit with nominal parts
        blank = Fit(h, 0.0, 0.0, 0, 0, np.ones(network.n_edges))
        return _fit_unloaded(fitter, blank, r_in) if loading else fitter.fit(h)

    aw0 = first(Hypothesis("as_wired"))
    # swapped digipots: the positions whose conductances follow their own channel's codes worst
    order = [int(j) for j in np.argsort(-np.nan_to_num(aw0.misfit, nan=0.0))]
    top, few = order[:SWAP_CANDIDATES], order[:SWAP_ANCHORS]
    pairs = [(a, b) for i, a in enumerate(top) for b in top[i + 1:]] + [(a, b) for a in few for b in order if b != a]
    fits = sorted((first(h) for h in hypotheses(network, pairs)), key=lambda f: f.score)
    min_load = 1.0 / (MAX_LOAD_VS_EDGE * float(part.resistance(data.design.vectors).max()))
    if loading:  # the best few of every kind, unloaded in their fitted circuit
        head = [f for kind in KINDS for f in [g for g in fits if g.hypothesis.kind == kind][:finalists]]
        rest = [f for f in fits if f not in head]
        fits = sorted([_fit_unloaded(fitter, f, r_in) for f in head] + rest, key=lambda f: f.score)
    for f in fits:
        if f.hypothesis.kind == "loaded_node" and not f.load_siemens > min_load:
            f.score = math.inf
    fits.sort(key=lambda f: f.score)
    best = fits[0]
    as_wired = next(f for f in fits if f.hypothesis.kind == "as_wired")
    res = as_wired.node_residuals(network.n_nodes)
    node_res = {n: round(float(res[i]), 3) for i, n in enumerate(network.nodes) if np.isfinite(res[i])}
    findings: list[Finding] = []
    if best.hypothesis.kind != "as_wired":
        runner = next((f for f in fits[1:]), None)
        margin = (runner.score - best.score) if runner is not None else math.inf
        detail: dict[str, Any] = {"edges": list(best.hypothesis.edges), "nodes": list(best.hypothesis.nodes),
                                  "chi2": round(best.chi2, 2), "chi2_as_wired": round(as_wired.chi2, 2),
                                  "margin": round(margin, 2),
                                  "runner_up": runner.hypothesis.text(network) if runner else None}
        text = best.hypothesis.text(network)
        if best.hypothesis.kind == "loaded_node" and best.load_siemens > 0:
            detail["load_ohm"] = round(1.0 / best.load_siemens, 1)
            text += f" through ~{1.0 / best.load_siemens:.3g} ohm (a released source that still loads it?)"
        if best.hypothesis.kind in ("swapped_meter_channels",):
            detail["channels"] = [network.meter_channels[n] for n in best.hypothesis.nodes]
        findings.append(Finding(best.hypothesis.kind, text, detail))
    readback = _readback(network, prob, switched)
    if best.hypothesis.kind == "as_wired":
        findings += readback
    dof = max(best.n_rows - best.n_params, 1)
    if best.chi2 > UNEXPLAINED_RATIO * dof:
        worst = sorted(node_res, key=lambda n: -node_res[n])[:3]
        findings.append(Finding("unexplained", f"the readings fit no single wiring fault well (chi2 {best.chi2:.0f} "
                                f"for {dof} degrees of freedom); largest KCL residuals at "
                                + ", ".join(f"{n} ({node_res[n]:.1f} sigma)" for n in worst),
                                {"chi2": round(best.chi2, 2), "dof": dof, "nodes": worst}))
    return WiringVerdict(findings, best, as_wired, fits, node_res, sigma, network)


__all__ = ["Finding", "WiringVerdict", "judge", "noise_sigma"]
