"""The calibration's sweep design and measurements: source patterns, edge groups, code vectors.

* :func:`source_patterns` / :func:`scaled_pattern`: which nodes are driven, at what voltage;
* :func:`choose_groups` / :func:`sweep_design`: which code vectors are measured (checked for
  identifiability on the nominal model before anything is applied);
* :func:`measure_patterns` / :func:`estimate_noise`: measuring on an open rig.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from labnet.bench.rig import Rig
from labnet.core.network import Network
from labnet.core.physics import Solver, edge_currents
from labnet.experiments.calibration.fit import PatternData, joint_system


def default_codes(code_min: int, code_max: int, n: int = 6) -> tuple[int, ...]:
    """``n`` codes spread evenly over [code_min, code_max] (ends included)."""
    return tuple(int(c) for c in np.unique(np.rint(np.linspace(code_min, code_max, n)).astype(int)))


def source_patterns(network: Network, pairs: bool = True) -> list[dict[str, float]]:
    """Unit-amplitude patterns (node -> relative voltage): each source node alone at 1, and
    (``pairs``) each at 1 with the next source node held at 0. Ground is always at 0 V."""
    nodes = [n for n in network.nodes if n in network.source_channels]
    pats: list[dict[str, float]] = [{n: 1.0} for n in nodes]
    if pairs and len(nodes) > 1:
        pats += [{a: 1.0, b: 0.0} for a, b in zip(nodes, nodes[1:] + nodes[:1])]
    return pats


def scaled_pattern(rig: Rig, pattern: Mapping[str, float], fraction: float) -> dict[str, float]:
    """Scale a unit pattern so the predicted largest edge current is ``fraction`` of the limit
    (and no source exceeds its voltage limit). Predicts with the rig's model at its present codes."""
    k = rig.conductances()
    v = Solver(rig.network, k, list(pattern)).solve(dict(pattern))
    i = float(np.max(np.abs(edge_currents(rig.network, k, v))))
    amp = fraction * rig.limits.max_edge_current_a / i if i > 0 else 1.0
    for n, val in pattern.items():
        if val != 0:
            amp = min(amp, rig.limits.channel_limit(rig.network.source_channels[n]) / abs(val))
    out = {n: float(val * amp) for n, val in pattern.items()}
    rig.check_pattern(out)
    return out


def measure_patterns(rig: Rig, patterns: Sequence[Mapping[str, float]], *, scans: int, settle_s: float,
                     log: Any = None, step: int = 0) -> list[PatternData]:
    """Apply each pattern, settle, average ``scans`` meter scans; read source currents if possible.

    ``log(row)`` (optional) receives one dict per pattern for the session CSV.
    """
    out = []
    for p_i, pat in enumerate(patterns):
        rig.apply(pat)
        rig.settle(settle_s)
        v = np.mean([rig.measure() for _ in range(scans)], axis=0)
        cur = rig.read_source_currents(list(pat))
        out.append(PatternData(dict(pat), v, None if cur is None else np.asarray(cur, float)))
        if log is not None:
            row: dict[str, Any] = {"bench_s": rig.clock.now(), "step": step, "pattern": p_i}
            row.update({f"set_{n}": v_ for n, v_ in pat.items()})
            row.update({f"v_{n}": float(x) for n, x in zip(rig.network.nodes, v)})
            if cur is not None:
                row.update({f"i_{n}": float(c) for n, c in zip(pat, cur)})
            row.update({f"code_e{j}": int(c) for j, c in enumerate(rig.codes)})
            log(row)
    rig.safe_state()
    return out


def sweep_design(n_edges: int, sweep: np.ndarray, base: int, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Code vectors (V, E): all edges at ``base``, then for each group and each sweep code ≠ base
    the group at that code while every other edge holds ``base``."""
    vecs = [np.full(n_edges, base)]
    for g in groups:
        for c in sweep:
            if c == base:
                continue
            v = np.full(n_edges, base)
            v[list(g)] = c
            vecs.append(v)
    return np.array(vecs, dtype=np.int64)


def choose_groups(network: Network, model: Any, sweep: np.ndarray, base: int, patterns: Sequence[Mapping[str, float]],
                  rng: np.random.Generator, n_groups: int = 2, tries: int = 20) -> list[list[int]]:
    """A partition of the edges into ``n_groups`` whose sweep design is fully identifiable.

    Checked before touching the bench: the whole design is simulated with the nominal
    ``model`` (noise-free), and a partition whose joint least-squares system has a rank
    deficit is rejected. Falls back to one edge per group (always identifiable where anything is).
    """
    e = network.n_edges
    cand = [[list(range(g, e, n_groups)) for g in range(n_groups)]]
    for _ in range(tries):
        perm = rng.permutation(e)
        cand.append([sorted(int(x) for x in perm[g::n_groups]) for g in range(n_groups)])
    cand.append([[j] for j in range(e)])
    for groups in cand:
        design = sweep_design(e, sweep, base, groups)
        measured = []
        for codes in design:
            k = model.conductance(codes)
            data = []
            for pat in patterns:
                v = Solver(network, k, list(pat)).solve(dict(pat))
                inj = network.laplacian(k) @ v
                data.append(PatternData(dict(pat), v, np.array([inj[network.index[n]] for n in pat])))
            measured.append((codes, data))
        mat, _, _, keys = joint_system(network, measured, use_currents=False)
        mat = mat / np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-300)
        sv = np.linalg.svd(mat, compute_uv=False)
        if int(np.sum(sv > sv[0] * 1e-9)) == len(keys) - 1:  # only the global scale is free
            return groups
    return cand[-1]


def estimate_noise(rig: Rig, pattern: Mapping[str, float], settle_s: float, n: int = 8) -> float:
    """1σ of one meter reading (V): pooled std of ``n`` repeated scans of one pattern."""
    rig.apply(pattern)
    rig.settle(settle_s)
    v = np.array([rig.measure() for _ in range(n)])
    rig.safe_state()
    sd = np.nanstd(v, axis=0, ddof=1)
    sd = sd[np.isfinite(sd) & (sd > 0)]
    return float(np.sqrt(np.mean(sd**2))) if sd.size else 1e-6
