"""``method="auto"``: which solve strategy a network gets, from a cost model of its structure.

Fixed free-node thresholds were wrong for some graphs (1,024-edge Delaunay: the dense path was
picked although a sparse refactorisation is ~3× faster). Instead, at construction the trainer
measures the network's structure — cheap, deterministic, no timing — and predicts the time
per step of each strategy:

* F free nodes, E edges, the half-bandwidth ``bw`` of L_ff after reverse Cuthill–McKee;
* the column counts c_j of the sparse factor of L_ff under the back end's fill-reducing
  ordering (one symbolic + numeric factorisation with QDLDL, else SuperLU), hence
  nnz(L) = Σ c_j and the factorisation's flops Σ c_j²;
* the right-hand sides per solve, ``cols`` = distinct input patterns + outputs.

Each strategy's cost is ``overhead + work × seconds_per_flop``, the work counted in flops by
:func:`work` (dense: LAPACK ``potrf`` F³/3, or the band Cholesky F·bw² for single samples,
plus the dense drops E·F·cols; direct: Σ c_j² + solves; PCG: ≈1.5 iterations of solves and
mat-vecs, the warm start's Gram products and a refresh every ~10 steps). The two constants of
every strategy (:data:`COSTS`) were fitted by ``python benchmarks/bench_methods.py --fit`` on
Delaunay and lattice networks of 60–16k edges and two tasks, every method timed interleaved on
a 2-core machine (``benchmarks/results-methods-2026-12-03.txt``; CHOLMOD's constants are
QDLDL's: not installable as a wheel, not measured). The choice is deterministic for a network
(reruns and sweep workers get the same method), and the predicted times are kept on the
trainer (``CoupledLearning.choice``) so a wrong choice can be seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import reverse_cuthill_mckee

from labnet.core.solvers import HAVE_QDLDL, ReducedLaplacian

#: Up to this many free nodes the dense path is taken without looking further (it wins by a
#: wide margin there: 27–69 free nodes, 0.02–0.07 ms per step vs ≥ 0.08 ms sparse).
ALWAYS_DENSE = 48
#: Above this many free nodes the dense path is not considered (an F × F matrix per step).
NEVER_DENSE = 3000
#: PCG's warm start combines this many past solutions (the trainer's default ``history``).
HISTORY = 8

#: (overhead s, s per flop) of each cost model, fitted by ``benchmarks/bench_methods.py --splu
#: --fit`` (2026-12-03, 2 cores at load average 3–4, after the sparse strategies got the lean
#: one-sample step: ``benchmarks/results-methods-2026-12-03.txt``; only the ratios matter).
#: ``kernel`` (numba, not installed where the fit ran) is scaled from the documented
#: 255/256-edge kernel times (benchmarks/README.md: 0.028 / 0.023 ms) by the ratio of the band
#: prediction at 255 edges of this fit to that of the 2026-12-02 fit (0.68).
COSTS: dict[str, tuple[float, float]] = {
    "dense": (2.7e-05, 4.8e-11),
    "band": (2.1e-05, 1.4e-10),
    "kernel": (2.7e-06, 5.8e-10),
    "direct/qdldl": (3.7e-05, 6.6e-10),
    "direct/cholmod": (3.7e-05, 6.6e-10),
    "direct/splu": (6.7e-05, 3.3e-09),
    "pcg/qdldl": (1.2e-04, 2.5e-10),
    "pcg/cholmod": (1.2e-04, 2.5e-10),
    "pcg/splu": (1.7e-04, 3.5e-10),
}


@dataclass(frozen=True)
class Structure:
    """What the cost model reads off a network (see the module docstring)."""

    n_free: int
    n_edges: int
    nnz_lap: int
    bandwidth: int
    nnz_factor: int = 0
    flops_factor: float = 0.0


@dataclass
class Choice:
    """The strategy ``method="auto"`` picked, and the predicted seconds per step of each
    candidate (``estimates``: model name → s)."""

    method: str
    structure: Structure
    estimates: dict[str, float] = field(default_factory=dict)


def bandwidth(red: ReducedLaplacian) -> int:
    """Half-bandwidth of L_ff after reverse Cuthill–McKee (the band path's and kernel's bw)."""
    free = red.free_idx
    sub = red.network.adjacency[free][:, free].tocsr()
    if sub.nnz == 0:
        return 0
    order = reverse_cuthill_mckee(sub, symmetric_mode=True)
    inv = np.empty(red.n_free, dtype=np.int64)
    inv[order] = np.arange(red.n_free)
    coo = sub.tocoo()
    return int(np.max(np.abs(inv[coo.row] - inv[coo.col])))


def factor_counts(lap: sp.csc_matrix) -> np.ndarray:
    """Column counts (n,) of the sparse Cholesky factor of ``lap`` (diagonal included) under
    QDLDL's AMD ordering (SuperLU's MMD(AᵀA+A) when QDLDL is absent)."""
    if HAVE_QDLDL:
        import qdldl

        low = qdldl.Solver(sp.triu(lap, format="csc"), upper=True).factors()[0]
        return np.diff(sp.csc_matrix(low).indptr) + 1
    lu = spla.splu(lap, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    return np.diff(sp.csc_matrix(lu.L).indptr)


def structure(red: ReducedLaplacian, sparse: bool = True) -> Structure:
    """The :class:`Structure` of a reduced Laplacian (``sparse``: also the factor's counts)."""
    s = Structure(red.n_free, red.network.n_edges, red.nnz, bandwidth(red))
    if not sparse or red.n_free == 0:
        return s
    rng = np.random.default_rng(0)  # the pattern is what matters; any positive conductances
    counts = factor_counts(red.matrix(rng.uniform(1.0, 2.0, red.network.n_edges))).astype(float)
    return Structure(s.n_free, s.n_edges, s.nnz_lap, s.bandwidth, int(counts.sum()), float(np.sum(counts**2)))


def work(model: str, s: Structure, cols: int, n_in: int) -> float:
    """Flops of one training step under cost model ``model`` (a key of :data:`COSTS`) with
    ``cols`` right-hand sides per solve (``n_in`` inputs: the assembly of L_f,in)."""
    f, e, bw = float(s.n_free), float(s.n_edges), float(s.bandwidth)
    drops = 2.0 * e * (cols + 1)  # sparse D_f products and the update
    if model == "dense":
        return f**3 / 3.0 + 2.0 * f * f * cols + 2.0 * e * f * cols + f * f
    if model in ("band", "kernel"):
        return f * bw * bw + 4.0 * f * bw * cols + 2.0 * e * f * (cols if model == "band" else 0.0) + drops
    solve = 4.0 * s.nnz_factor * cols
    assemble = 2.0 * s.nnz_lap + 2.0 * e * n_in
    if model.startswith("direct"):
        return s.flops_factor + solve + assemble + drops
    h = HISTORY * cols  # the warm start's columns
    gram = 2.0 * s.nnz_lap * h + 2.0 * h * h * f
    return 1.5 * (solve + 2.0 * s.nnz_lap * cols) + gram + 0.1 * s.flops_factor + assemble + drops


def predict(model: str, s: Structure, cols: int, n_in: int) -> float:
    """Predicted seconds per step under ``model`` (:data:`COSTS`)."""
    overhead, per_flop = COSTS[model]
    return overhead + per_flop * work(model, s, cols, n_in)


def choose(red: ReducedLaplacian, *, backend: str, cols: int, n_in: int, single: bool, kernel: bool,
           band_min: int, kernel_max: int) -> Choice:
    """The strategy for ``method="auto"``: the cheapest predicted of dense / direct / PCG.

    ``single``: every step is one sample (the dense path's band Cholesky applies);
    ``kernel``: the compiled small-network kernel is available for full-batch steps;
    ``band_min``/``kernel_max``: the dense path's band and kernel size limits.
    """
    f = red.n_free
    if f <= ALWAYS_DENSE:
        return Choice("dense", Structure(f, red.network.n_edges, red.nnz, 0))
    s = structure(red)
    est: dict[str, float] = {}
    if f <= NEVER_DENSE:
        if kernel and f <= kernel_max:
            dense_model = "kernel"
        elif single and f >= band_min and s.bandwidth <= f // 3:
            dense_model = "band"
        else:
            dense_model = "dense"
        est[dense_model] = predict(dense_model, s, cols, n_in)
    for m in ("direct", "pcg"):
        key = f"{m}/{backend}"
        est[key] = predict(key if key in COSTS else f"{m}/qdldl", s, cols, n_in)
    best = min(est, key=est.__getitem__)
    method = best.split("/")[0]
    return Choice("dense" if method in ("band", "kernel") else method, s, est)
