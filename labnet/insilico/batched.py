"""Compiled kernel for coupled learning on many small networks (optional: numba).

:func:`train_small` runs ``steps`` full-batch coupled-learning steps on B independent small
networks, each step per network: scatter conductances into the augmented system
[L_ff | −L_f,in | E_out], dense Cholesky, solve for G (response per input volt) and Z
(response per output current), free and clamped drops of every sample, the continuous rule,
clipping — all in one compiled loop with no Python per step. It is used by
:class:`labnet.insilico.trainer.BatchedCoupledLearning` and by the small-network path of
:class:`labnet.insilico.trainer.CoupledLearning` when numba is installed (``pip install labnet[fast]``);
without numba both fall back to vectorised NumPy that computes the same numbers.

Array conventions (all float64 unless stated, all C-contiguous, one network's data contiguous):
conductances ``kb`` (B, E) in S; relabelled edge ends ``ends`` (B, 2, E) int64 with 0..f−1 the
free nodes, f..f+n_in−1 the inputs and f+n_in ground; output positions ``out_pos`` (B, n_out);
inputs ``xs`` (B, S, n_in) and targets ``ts`` (B, S, n_out) in V; ``alpha`` (B,) in S/V²,
``eta`` (B,); bounds ``kmin``, ``kmax`` (B, E) in S; ``bw`` the half-bandwidth of every
network's L_ff in the given free-node order (free nodes are numbered by reverse Cuthill–McKee,
so the Cholesky factor stays in a narrow band and costs O(f·bw²), not O(f³)).
"""

from __future__ import annotations

import numpy as np

try:
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - depends on the environment
    numba = None
    HAVE_NUMBA = False


def _train_chunk_py(
    b0: int,
    b1: int,
    kb: np.ndarray,
    ends: np.ndarray,
    out_pos: np.ndarray,
    xs: np.ndarray,
    ts: np.ndarray,
    alpha: np.ndarray,
    eta: np.ndarray,
    kmin: np.ndarray,
    kmax: np.ndarray,
    f: int,
    steps: int,
    errs: np.ndarray,
    bw: int,
) -> None:
    """Networks b0..b1−1 for ``steps`` steps (compiled by numba when available); updates ``kb``
    in place and writes each step's mean free-state error (V²) to ``errs`` (steps, B)."""
    n_e = kb.shape[1]
    _, n_s, n_in = xs.shape
    n_out = ts.shape[2]
    w = f + n_in
    ww = w + n_out
    a = np.zeros((f, ww))
    rdiag = np.zeros(f)
    v = np.zeros(w + 1)  # node voltages of one state: free, inputs, ground (0)
    zm = np.zeros(w + 1)
    sm = np.zeros((n_out, n_out))
    sinv = np.zeros((n_out, n_out))
    d = np.zeros(n_out)
    mu = np.zeros(n_out)
    acc = np.zeros(n_e)
    for step in range(steps):
        for b in range(b0, b1):
            # ---- assemble [L_ff | −L_f,in | E_out]
            a[:, :] = 0.0
            for e in range(n_e):
                kk = kb[b, e]
                p = ends[b, 0, e]
                q = ends[b, 1, e]
                if p < f:
                    a[p, p] += kk
                    if q < f:
                        a[p, q] -= kk
                    elif q < w:
                        a[p, q] += kk
                if q < f:
                    a[q, q] += kk
                    if p < f:
                        a[q, p] -= kk
                    elif p < w:
                        a[q, p] += kk
            for j in range(n_out):
                a[out_pos[b, j], w + j] = 1.0
            # ---- Cholesky L_ff = C Cᵀ in the lower triangle
            for j in range(f):  # banded: entries more than bw off the diagonal are zero, in L too
                s = a[j, j]
                for t in range(max(0, j - bw), j):
                    s -= a[j, t] * a[j, t]
                s = np.sqrt(s)
                a[j, j] = s
                rs = 1.0 / s
                rdiag[j] = rs
                for i in range(j + 1, min(f, j + bw + 1)):
                    s2 = a[i, j]
                    for t in range(max(0, i - bw), j):
                        s2 -= a[i, t] * a[j, t]
                    a[i, j] = s2 * rs
            # ---- solve for the n_in + n_out right-hand sides (columns f..ww-1)
            for c in range(f, ww):
                for i in range(f):  # forward: C y = r
                    s = a[i, c]
                    for t in range(max(0, i - bw), i):
                        s -= a[i, t] * a[t, c]
                    a[i, c] = s * rdiag[i]
                for i in range(f - 1, -1, -1):  # backward: Cᵀ x = y
                    s = a[i, c]
                    for t in range(i + 1, min(f, i + bw + 1)):
                        s -= a[t, i] * a[t, c]
                    a[i, c] = s * rdiag[i]
            # ---- S = Z at the outputs, inverted in place (small SPD: Gauss–Jordan)
            for i in range(n_out):
                for j in range(n_out):
                    sm[i, j] = a[out_pos[b, i], w + j]
                    sinv[i, j] = 1.0 if i == j else 0.0
            for j in range(n_out):  # no pivoting needed: S is symmetric positive definite
                piv = sm[j, j]
                for t in range(n_out):
                    sm[j, t] /= piv
                    sinv[j, t] /= piv
                for i in range(n_out):
                    if i != j:
                        fac = sm[i, j]
                        for t in range(n_out):
                            sm[i, t] -= fac * sm[j, t]
                            sinv[i, t] -= fac * sinv[j, t]
            acc[:] = 0.0
            err = 0.0
            for si in range(n_s):
                for i in range(f):
                    s = 0.0
                    for j in range(n_in):
                        s += a[i, f + j] * xs[b, si, j]
                    v[i] = s
                for j in range(n_in):
                    v[f + j] = xs[b, si, j]
                v[w] = 0.0
                for j in range(n_out):
                    d[j] = ts[b, si, j] - v[out_pos[b, j]]
                    err += d[j] * d[j]
                # clamped − free node voltages: Z μ with μ = η S⁻¹ d
                for j in range(n_out):
                    s = 0.0
                    for t in range(n_out):
                        s += sinv[j, t] * d[t]
                    mu[j] = eta[b] * s
                for i in range(f):
                    s = 0.0
                    for j in range(n_out):
                        s += a[i, w + j] * mu[j]
                    zm[i] = s
                for i in range(f, w + 1):
                    zm[i] = 0.0
                for e in range(n_e):
                    p = ends[b, 0, e]
                    q = ends[b, 1, e]
                    dvf = v[p] - v[q]
                    dl = zm[p] - zm[q]
                    acc[e] -= dl * (2.0 * dvf + dl)
            errs[step, b] = err / (n_s * n_out)
            scale = alpha[b] / eta[b] / n_s
            for e in range(n_e):
                kk = kb[b, e] + scale * acc[e]
                if kk < kmin[b, e]:
                    kk = kmin[b, e]
                if kk > kmax[b, e]:
                    kk = kmax[b, e]
                kb[b, e] = kk


def _train_small_py(
    kb: np.ndarray,
    ends: np.ndarray,
    out_pos: np.ndarray,
    xs: np.ndarray,
    ts: np.ndarray,
    alpha: np.ndarray,
    eta: np.ndarray,
    kmin: np.ndarray,
    kmax: np.ndarray,
    f: int,
    steps: int,
    errs: np.ndarray,
    bw: int,
) -> None:
    """All B networks, ``steps`` steps, one thread (pure-Python reference of :func:`train_small`)."""
    _train_chunk_py(0, kb.shape[0], kb, ends, out_pos, xs, ts, alpha, eta, kmin, kmax, f, steps, errs, bw)


if HAVE_NUMBA:
    _chunk = numba.njit(cache=True, nogil=True)(_train_chunk_py)

    @numba.njit(cache=True, nogil=True)
    def train_small(kb, ends, out_pos, xs, ts, alpha, eta, kmin, kmax, f, steps, errs, bw):
        """Compiled :func:`_train_small_py`: all networks on one thread."""
        _chunk(0, kb.shape[0], kb, ends, out_pos, xs, ts, alpha, eta, kmin, kmax, f, steps, errs, bw)

    @numba.njit(cache=True, nogil=True, parallel=True)
    def train_small_parallel(kb, ends, out_pos, xs, ts, alpha, eta, kmin, kmax, f, steps, errs, bw, n_chunks):
        """Compiled, networks split into ``n_chunks`` independent chunks run on numba's threads
        (each chunk runs all its steps without synchronising with the others)."""
        n_b = kb.shape[0]
        for c in numba.prange(n_chunks):
            b0 = c * n_b // n_chunks
            b1 = (c + 1) * n_b // n_chunks
            _chunk(b0, b1, kb, ends, out_pos, xs, ts, alpha, eta, kmin, kmax, f, steps, errs, bw)

    THREADS = numba.config.NUMBA_NUM_THREADS
else:  # pragma: no cover - depends on the environment
    train_small = None
    train_small_parallel = None
    THREADS = 1

__all__ = ["HAVE_NUMBA", "THREADS", "train_small", "train_small_parallel"]
