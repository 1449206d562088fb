"""Dense LAPACK solves for small networks (``method="dense"``).

Conductances are scattered straight into a dense [L_ff | −L_f,in] (one mat-vec or bincount),
L_ff is factorised by LAPACK ``dpotrf`` every step. The single-sample lean path factorises in
the reverse Cuthill–McKee band (``dpbtrf``, O(F·bw²)) from :data:`BAND_MIN` free nodes on when
the half-bandwidth is at most F/3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from scipy.linalg import lapack
from scipy.sparse.csgraph import reverse_cuthill_mckee

from labnet.insilico.strategy import SolveProblem, SolveStrategy, StepStats

_dpotrf, _dpotrs, _dpbtrf, _dpbtrs = lapack.get_lapack_funcs(("potrf", "potrs", "pbtrf", "pbtrs"), (np.zeros(1),))

#: Free-node count from which the single-sample dense path (no numba) factorises in the reverse
#: Cuthill–McKee band (LAPACK ``dpbtrf``, O(F·bw²)) when the half-bandwidth is at most F/3:
#: 256-edge lattice (137 free nodes, bw 11) ≈70 µs per step vs ≈110 µs with ``dpotrf``.
BAND_MIN = 64


class DenseSolve(SolveStrategy):
    """LAPACK Cholesky of the dense L_ff per step."""

    name: ClassVar[str] = "dense"
    d_free: np.ndarray

    def __init__(self, problem: SolveProblem) -> None:
        super().__init__(problem)
        red, n_in, n_edges = problem.red, problem.n_in, problem.network.n_edges
        self.backend = "dense"
        self.n_free = red.n_free
        self.d_free = red.d_free.toarray()
        # conductances -> [L_ff | L_f,in] in one dense product (F, F + n_in) flattened row-major
        # flat layout: [L_ff row-major (F·F) | −L_f,in row-major (F·n_in)] so that L_ff is one
        # contiguous block LAPACK can factorise without a copy
        flat_ff, edges_ff, sign_ff = red.dense_map
        rh, ch, eh = red.coupling_entries
        keep = ch >= 1
        flat_fh = red.n_free**2 + rh[keep] * n_in + ch[keep] - 1
        rows = np.concatenate([flat_ff, flat_fh])
        cols = np.concatenate([edges_ff, eh[keep]])
        vals = np.concatenate([sign_ff, np.ones(int(keep.sum()))])  # input block holds −L_f,in
        size = red.n_free * (red.n_free + n_in)
        self.assemble: Callable[[np.ndarray], np.ndarray]
        if size * n_edges <= 40_000:  # tiny: one dense mat-vec beats a scatter
            amap = np.zeros((size, n_edges))
            np.add.at(amap, (rows, cols), vals)
            self.assemble = amap.__matmul__
        else:
            self.assemble = lambda k: np.bincount(rows, weights=k[cols] * vals, minlength=size)
        self._rhs1 = np.zeros((red.n_free, 1 + problem.n_out), order="F")
        self._rhs1[:, 1:] = problem.e_out
        #: Index maps of the single-sample band path, or None (narrow network or wide band).
        self.band = self._band_setup() if red.n_free >= BAND_MIN else None

    def split(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """L_ff (F, F) as a Fortran-contiguous view (it is symmetric) and −L_f,in (F, n_in)."""
        f = self.n_free
        return flat[: f * f].reshape(f, f).T, flat[f * f :].reshape(f, self.problem.n_in)

    def responses(self, k: np.ndarray, combos: np.ndarray, stats: StepStats) -> tuple[np.ndarray, np.ndarray]:
        f, c = self.n_free, combos.shape[1]
        lff, lfi = self.split(self.assemble(k))
        rhs = np.empty((f, c + self.problem.n_out), order="F")
        rhs[:, :c] = lfi @ combos
        rhs[:, c:] = self.problem.e_out
        fac, info = lapack.dpotrf(lff, lower=1, clean=0, overwrite_a=1)
        if info:
            raise np.linalg.LinAlgError(f"reduced Laplacian not positive definite (dpotrf info={info})")
        x, info = lapack.dpotrs(fac, rhs, lower=1)
        stats.factorisations += 1
        return x[:, :c], x[:, c:]

    def single(self, k: np.ndarray, x_in: np.ndarray, stats: StepStats) -> tuple[np.ndarray, np.ndarray]:
        """The sample's own right-hand side and the output columns in one LAPACK solve (band or
        full Cholesky); drops by one dense product."""
        stats.factorisations += 1
        band = self.band
        if band is not None:  # Cholesky in the reverse Cuthill–McKee band
            f, bw = self.n_free, band["bw"]
            ab = np.bincount(band["flat"], weights=k[band["edges"]] * band["sign"], minlength=(bw + 1) * f)
            rhs = band["rhs"]
            rhs[:, 0] = np.bincount(band["in_rows"], weights=k[band["in_edges"]] * x_in[band["in_cols"]],
                                    minlength=f)
            c, info = _dpbtrf(ab.reshape(bw + 1, f, order="F"), lower=1, overwrite_ab=1)
            if info:
                raise np.linalg.LinAlgError(f"reduced Laplacian not positive definite (dpbtrf info={info})")
            x, _ = _dpbtrs(c, rhs, lower=1)
            return band["d_free"] @ x, x[band["out"]]
        lff, lfi = self.split(self.assemble(k))
        rhs = self._rhs1
        rhs[:, 0] = lfi @ x_in
        c, info = _dpotrf(lff, lower=1, clean=0, overwrite_a=1)
        if info:
            raise np.linalg.LinAlgError(f"reduced Laplacian not positive definite (dpotrf info={info})")
        x, _ = _dpotrs(c, rhs, lower=1)
        return self.d_free @ x, x[self.problem.out_pos]  # (E, 1 + n_out): drops of V_f and of each Z column

    def _band_setup(self) -> dict[str, Any] | None:
        """Index maps of the single-sample path in the reverse Cuthill–McKee band, or None if the band is wide."""
        p = self.problem
        red, f, network = p.red, self.n_free, p.network
        free = red.free_idx
        sub = network.adjacency[free][:, free].tocsr()
        order = reverse_cuthill_mckee(sub, symmetric_mode=True)
        inv = np.empty(f, dtype=np.int64)
        inv[order] = np.arange(f)
        flat_ff, edges_ff, sign_ff = red.dense_map
        r, c = inv[flat_ff // f], inv[flat_ff % f]
        bw = int(np.max(np.abs(r - c), initial=0))
        if bw > f // 3:
            return None
        low = r >= c  # LAPACK lower band storage, Fortran order: ab[r − c, c] at (r − c) + c·(bw + 1)
        rh, ch, eh = red.coupling_entries
        keep = ch >= 1
        rhs = np.zeros((f, 1 + p.n_out), order="F")
        rhs[inv[p.out_pos], 1 + np.arange(p.n_out)] = 1.0
        return {
            "bw": bw,
            "flat": (r - c)[low] + c[low] * (bw + 1),
            "edges": edges_ff[low],
            "sign": sign_ff[low],
            "in_rows": inv[rh[keep]],
            "in_edges": eh[keep],
            "in_cols": ch[keep] - 1,
            "d_free": np.ascontiguousarray(self.d_free[:, order]),
            "out": inv[p.out_pos],
            "rhs": rhs,
        }
