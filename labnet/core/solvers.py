"""Linear-algebra back ends of the Kirchhoff solve: reduced-Laplacian assembly, factorisations, PCG.

Everything here works on the *reduced* Laplacian L_ff (free nodes only) of a network with a
fixed set of held nodes. Its sparsity pattern never changes while conductances do, so

* :class:`ReducedLaplacian` precomputes the pattern once and assembles L_ff (and the coupling
  L_fh to the held nodes) from conductances with one sparse mat-vec (no COO → CSC conversion);
* :class:`SparseCholesky` does the fill-reducing ordering and symbolic analysis once and only a
  numeric refactorisation per change of conductances — with CHOLMOD (scikit-sparse, the
  optional ``fast`` extra) when it is installed, else QDLDL (a dependency, wheels on PyPI:
  AMD ordering + simplicial LDLᵀ, numeric-only ``update``), else SciPy's SuperLU in symmetric
  mode (which redoes its ordering every time: no numeric-only refactorisation);
* :func:`block_pcg` solves many right-hand sides at once with conjugate gradients
  preconditioned by a (possibly stale) factorisation — the way to go *below* one
  factorisation per step while conductances drift slowly.

Units: conductances in siemens, voltages in volts, currents in amperes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from labnet.core.network import Network

try:  # optional: `pip install labnet[fast]`
    from sksparse.cholmod import analyze as _cholmod_analyze

    HAVE_CHOLMOD = True
except ImportError:  # pragma: no cover - depends on the environment
    _cholmod_analyze = None
    HAVE_CHOLMOD = False

try:  # a dependency (pyproject); the SciPy fallback stays for environments without it
    import qdldl as _qdldl

    HAVE_QDLDL = True
except ImportError:  # pragma: no cover - depends on the environment
    _qdldl = None
    HAVE_QDLDL = False

#: Back end used by default for sparse factorisations: ``"cholmod"``, ``"qdldl"`` or ``"splu"``.
#: QDLDL vs SuperLU, refactorisation + 3-column solve of the reduced Laplacian of a Delaunay
#: network: 4,097 edges 0.53–0.67 ms vs 2.3–2.7 ms, 16,385 edges 3.5–4.2 ms vs 15–31 ms
#: (``benchmarks/bench_cholesky.py``).
DEFAULT_BACKEND = "cholmod" if HAVE_CHOLMOD else ("qdldl" if HAVE_QDLDL else "splu")
BACKENDS = ("cholmod", "qdldl", "splu")


class ReducedLaplacian:
    """Pattern of the reduced Laplacian of ``network`` with nodes ``held_idx`` held.

    Parameters
    ----------
    network : Network
    held_idx : array of int, shape (H,)
        Indices (into ``network.nodes``) of the held nodes, ground included.

    Attributes
    ----------
    free_idx : array of int, shape (F,)
        Indices of the free nodes, in increasing order (row order of L_ff).
    d_free : csr_matrix, shape (E, F)
        The incidence matrix restricted to free-node columns.
    d_held : csr_matrix, shape (E, H)
        The incidence matrix restricted to held-node columns.
    """

    def __init__(self, network: Network, held_idx: Sequence[int] | np.ndarray) -> None:
        self.network = network
        self.held_idx = np.asarray(held_idx, dtype=np.int64)
        mask = np.ones(network.n_nodes, dtype=bool)
        mask[self.held_idx] = False
        self.free_idx = np.flatnonzero(mask)
        self.n_free = int(self.free_idx.size)
        pos = -np.ones(network.n_nodes, dtype=np.int64)
        pos[self.free_idx] = np.arange(self.n_free)
        hpos = -np.ones(network.n_nodes, dtype=np.int64)
        hpos[self.held_idx] = np.arange(self.held_idx.size)
        self.free_pos = pos
        self.held_pos = hpos
        inc = network.incidence.tocsc()
        self.d_free: sp.csr_matrix = inc[:, self.free_idx].tocsr()
        self.d_held: sp.csr_matrix = inc[:, self.held_idx].tocsr()
        src, dst = network.edge_ends
        e = np.arange(network.n_edges)
        # entries of L_ff: (row, col, edge, sign) for every edge with free ends
        rows, cols, edges, signs = [], [], [], []
        for a, b in ((src, dst), (dst, src)):
            fa, fb = pos[a], pos[b]
            m = fa >= 0
            rows.append(fa[m])
            cols.append(fa[m])
            edges.append(e[m])
            signs.append(np.ones(int(m.sum())))
            m2 = m & (fb >= 0)
            rows.append(fa[m2])
            cols.append(fb[m2])
            edges.append(e[m2])
            signs.append(-np.ones(int(m2.sum())))
        r, c, ed, sg = (np.concatenate(x) for x in (rows, cols, edges, signs))
        key = c * max(self.n_free, 1) + r  # column-major: CSC order
        uniq, inv = np.unique(key, return_inverse=True)
        self.nnz = int(uniq.size)
        self.indices = (uniq % max(self.n_free, 1)).astype(np.int32)
        colv = uniq // max(self.n_free, 1)
        self.indptr = np.searchsorted(colv, np.arange(self.n_free + 1)).astype(np.int32)
        #: sparse map conductances (E,) -> CSC data of L_ff (nnz,)
        self.data_map = sp.csr_matrix((sg, (inv, ed)), shape=(self.nnz, network.n_edges))
        # flat dense map for small systems: conductances -> L_ff.ravel() (row-major)
        self._dense_flat = r * self.n_free + c
        self._dense_edges = ed
        self._dense_sign = sg
        # L_fh entries: edges with one free and one held end
        rows_h, cols_h, edges_h = [], [], []
        for a, b in ((src, dst), (dst, src)):
            m = (pos[a] >= 0) & (hpos[b] >= 0)
            rows_h.append(pos[a][m])
            cols_h.append(hpos[b][m])
            edges_h.append(e[m])
        rh, ch, eh = (np.concatenate(x) for x in (rows_h, cols_h, edges_h))
        self._fh = (rh, ch, eh)
        #: sparse map conductances (E,) -> L_fh as a dense (F, H) array, row-major flattened
        self.fh_map = sp.csr_matrix(
            (-np.ones(rh.size), (rh * self.held_idx.size + ch, eh)), shape=(self.n_free * self.held_idx.size, network.n_edges)
        )
        self._fh_flat = rh * self.held_idx.size + ch

    @property
    def dense_map(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(flat index into L_ff.ravel(), edge, sign ±1) per entry: L_ff = scatter of sign·k[edge]."""
        return self._dense_flat, self._dense_edges, self._dense_sign

    @property
    def coupling_entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(free row, held column, edge) of every edge with one free and one held end:
        L_fh[row, column] −= k[edge]."""
        return self._fh

    def data(self, conductances: np.ndarray) -> np.ndarray:
        """CSC data array of L_ff (nnz,) for conductances (E,) in S."""
        return self.data_map @ conductances

    def matrix(self, conductances: np.ndarray) -> sp.csc_matrix:
        """L_ff as a CSC matrix, shape (F, F), in S."""
        m = sp.csc_matrix((self.data(conductances), self.indices, self.indptr), shape=(self.n_free, self.n_free))
        m.has_sorted_indices = True
        return m

    def dense(self, conductances: np.ndarray) -> np.ndarray:
        """L_ff as a dense array, shape (F, F), in S."""
        k = np.asarray(conductances, dtype=float)
        flat = np.bincount(self._dense_flat, weights=k[self._dense_edges] * self._dense_sign, minlength=self.n_free**2)
        return flat.reshape(self.n_free, self.n_free)

    def coupling(self, conductances: np.ndarray) -> np.ndarray:
        """L_fh as a dense array, shape (F, H), in S (non-positive entries)."""
        k = np.asarray(conductances, dtype=float)
        flat = np.bincount(self._fh_flat, weights=-k[self._fh[2]], minlength=self.n_free * self.held_idx.size)
        return flat.reshape(self.n_free, self.held_idx.size)


class SparseCholesky:
    """Factorisation of a sparse SPD matrix whose pattern is fixed; numeric refactorisation only.

    Parameters
    ----------
    matrix : csc_matrix, shape (n, n)
        The first matrix; its pattern is analysed once (fill-reducing ordering).
    backend : {"cholmod", "qdldl", "splu"}, optional
        CHOLMOD (needs scikit-sparse), QDLDL (the ``qdldl`` wheel) or SciPy's SuperLU. Default:
        :data:`DEFAULT_BACKEND`. QDLDL factorises the upper triangle; its entries are picked
        from the CSC data by a mask computed once from the first matrix's pattern.
    mode : {"auto", "simplicial", "supernodal"}
        CHOLMOD's factorisation kind. ``auto`` times one numeric factorisation of each kind
        (matrices above 2,000 rows; simplicial below) and keeps the faster: on the planar
        networks of labnet simplicial wins (65k-edge Delaunay: ≈22 ms vs ≈38 ms here).
    """

    def __init__(self, matrix: sp.csc_matrix, backend: str | None = None, mode: str = "auto") -> None:
        self.backend = backend or DEFAULT_BACKEND
        self.mode = ""
        if self.backend == "cholmod":
            if not HAVE_CHOLMOD:
                raise RuntimeError("backend 'cholmod' needs scikit-sparse (pip install labnet[fast])")
            modes = ["simplicial", "supernodal"] if mode == "auto" and matrix.shape[0] > 2000 else [
                "simplicial" if mode == "auto" else mode
            ]
            best = np.inf
            for m in modes:
                symbolic = _cholmod_analyze(matrix, mode=m, ordering_method="default")
                factor = symbolic.cholesky(matrix)
                dt = np.inf
                for _ in range(3 if len(modes) > 1 else 0):  # best of 3: the machine may be busy
                    t0 = time.thread_time()
                    factor.cholesky_inplace(matrix)
                    dt = min(dt, time.thread_time() - t0)
                if dt < best or not hasattr(self, "_factor"):
                    best, self._factor, self.mode = dt, factor, m
        elif self.backend == "qdldl":
            if not HAVE_QDLDL:
                raise RuntimeError("backend 'qdldl' needs the qdldl package (pip install qdldl)")
            self._upper_setup(matrix)
            self._ldl = _qdldl.Solver(self._upper(matrix), upper=True)
        elif self.backend == "splu":
            self._lu = self._splu(matrix)
        else:
            raise ValueError(f"unknown backend {self.backend!r} (expected one of {BACKENDS})")
        self.n_factorisations = 1

    @staticmethod
    def _splu(matrix: sp.csc_matrix) -> spla.SuperLU:
        return spla.splu(matrix, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})

    def _upper_setup(self, matrix: sp.csc_matrix) -> None:
        """The upper triangle's positions in the CSC data of ``matrix``'s (fixed) pattern."""
        m = sp.csc_matrix(matrix)
        m.sort_indices()
        cols = np.repeat(np.arange(m.shape[1]), np.diff(m.indptr))
        keep = m.indices <= cols
        self._up_mask = keep
        self._up_indices = m.indices[keep]
        self._up_indptr = np.concatenate([[0], np.cumsum(np.bincount(cols[keep], minlength=m.shape[1]))]).astype(m.indptr.dtype)
        self._up_n = m.shape[0]

    def _upper(self, matrix: sp.csc_matrix) -> sp.csc_matrix:
        """The upper triangle of ``matrix`` (analysed pattern) in one reused CSC object: only its
        data array is replaced (no format checks per step)."""
        if not matrix.has_sorted_indices:
            matrix = matrix.sorted_indices()
        up = getattr(self, "_up", None)
        if up is None:
            up = self._up = sp.csc_matrix((matrix.data[self._up_mask], self._up_indices, self._up_indptr),
                                          shape=(self._up_n, self._up_n))
        else:
            up.data = matrix.data[self._up_mask]
        return up

    @property
    def upper_mask(self) -> np.ndarray | None:
        """(nnz,) bool: which entries of the analysed matrix's (sorted) CSC data are its upper
        triangle — what :meth:`refactor_upper` takes — or None for backends that take the whole matrix."""
        return self._up_mask if self.backend == "qdldl" else None

    def refactor_upper(self, data: np.ndarray) -> None:
        """New numeric factorisation from the upper triangle's CSC data only (``upper_mask``
        entries, in order): skips building the whole matrix and cutting it (QDLDL only)."""
        if self.backend != "qdldl":
            raise ValueError(f"refactor_upper needs the qdldl backend, not {self.backend!r}")
        if getattr(self, "_up", None) is None:
            self._up = sp.csc_matrix((data, self._up_indices, self._up_indptr), shape=(self._up_n, self._up_n))
        else:
            self._up.data = data
        self._ldl.update(self._up, upper=True)
        self.n_factorisations += 1

    def refactor(self, matrix: sp.csc_matrix) -> None:
        """New numeric factorisation of a matrix with the analysed pattern."""
        if self.backend == "cholmod":
            self._factor.cholesky_inplace(matrix)
        elif self.backend == "qdldl":
            self._ldl.update(self._upper(matrix), upper=True)
        else:
            self._lu = self._splu(matrix)  # SuperLU has no public numeric-only refactorisation
        self.n_factorisations += 1

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """A⁻¹ · rhs for rhs of shape (n,) or (n, m)."""
        if self.backend == "cholmod":
            return self._factor(rhs)
        if self.backend == "qdldl":
            b = np.asarray(rhs, dtype=float)
            if b.ndim == 1:
                return self._ldl.solve(b)
            out = np.empty(b.shape, order="F")
            for j in range(b.shape[1]):  # QDLDL solves one right-hand side at a time (a column-major b: no copies)
                out[:, j] = self._ldl.solve(np.ascontiguousarray(b[:, j]))
            return out
        return self._lu.solve(np.asarray(rhs, dtype=float))


class DenseCholesky:
    """LAPACK Cholesky of a small dense SPD matrix (n, n); ``solve`` as in :class:`SparseCholesky`."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.refactor(matrix)
        self.n_factorisations = 1
        self.backend = "dense"

    def refactor(self, matrix: np.ndarray | sp.spmatrix) -> None:
        m = matrix if isinstance(matrix, np.ndarray) else matrix.toarray()
        self._cf = la.cho_factor(m, lower=True, check_finite=False)
        self.n_factorisations = getattr(self, "n_factorisations", 0) + 1

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        return la.cho_solve(self._cf, rhs, check_finite=False)


@dataclass
class PCGResult:
    """Outcome of :func:`block_pcg`: solution (n, m), iterations taken, final relative residuals (m,)."""

    x: np.ndarray
    iterations: int
    residual: np.ndarray
    converged: bool


def block_pcg(
    matvec: Callable[[np.ndarray], np.ndarray],
    precondition: Callable[[np.ndarray], np.ndarray],
    rhs: np.ndarray,
    x0: np.ndarray | None = None,
    *,
    rtol: float = 1e-12,
    maxiter: int = 50,
    r0: np.ndarray | None = None,
) -> PCGResult:
    """Preconditioned conjugate gradients on m independent right-hand sides at once.

    Each column runs its own CG recurrence; the matrix products and preconditioner solves are
    done for all columns together (one sparse mat-mat product and one multi-RHS triangular
    solve per iteration). A column stops changing once ‖r‖₂ ≤ ``rtol``·‖b‖₂.

    Parameters
    ----------
    matvec : callable (n, m) -> (n, m)
        The SPD matrix A applied to a block.
    precondition : callable (n, m) -> (n, m)
        M⁻¹ applied to a block (for example the solve of an earlier factorisation of A).
    rhs : array, shape (n, m)
    x0 : array, shape (n, m), optional
        Starting guess (for example the previous step's solution).
    rtol : float
        Relative residual at which a column has converged.
    maxiter : int
    r0 : array, shape (n, m), optional
        The residual ``rhs − A·x0`` when the caller already has it (saves one product).
    """
    b = np.asarray(rhs, dtype=float)
    if b.ndim == 1:
        b = b[:, None]
    x = np.zeros_like(b) if x0 is None else np.array(x0, dtype=float, order="C").reshape(b.shape)
    bnorm = np.sqrt(np.einsum("ij,ij->j", b, b))
    bnorm[bnorm == 0] = 1.0
    if r0 is not None:
        r = np.array(r0, dtype=float, order="C").reshape(b.shape)
    else:
        r = b - matvec(x) if x0 is not None else b.copy()
    res = np.sqrt(np.einsum("ij,ij->j", r, r)) / bnorm
    it = 0
    if np.all(res <= rtol):
        return PCGResult(x, 0, res, True)
    z = precondition(r)
    p = z.copy()
    rz = np.einsum("ij,ij->j", r, z)
    while it < maxiter:
        it += 1
        ap = matvec(p)
        pap = np.einsum("ij,ij->j", p, ap)
        active = (res > rtol) & (pap > 0)
        a = np.where(active, rz / np.where(pap > 0, pap, 1.0), 0.0)
        x += p * a
        r -= ap * a
        res = np.sqrt(np.einsum("ij,ij->j", r, r)) / bnorm
        if np.all(res <= rtol):
            return PCGResult(x, it, res, True)
        z = precondition(r)
        rz_new = np.einsum("ij,ij->j", r, z)
        beta = np.where(active & (rz != 0), rz_new / np.where(rz != 0, rz, 1.0), 0.0)
        rz = rz_new
        p = z + p * beta
    return PCGResult(x, it, res, False)


__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "HAVE_CHOLMOD",
    "HAVE_QDLDL",
    "DenseCholesky",
    "PCGResult",
    "ReducedLaplacian",
    "SparseCholesky",
    "block_pcg",
]
