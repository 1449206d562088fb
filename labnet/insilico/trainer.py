"""In-silico coupled learning: fast training of simulated resistor networks at every scale.

One training step on samples s (inputs x_s at the input nodes, targets t_s at the outputs):

    free state     V^F_s: inputs held, outputs floating
    clamped state  V^C_s: outputs also held at o_s + η (t_s − o_s),  o_s = V^F_s at the outputs
    update         Δk_j = (α/η) · mean_s [ (ΔV^F_{j,s})² − (ΔV^C_{j,s})² ]     (labnet.core.rules)

How it is made fast (all exact algebra; float64 throughout):

* **Superposition.** The network is linear, so the free response to any inputs is
  V^F_f = G x with G = −L_ff⁻¹ L_f,in (one column per input node), and holding the outputs
  adds Z S⁻¹ (v_c − o) with Z = L_ff⁻¹ E_out and S = Z_out,out (a bordered / Schur-complement
  solve on the *same* factorisation). A step therefore needs L_ff⁻¹ applied to n_in + n_out
  columns, whatever the number of samples — the free and the clamped state of every sample of
  an epoch come from one factorisation and one multi-right-hand-side solve.
* **Moments.** The batch mean of (ΔV_j)² is a quadratic form in the samples' second-moment
  matrix of [x; t], so a 1,000-sample epoch costs the same O(E·(n_in+n_out)²) as one sample.
* **Pattern reuse.** L_ff is assembled from conductances by one sparse mat-vec into a fixed
  CSC pattern; the fill-reducing ordering / symbolic analysis is done once
  (:class:`labnet.core.solvers.SparseCholesky`, CHOLMOD when installed).
* **Below one factorisation per step** (``method="pcg"``): conjugate gradients preconditioned
  by an earlier step's factorisation, warm-started from the A-norm-best combination of the
  last ``history`` steps' G and Z (a Galerkin projection on their Newton differences, which
  contains polynomial extrapolation of the conductance trajectory: ≈1.1–1.5 instead of ≈4.3
  iterations per step at 65k edges), stopping
  at relative residual ``rtol`` (default 1e-12). The factor is refreshed when a step's PCG
  cost (iterations, in units where a refactorisation costs ``refresh_cost``) exceeds the
  average cost per step since the last refactorisation — the point where refreshing starts to
  pay — or the iterations exceed ``refresh_iterations``; it is recomputed at once if PCG does
  not converge. With
  the default tolerance the node voltages agree with a fresh direct solve to about 1e-10
  relative (tested in ``tests/test_insilico.py``).
* **Small networks**: dense LAPACK Cholesky with conductances scattered straight into the
  matrix; :class:`BatchedCoupledLearning` trains many independent small networks in one
  vectorised call.

Conductances in siemens (S), voltages in volts (V), α in S/V².
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack
from scipy.sparse.csgraph import reverse_cuthill_mckee

from labnet.core.conductance import ConductanceModel
from labnet.core.errors import ConfigError
from labnet.core.network import Network
from labnet.core.rules import Rule, apply_step, clip_conductance, coupled_learning
from labnet.core.solvers import DEFAULT_BACKEND, ReducedLaplacian, SparseCholesky, block_pcg
from labnet.insilico import batched as _kernels

_dpotrf, _dpotrs, _dposv, _dpbtrf, _dpbtrs = lapack.get_lapack_funcs(
    ("potrf", "potrs", "posv", "pbtrf", "pbtrs"), (np.zeros(1),)
)

#: Free-node count from which the single-sample dense path (no numba) factorises in the reverse
#: Cuthill–McKee band (LAPACK ``dpbtrf``, O(F·bw²)) when the half-bandwidth is at most F/3:
#: 256-edge lattice (137 free nodes, bw 11) ≈70 µs per step vs ≈110 µs with ``dpotrf``.
BAND_MIN = 64

#: Free-node count at or below which the compiled small-network kernel (numba) is used. Its
#: Cholesky works in the reverse Cuthill–McKee band, O(F·bw²): 256-edge networks (87–137 free
#: nodes, half-bandwidth 11–23) take ~30 µs per step vs ~60–110 µs with dense LAPACK.
KERNEL_MAX = 400

#: Free-node count at or below which :class:`CoupledLearning` uses dense LAPACK.
DENSE_MAX = 400

#: Free-node count above which ``method="auto"`` goes below one factorisation per step (PCG);
#: between DENSE_MAX and this, a numeric refactorisation per step is cheaper than PCG's
#: iterations. Measured with the history warm start (benchmarks/results-2026-11-28-0146.txt):
#: 4,097-edge Delaunay (1,370 free nodes) direct 1.10 ms vs PCG 1.41 ms per step; 4,122-edge
#: lattice (2,104 free nodes) direct 1.90 ms vs PCG 1.42 ms.
PCG_MIN = 2000

METHODS = ("auto", "dense", "direct", "pcg")


@dataclass
class StepStats:
    """Bookkeeping of the linear algebra of a trainer (cumulative)."""

    steps: int = 0
    factorisations: int = 0
    pcg_iterations: int = 0
    pcg_solves: int = 0


def _as_2d(a: np.ndarray | Sequence[float] | Sequence[Sequence[float]], n_cols: int, what: str) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != n_cols:
        raise ConfigError("<code>", what, f"expected shape (S, {n_cols}), got {np.shape(a)}")
    return arr


class CoupledLearning:
    """Coupled learning in silico on one network.

    Parameters
    ----------
    network : Network
        Its ``inputs`` are driven, its ``outputs`` are clamped; ground is held at 0 V.
    conductances : array, shape (E,)
        Initial conductances (S), > 0. Ignored when ``codes`` is given (quantised training).
    inputs : array, shape (S, n_in)
        Training input voltages (V), columns in ``network.inputs`` order.
    targets : array, shape (S, n_out)
        Target output voltages (V), columns in ``network.outputs`` order.
    alpha : float
        Learning rate α (S/V²).
    eta : float
        Nudge amplitude η (0 < η ≤ 1).
    k_min, k_max : float or array (E,)
        Conductance range (S) of the continuous rule.
    rule, model, codes, code_range : optional
        Tap-quantised training: a :class:`labnet.core.rules.Rule` (its ``kind``, dead band and
        ``max_taps`` are used; its α and η are the ones above), a code → conductance model
        (:class:`labnet.core.conductance.ConductanceModel`), initial integer codes (E,) and the
        allowed (code_min, code_max).
    method : {"auto", "dense", "direct", "pcg"}
        ``dense``: LAPACK Cholesky per step; ``direct``: sparse numeric refactorisation per step
        (symbolic analysis reused); ``pcg``: stale-factor preconditioned CG; ``auto``: dense up
        to :data:`DENSE_MAX` free nodes, ``direct`` up to :data:`PCG_MIN`, else ``pcg``.
    rtol : float
        PCG stopping tolerance on the relative residual of every column.
    refresh_iterations : int
        Refactorise at the next step when a PCG solve needed more iterations than this.
    refresh_cost : float, optional
        Cost of one numeric refactorisation in PCG iterations (one preconditioner solve plus one
        mat-vec on the step's right-hand sides). Default: measured once, at the first PCG step.
    history : int
        PCG starts from the best (A-norm) combination of the last ``history`` solutions (1: the
        previous solution alone); see :meth:`_warm_start`.
    backend : {"cholmod", "splu"}, optional
        Sparse factorisation back end.
    seed : int or Generator
        For stochastic rounding and batch draws.
    use_kernel : bool
        Full-batch continuous steps of small networks (≤ :data:`KERNEL_MAX` free nodes) run in
        the compiled kernel of :mod:`labnet.insilico.batched` when numba is installed.
    """

    def __init__(
        self,
        network: Network,
        conductances: np.ndarray | None,
        inputs: np.ndarray,
        targets: np.ndarray,
        *,
        alpha: float,
        eta: float,
        k_min: float | np.ndarray = 0.0,
        k_max: float | np.ndarray = np.inf,
        rule: Rule | None = None,
        model: ConductanceModel | None = None,
        codes: np.ndarray | None = None,
        code_range: tuple[int, int] | None = None,
        method: str = "auto",
        rtol: float = 1e-12,
        refresh_iterations: int = 20,
        refresh_cost: float | None = None,
        history: int = 8,
        backend: str | None = None,
        seed: int | np.random.Generator = 0,
        use_kernel: bool = True,
    ) -> None:
        if method not in METHODS:
            raise ConfigError("<code>", "method", f"expected one of {METHODS}, got {method!r}")
        if not network.inputs or not network.outputs:
            raise ConfigError("<code>", "network", "coupled learning needs input and output nodes")
        if not 0 < eta <= 1:
            raise ConfigError("<code>", "eta", f"expected 0 < eta <= 1, got {eta}")
        self.network = network
        self.alpha = float(alpha)
        self.eta = float(eta)
        self.k_min, self.k_max = k_min, k_max
        self.rng = np.random.default_rng(seed)
        self.rule = rule
        self.model = model
        self.quantised = codes is not None
        if self.quantised:
            if model is None or rule is None or code_range is None:
                raise ConfigError("<code>", "codes", "quantised training needs rule, model and code_range")
            self.codes = np.asarray(codes, dtype=np.int64).copy()
            self.code_range = (int(code_range[0]), int(code_range[1]))
            k = model.conductance(self.codes)
        else:
            if conductances is None:
                raise ConfigError("<code>", "conductances", "give conductances (or codes for quantised training)")
            k = np.array(conductances, dtype=float)
        if k.shape != (network.n_edges,) or not np.all(np.isfinite(k)) or np.any(k <= 0):
            raise ConfigError("<code>", "conductances", f"expected {network.n_edges} finite conductances > 0 S")
        self.k = k
        n_in, n_out = len(network.inputs), len(network.outputs)
        self.inputs = _as_2d(inputs, n_in, "inputs")
        self.targets = _as_2d(targets, n_out, "targets")
        if self.inputs.shape[0] != self.targets.shape[0]:
            raise ConfigError("<code>", "targets", "inputs and targets need the same number of samples")
        # held: ground first, then inputs; outputs are free nodes
        held_idx = network.indices([network.ground, *network.inputs])
        self.red = red = ReducedLaplacian(network, held_idx)
        self.n_in, self.n_out, self.n_free = n_in, n_out, red.n_free
        self.out_pos = red.free_pos[network.indices(network.outputs)]
        self.in_cols = np.arange(1, 1 + n_in)  # columns of L_fh that belong to the inputs
        if method == "auto":
            method = "dense" if red.n_free <= DENSE_MAX else ("direct" if red.n_free <= PCG_MIN else "pcg")
        self.method = method
        self.rtol = float(rtol)
        self.refresh_iterations = int(refresh_iterations)
        self.refresh_cost = refresh_cost
        if int(history) < 1:
            raise ConfigError("<code>", "history", f"expected an integer >= 1, got {history}")
        self.history = int(history)
        self._cycle = [0.0, 0]  # PCG cost (iterations) since the last refactorisation, and steps
        self.backend = "dense" if method == "dense" else (backend or DEFAULT_BACKEND)
        self.stats = StepStats()
        # incidence pieces: drops ΔV = D_f V_f + D_in x
        self.d_free = red.d_free
        self.d_in = red.d_held[:, 1:].toarray()  # (E, n_in)
        e_out = np.zeros((red.n_free, n_out))
        e_out[self.out_pos, np.arange(n_out)] = 1.0
        self._e_out = e_out
        if method == "dense":
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
            if size * network.n_edges <= 40_000:  # tiny: one dense mat-vec beats a scatter
                amap = np.zeros((size, network.n_edges))
                np.add.at(amap, (rows, cols), vals)
                self._assemble = amap.__matmul__
            else:
                self._assemble = lambda k: np.bincount(rows, weights=k[cols] * vals, minlength=size)
            self._c_in = self.d_in @ self.inputs.T  # (E, S): input part of every sample's drops
            self._rhs1 = np.zeros((red.n_free, 1 + n_out), order="F")
            self._rhs1[:, 1:] = e_out
            self._band = self._band_setup() if red.n_free >= BAND_MIN else None
        else:
            self._in_map = red.fh_map  # (F·H, E)
            self._factor: SparseCholesky | None = None
            self._factor_stale = True
            self._guess: np.ndarray | None = None
            self._diff: np.ndarray | None = None  # (F, c, history): Newton differences of past solutions
            self._diff_old: np.ndarray | None = None
            self._n_hist = 0
        self._moments_all = self._moments(np.arange(self.inputs.shape[0]))
        self._kernel: BatchedCoupledLearning | None = None
        if (method == "dense" and not self.quantised and _kernels.HAVE_NUMBA and red.n_free <= KERNEL_MAX
                and use_kernel):
            self._kernel = BatchedCoupledLearning(
                network, k[None, :], self.inputs, self.targets, alpha=alpha, eta=eta, k_min=k_min, k_max=k_max
            )

    # ------------------------------------------------------------------ linear algebra
    def responses(self, combos: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """G·C (F, c) and Z (F, n_out) for the present conductances.

        G = −L_ff⁻¹ L_f,in is the free-node response to one volt on each input (default C = I,
        c = n_in); with ``combos`` C (n_in, c) only the c input patterns C's columns are solved
        for (fewer right-hand sides when a task has fewer distinct samples than inputs).
        Z = L_ff⁻¹ E_out is the response to unit current injected at each output (Ω).
        """
        k = self.k
        f, n_in = self.n_free, self.n_in
        cmat = np.eye(n_in) if combos is None else combos
        c = cmat.shape[1]
        self.stats.steps += 1
        if self.method == "dense":
            lff, lfi = self._split(self._assemble(k))
            rhs = np.empty((f, c + self.n_out), order="F")
            rhs[:, :c] = lfi @ cmat
            rhs[:, c:] = self._e_out
            fac, info = lapack.dpotrf(lff, lower=1, clean=0, overwrite_a=1)
            if info:
                raise np.linalg.LinAlgError(f"reduced Laplacian not positive definite (dpotrf info={info})")
            x, info = lapack.dpotrs(fac, rhs, lower=1)
            self.stats.factorisations += 1
            return x[:, :c], x[:, c:]
        lap = self.red.matrix(k)
        rhs = np.empty((f, c + self.n_out))
        rhs[:, :c] = -((self._in_map @ k).reshape(f, -1)[:, self.in_cols] @ cmat)
        rhs[:, c:] = self._e_out
        guess = self._guess if self._guess is not None and self._guess.shape == rhs.shape else None
        if self.method == "direct" or self._factor is None or self._factor_stale or guess is None:
            if self._factor is None:
                self._factor = SparseCholesky(lap, self.backend)
            else:
                self._factor.refactor(lap)
            self.stats.factorisations += 1
            self._factor_stale = False
            x = self._factor.solve(rhs)
            if self.method == "pcg" and self.refresh_cost is None:
                self.refresh_cost = self._measure_refresh_cost(lap, rhs)
            self._cycle = [float(self.refresh_cost or 0.0) + 1.0, 1]
        else:
            guess, r0 = self._warm_start(lap, rhs)
            res = block_pcg(lap.__matmul__, self._factor.solve, rhs, guess, rtol=self.rtol, maxiter=40, r0=r0)
            self.stats.pcg_iterations += res.iterations
            self.stats.pcg_solves += 1
            if not res.converged:  # drifted too far: refactorise now and solve directly
                self._factor.refactor(lap)
                self.stats.factorisations += 1
                x = self._factor.solve(rhs)
                self._cycle = [float(self.refresh_cost or 0.0) + 1.0, 1]
            else:
                x = res.x
                cost = res.iterations + 1.0  # + the residual and bookkeeping
                self._cycle[0] += cost
                self._cycle[1] += 1
                if cost > self._cycle[0] / self._cycle[1] or res.iterations > self.refresh_iterations:
                    self._factor_stale = True
        self._guess = x
        if self.method == "pcg":
            self._push_history(x)
        return x[:, :c], x[:, c:]

    def _warm_start(self, lap: sp.csc_matrix, rhs: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Starting guess for PCG and its residual: per column, the Galerkin (A-norm optimal) solution
        in the span of the last ``history`` solutions of that column, spanned by their Newton
        differences (x₁, x₁ − x₂, x₁ − 2x₂ + x₃, …: a well-conditioned basis of the same span, which
        contains polynomial extrapolation of every order < ``history``). Never worse in the A-norm
        than the previous solution alone; with conductances drifting smoothly it is orders of
        magnitude better (65k-edge lattice: relative residual of the start ≈2e-3 with the previous
        solution, ≈1e-11 with 8; ≈4.3 → ≈1.1–1.5 PCG iterations per step)."""
        d, m = self._diff, self._n_hist
        n, c = rhs.shape
        if d is None or m == 0 or d.shape[1:] != (c, n):
            return None, None
        if m == 1:
            return np.ascontiguousarray(d[0].T), None
        flat_t = d[:m].reshape(m * c, n)  # row i·c + j: i-th difference of column j
        ad = lap @ np.ascontiguousarray(flat_t.T)  # (n, m·c); SciPy's sparse product wants C order
        gram = flat_t @ ad  # (m·c, m·c): one product beats c strided ones; only the c blocks are used
        coef = np.zeros((m * c, c))
        x0_t = np.empty((c, n))
        for j in range(c):
            v = flat_t[j::c]  # column j's differences (m, n)
            g, h = gram[j::c, j::c], v @ rhs[:, j]
            sc = np.sqrt(np.abs(np.diag(g)))
            sc[sc == 0] = 1.0
            # minimise φ(a) = ½ aᵀ g a − aᵀ h on the well-determined eigen-directions of the scaled g
            lam, vec = np.linalg.eigh((g + g.T) / (2.0 * np.outer(sc, sc)))
            keep = lam > 1e-12 * max(lam[-1], 0.0)
            a = (vec[:, keep] @ ((vec[:, keep].T @ (h / sc)) / lam[keep])) / sc if lam[-1] > 0 else np.zeros(m)
            # never worse than the previous solution alone (a = e₀): compare φ
            if not np.all(np.isfinite(a)) or 0.5 * a @ g @ a - a @ h > 0.5 * g[0, 0] - h[0]:
                a = np.zeros(m)
                a[0] = 1.0
            coef[j::c, j] = a
            np.matmul(a, v, out=x0_t[j])
        return x0_t.T, rhs - ad @ coef

    def _push_history(self, x: np.ndarray) -> None:
        """Add a solution (n, c) to the Newton-difference table of the last ``history`` solutions."""
        w = max(self.history, 1)
        n, c = x.shape
        if self._diff is None or self._diff.shape[1:] != (c, n):
            self._diff = np.zeros((w, c, n))
            self._diff_old = np.zeros((w, c, n))
            self._n_hist = 0
        old, new = self._diff, self._diff_old  # ping-pong buffers, (history, c, n)
        new[0] = x.T
        m = min(self._n_hist + 1, w)
        for i in range(1, m):
            np.subtract(new[i - 1], old[i - 1], out=new[i])
        self._diff, self._diff_old = new, old
        self._n_hist = m

    def _measure_refresh_cost(self, lap: sp.csc_matrix, rhs: np.ndarray) -> float:
        """Time of one numeric refactorisation over the time of one PCG iteration (best of 3 each)."""
        assert self._factor is not None
        t_f = t_i = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            self._factor.refactor(lap)
            t1 = time.perf_counter()
            self._factor.solve(lap @ rhs)
            t2 = time.perf_counter()
            t_f, t_i = min(t_f, t1 - t0), min(t_i, t2 - t1)
        self._factor.n_factorisations -= 3  # calibration, not training
        return float(t_f / max(t_i, 1e-9))

    def _drops(self, g: np.ndarray, z: np.ndarray, combos: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Q_F (E, c): edge drops per input pattern; R (E, n_out): per volt of output clamp shift; G_out (n_out, c)."""
        g_out = g[self.out_pos]
        s = z[self.out_pos]
        q_f = self.d_free @ g + (self.d_in if combos is None else self.d_in @ combos)
        zs = z / s[0, 0] if self.n_out == 1 else z @ np.linalg.inv(s)  # Z S⁻¹ (S is n_out × n_out, SPD)
        r = self.d_free @ zs  # D_f Z S⁻¹
        return q_f, r, g_out

    def _moments(self, idx: np.ndarray) -> np.ndarray:
        u = np.concatenate([self.inputs[idx], self.targets[idx]], axis=1)
        return u.T @ u / len(idx)

    # ------------------------------------------------------------------ training
    def gradient(self, samples: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Δk (S), shape (E,), of the continuous rule averaged over ``samples``, and their mean free error (V²).

        ``samples``: indices into the training set (default: all of them — one epoch).
        """
        if samples is None:
            idx = None
            x, t = self.inputs, self.targets
        else:
            idx = np.asarray(samples, dtype=np.int64).reshape(-1)
            x, t = self.inputs[idx], self.targets[idx]
        n = x.shape[0]
        if samples is None and n < self.n_in:  # fixed inputs (allostery): solve for the samples themselves
            g, z = self.responses(x.T)
            q_f, r, g_out = self._drops(g, z, x.T)
            x = np.eye(n)
        else:
            g, z = self.responses()
            q_f, r, g_out = self._drops(g, z)
        err = float(np.mean((x @ g_out.T - t) ** 2))
        eta = self.eta
        if n <= self.n_in + self.n_out:  # explicit per-sample drops, (E, n)
            dv_f = q_f @ x.T
            dv_c = dv_f + eta * (r @ (t.T - g_out @ x.T))
            return coupled_learning(dv_f, dv_c, alpha=self.alpha, eta=eta).reshape(-1), err
        m = self._moments_all if idx is None else self._moments(idx)
        n_in = self.n_in
        q_c = np.concatenate([q_f - eta * (r @ g_out), eta * r], axis=1)  # ΔV^C = Q_C [x; t]
        mean_f2 = np.einsum("ej,jk,ek->e", q_f, m[:n_in, :n_in], q_f)
        mean_c2 = np.einsum("ej,jk,ek->e", q_c, m, q_c)
        return (self.alpha / eta) * (mean_f2 - mean_c2), err

    def step(self, samples: np.ndarray | None = None) -> float:
        """One training step on ``samples`` (default: all — a full-batch epoch); returns the mean
        free-state error (V²) measured before the update."""
        if samples is None and self._kernel is not None:
            return float(self._run_kernel(1)[0])
        if self.method == "dense" and not self.quantised:
            if samples is None and self.inputs.shape[0] == 1:
                return self._step_dense_single(0)
            if samples is not None and np.size(samples) == 1:
                return self._step_dense_single(int(np.reshape(samples, -1)[0]))
        dk, err = self.gradient(samples)
        self.apply(dk)
        return err

    def _run_kernel(self, steps: int) -> np.ndarray:
        kern = self._kernel
        assert kern is not None
        kb = np.ascontiguousarray(self.k).reshape(1, -1)  # a view of self.k when contiguous
        errs = np.empty((steps, 1))
        _kernels.train_small(kb, kern.ends, kern.out_pos, kern._xb, kern._tb, kern.alpha, kern.eta,
                             kern._kmin_b, kern._kmax_b, kern.f, steps, errs, kern.bw)
        self.k = kb.reshape(-1)
        self.stats.steps += steps
        self.stats.factorisations += steps
        return errs[:, 0]

    def _split(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """L_ff (F, F) as a Fortran-contiguous view (it is symmetric) and −L_f,in (F, n_in)."""
        f = self.n_free
        return flat[: f * f].reshape(f, f).T, flat[f * f :].reshape(f, self.n_in)

    def _band_setup(self) -> dict | None:
        """Index maps of the single-sample path in the reverse Cuthill–McKee band, or None if the band is wide."""
        red, f = self.red, self.n_free
        src, dst = self.network.edge_ends
        free = red.free_idx
        sub = self.network.adjacency[free][:, free].tocsr()
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
        rhs = np.zeros((f, 1 + self.n_out), order="F")
        rhs[inv[self.out_pos], 1 + np.arange(self.n_out)] = 1.0
        return {
            "bw": bw,
            "flat": (r - c)[low] + c[low] * (bw + 1),
            "edges": edges_ff[low],
            "sign": sign_ff[low],
            "in_rows": inv[rh[keep]],
            "in_edges": eh[keep],
            "in_cols": ch[keep] - 1,
            "d_free": np.ascontiguousarray(self.d_free[:, order]),
            "out": inv[self.out_pos],
            "rhs": rhs,
        }

    def _step_dense_single(self, s: int) -> float:
        """Lean path for one sample on a small network: the sample's own right-hand side and the
        output columns in one LAPACK solve, drops by one dense product. Same result as
        ``gradient([s])`` + ``apply`` to round-off (tested)."""
        band = self._band
        if band is not None:  # Cholesky in the reverse Cuthill–McKee band
            k, f, bw = self.k, self.n_free, band["bw"]
            ab = np.bincount(band["flat"], weights=k[band["edges"]] * band["sign"], minlength=(bw + 1) * f)
            rhs = band["rhs"]
            rhs[:, 0] = np.bincount(band["in_rows"], weights=k[band["in_edges"]] * self.inputs[s][band["in_cols"]],
                                    minlength=f)
            c, info = _dpbtrf(ab.reshape(bw + 1, f, order="F"), lower=1, overwrite_ab=1)
            if info:
                raise np.linalg.LinAlgError(f"reduced Laplacian not positive definite (dpbtrf info={info})")
            x, _ = _dpbtrs(c, rhs, lower=1)
            w = band["d_free"] @ x
            xo = x[band["out"]]
        else:
            lff, lfi = self._split(self._assemble(self.k))
            rhs = self._rhs1
            rhs[:, 0] = lfi @ self.inputs[s]
            c, info = _dpotrf(lff, lower=1, clean=0, overwrite_a=1)
            if info:
                raise np.linalg.LinAlgError(f"reduced Laplacian not positive definite (dpotrf info={info})")
            x, _ = _dpotrs(c, rhs, lower=1)
            w = self.d_free @ x  # (E, 1 + n_out): drops of V_f and of each Z column
            xo = x[self.out_pos]
        o = xo[:, 0]
        d = self.targets[s] - o
        _, mu, info = _dposv(xo[:, 1:], d * self.eta, lower=1)  # S⁻¹ η (t − o)
        dv_f = w[:, 0] + self._c_in[:, s]
        delta = w[:, 1:] @ mu  # ΔV^C − ΔV^F
        # Δk = (α/η)[(ΔV^F)² − (ΔV^C)²] = −(α/η) δ (2ΔV^F + δ)
        dv_f *= 2.0
        dv_f += delta
        dv_f *= delta
        k = self.k - (self.alpha / self.eta) * dv_f
        np.maximum(k, self.k_min, out=k)
        np.minimum(k, self.k_max, out=k)
        self.k = k
        self.stats.steps += 1
        self.stats.factorisations += 1
        return float(d @ d) / d.size

    epoch = step

    def apply(self, dk: np.ndarray) -> None:
        """Apply a conductance change Δk (S), shape (E,): clipped (continuous) or as taps (quantised)."""
        if not self.quantised:
            self.k = clip_conductance(self.k + dk, self.k_min, self.k_max)
            return
        assert self.rule is not None and self.model is not None
        taps = self.rule.step(dk, self.model.slope(self.codes), self.rng)
        new = apply_step(self.codes, taps, *self.code_range)
        if np.any(new != self.codes):
            self.codes = new
            self.k = self.model.conductance(new)

    def train(self, steps: int, batch: int | None = None) -> np.ndarray:
        """Run ``steps`` steps; with ``batch`` draw that many samples per step, else full batch.

        Returns the per-step mean free error (V²), shape (steps,).
        """
        if batch is None and self._kernel is not None:
            return self._run_kernel(steps)
        errs = np.empty(steps)
        s = self.inputs.shape[0]
        for i in range(steps):
            idx = None if batch is None else self.rng.integers(0, s, size=batch)
            errs[i] = self.step(idx)
        return errs

    def outputs(self, inputs: np.ndarray) -> np.ndarray:
        """Free-state output voltages (V), shape (S, n_out), for inputs (S, n_in) at the present conductances."""
        g, _ = self.responses()
        return _as_2d(inputs, self.n_in, "inputs") @ g[self.out_pos].T

    def states(self, samples: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Full node voltages (V) of the free and clamped states, each (N, S), for ``samples``.

        For checks and analysis; training itself never forms them.
        """
        idx = np.arange(self.inputs.shape[0]) if samples is None else np.asarray(samples).reshape(-1)
        g, z = self.responses()
        x, t = self.inputs[idx], self.targets[idx]
        vf_free = g @ x.T
        o = vf_free[self.out_pos]
        s = z[self.out_pos]
        vc_free = vf_free + z @ np.linalg.solve(s, self.eta * (t.T - o))
        n = self.network.n_nodes
        vf = np.zeros((n, len(idx)))
        vc = np.zeros((n, len(idx)))
        in_idx = self.network.indices(self.network.inputs)
        for v, free in ((vf, vf_free), (vc, vc_free)):
            v[self.red.free_idx] = free
            v[in_idx] = x.T
        return vf, vc


# ====================================================================== batched small networks
class BatchedCoupledLearning:
    """Many independent small networks trained by coupled learning in one vectorised call.

    All networks share node count, edge count and the numbers of inputs and outputs; they may
    differ in wiring (give a list of networks), conductances, tasks and hyper-parameters.
    Every step does, for all B networks at once: assemble L_ff and L_f,in, solve for G and Z by
    vectorised Gaussian elimination (exact for the SPD reduced Laplacian; no pivoting needed),
    the free and clamped drops of every sample, the continuous rule, clipping.

    Parameters
    ----------
    networks : Network or sequence of B Networks
    conductances : array, shape (B, E)
        Initial conductances (S).
    inputs : array, shape (S, n_in) or (B, S, n_in)
        Training inputs (V) shared by all networks or one set per network.
    targets : array, shape (S, n_out) or (B, S, n_out)
        Targets (V).
    alpha, eta : float or array (B,)
        Per-network learning rate (S/V²) and nudge.
    k_min, k_max : float or array broadcastable to (B, E)
        Conductance range (S).
    engine : {"auto", "numba", "numpy"}
        ``numba``: the compiled kernel of :mod:`labnet.insilico.batched` (one loop over steps and
        networks); ``numpy``: vectorised NumPy over the batch axis; ``auto``: numba when it is
        installed and the networks have at most :data:`KERNEL_MAX` free nodes.
    threads : int
        Threads of the numba engine (0: numba's default, all cores). Networks are independent,
        so they are split into chunks that train without synchronising.
    """

    def __init__(
        self,
        networks: Network | Sequence[Network],
        conductances: np.ndarray,
        inputs: np.ndarray,
        targets: np.ndarray,
        *,
        alpha: float | np.ndarray,
        eta: float | np.ndarray,
        k_min: float | np.ndarray = 0.0,
        k_max: float | np.ndarray = np.inf,
        engine: str = "auto",
        threads: int = 0,
    ) -> None:
        k = np.array(conductances, dtype=float)
        if k.ndim != 2:
            raise ConfigError("<code>", "conductances", f"expected shape (B, E), got {k.shape}")
        b, e = k.shape
        nets = [networks] * b if isinstance(networks, Network) else list(networks)
        if len(nets) != b:
            raise ConfigError("<code>", "networks", f"expected {b} networks (one per row of conductances), got {len(nets)}")
        shapes = {(n.n_nodes, n.n_edges, len(n.inputs), len(n.outputs)) for n in nets}
        if len(shapes) != 1:
            raise ConfigError("<code>", "networks", f"networks differ in size or roles: {sorted(shapes)}")
        n_nodes, n_edges, n_in, n_out = shapes.pop()
        if n_edges != e:
            raise ConfigError("<code>", "conductances", f"expected {n_edges} edges per network, got {e}")
        self.b, self.e, self.n_in, self.n_out = b, e, n_in, n_out
        self.f = f = n_nodes - 1 - n_in
        if engine not in ("auto", "numba", "numpy"):
            raise ConfigError("<code>", "engine", f"expected 'auto', 'numba' or 'numpy', got {engine!r}")
        if engine == "numba" and not _kernels.HAVE_NUMBA:
            raise ConfigError("<code>", "engine", "engine 'numba' needs numba (pip install labnet[fast])")
        engine = ("numba" if _kernels.HAVE_NUMBA and f <= KERNEL_MAX else "numpy") if engine == "auto" else engine
        self.threads = max(1, min(int(threads), _kernels.THREADS)) if threads else _kernels.THREADS
        self.shared = isinstance(networks, Network) or all(n is nets[0] for n in nets)
        self.engine = engine
        self.k = k  # stored transposed, (E, B), for the vectorised arithmetic
        self.alpha = np.broadcast_to(np.asarray(alpha, float), (b,)).copy()
        self.eta = np.broadcast_to(np.asarray(eta, float), (b,)).copy()
        self.k_min, self.k_max = k_min, k_max
        self._kmin_b = np.ascontiguousarray(np.broadcast_to(np.asarray(k_min, float), (b, e)))
        self._kmax_b = np.ascontiguousarray(np.broadcast_to(np.asarray(k_max, float), (b, e)))
        self._kmin_t = np.ascontiguousarray(self._kmin_b.T)
        self._kmax_t = np.ascontiguousarray(self._kmax_b.T)
        x = np.asarray(inputs, float)
        t = np.asarray(targets, float)
        self.inputs = np.broadcast_to(x, (b, *x.shape[-2:])) if x.ndim == 2 else x
        self.targets = np.broadcast_to(t, (b, *t.shape[-2:])) if t.ndim == 2 else t
        if self.inputs.shape[:2] != self.targets.shape[:2] or self.inputs.shape[2] != n_in or self.targets.shape[2] != n_out:
            raise ConfigError("<code>", "inputs", "inputs (B, S, n_in) and targets (B, S, n_out) do not match the networks")
        # per network: free-node relabelling, output positions, edge ends in [free | inputs | ground] space
        w = f + n_in  # columns of the assembled [L_ff | L_f,in]
        ends = np.empty((b, 2, e), dtype=np.int64)  # relabelled ends: 0..f-1 free, f..f+n_in-1 inputs, w ground
        out_pos = np.empty((b, n_out), dtype=np.int64)
        for i, net in enumerate(nets if not self.shared else nets[:1]):
            lab = np.empty(n_nodes, dtype=np.int64)
            held = net.indices([net.ground, *net.inputs])
            free = np.setdiff1d(np.arange(n_nodes), held)
            # reverse Cuthill–McKee order of the free nodes: a narrow band for the kernel's Cholesky
            sub = net.adjacency[free][:, free].tocsr()
            lab[free[reverse_cuthill_mckee(sub, symmetric_mode=True)]] = np.arange(f)
            lab[held[1:]] = f + np.arange(n_in)
            lab[held[0]] = w
            src, dst = net.edge_ends
            ends[i] = lab[src], lab[dst]
            out_pos[i] = lab[net.indices(net.outputs)]
        if self.shared:
            ends[:] = ends[0]
            out_pos[:] = out_pos[0]
        self.ends = ends
        both = (ends[:, 0] < f) & (ends[:, 1] < f)
        self.bw = int(np.max(np.abs(ends[:, 0] - ends[:, 1])[both], initial=0))  # half-bandwidth of L_ff
        self.out_pos = out_pos
        # scatter pattern of the augmented system [L_ff | −L_f,in | E_out], row stride ww:
        # edge (p, q) with p free adds +k at (p, p), −k at (p, q) for q free, +k at (p, q) for q an input
        ww = w + n_out
        self._ww = ww
        rows, cols, edges, signs = [], [], [], []
        ar = np.arange(e)
        for i in range(1 if self.shared else b):
            a, c = ends[i]
            for p, q in ((a, c), (c, a)):
                m = p < f
                m2 = m & (q < w)
                rows += [p[m] * ww + p[m], p[m2] * ww + q[m2]]
                edges += [ar[m], ar[m2]]
                signs += [np.ones(int(m.sum())), np.where(q[m2] < f, -1.0, 1.0)]
                cols.append(np.full(int(m.sum()) + int(m2.sum()), i))
        r, nb, ed, sg = (np.concatenate(v) for v in (rows, cols, edges, signs))
        n_out_ar = np.arange(n_out)
        if self.shared:
            amap = np.zeros((f * ww, e))
            np.add.at(amap, (r, ed), sg)
            self._amap = amap  # (f·ww, E) @ kT (E, B) -> (f·ww, B)
            self._one_rows = out_pos[0] * ww + w + n_out_ar  # rows of the (f·ww, B) array holding E_out's ones
        else:
            self._flat = r * b + nb  # index into a (f·ww, B) array
            self._edge_flat = ed * b + nb  # index into kT.ravel()
            self._sign = sg
            self._one_flat = ((out_pos * ww + w + n_out_ar[None, :]) * b + np.arange(b)[:, None]).ravel()
        # drops ΔV = V[a] − V[c] with V = [V_f, x, 0]: dense incidence (shared wiring) or a gather
        if self.shared:
            dfull = np.zeros((e, w + 1))
            dfull[ar, ends[0, 0]] += 1.0
            dfull[ar, ends[0, 1]] -= 1.0
            self._d_free = np.ascontiguousarray(dfull[:, :f])
            self._d_in = dfull[:, f:w]  # (E, n_in)
        else:
            bb = np.arange(b)[None, :]
            self._ia = ends[:, 0].T * b + bb  # (E, B) flat index into a (nodes·B) array
            self._ic = ends[:, 1].T * b + bb
        self._xs = np.ascontiguousarray(self.inputs.transpose(1, 2, 0))  # (S, n_in, B)
        self._ts = np.ascontiguousarray(self.targets.transpose(1, 2, 0))  # (S, n_out, B)
        self._xb = np.ascontiguousarray(self.inputs)  # (B, S, n_in) for the compiled kernel
        self._tb = np.ascontiguousarray(self.targets)
        u = np.concatenate([self._xs, self._ts], axis=1)  # (S, m, B)
        self._moments = np.einsum("sib,sjb->ijb", u, u) / u.shape[0]  # (m, m, B)

    @property
    def k(self) -> np.ndarray:
        """Conductances (S), shape (B, E)."""
        return self._kb if self.engine == "numba" else self._kt.T

    @k.setter
    def k(self, value: np.ndarray) -> None:
        v = np.asarray(value, dtype=float)
        if self.engine == "numba":
            self._kb = np.ascontiguousarray(v).copy()
        else:
            self._kt = np.ascontiguousarray(v.T)

    def _assemble(self) -> np.ndarray:
        """The augmented systems [L_ff | −L_f,in | E_out] of every network, shape (f, f + n_in + n_out, B)."""
        f, ww, b = self.f, self._ww, self.b
        kt = self._kt if self.engine == "numpy" else np.ascontiguousarray(self._kb.T)  # (E, B)
        if self.shared:
            m = self._amap @ kt
            m[self._one_rows] = 1.0
        else:
            m = np.bincount(self._flat, weights=kt.ravel()[self._edge_flat] * self._sign, minlength=f * ww * b)
            m[self._one_flat] = 1.0
        return m.reshape(f, ww, b)

    def responses(self) -> tuple[np.ndarray, np.ndarray]:
        """G (f, n_in, B) and Z (f, n_out, B) of every network (see :meth:`CoupledLearning.responses`)."""
        f, n_in = self.f, self.n_in
        m = self._assemble()
        if f > 24:  # LAPACK per matrix beats the elimination loop for larger systems
            lhs = np.ascontiguousarray(m[:, :f].transpose(2, 0, 1))
            rhs = np.ascontiguousarray(m[:, f:].transpose(2, 0, 1))
            x = np.linalg.solve(lhs, rhs).transpose(1, 2, 0)
        else:
            for j in range(f):  # forward elimination, vectorised over the batch
                row = m[j, j + 1 :]
                row /= m[j, j]
                m[j + 1 :, j + 1 :] -= m[j + 1 :, j, None, :] * row[None]
            x = m[:, f:]
            for j in range(f - 1, 0, -1):  # back substitution (rows already scaled by their pivots)
                x[:j] -= m[:j, j : j + 1] * x[j : j + 1]
        return x[:, :n_in], x[:, n_in:]

    def _edge_drops(self, x: np.ndarray, with_inputs: bool) -> np.ndarray:
        """Edge drops of node responses x (f, c, B) -> (c, E, B); input nodes at identity if ``with_inputs``."""
        f, b = self.f, self.b
        c = x.shape[1]
        if self.shared:
            out = self._d_free @ x.transpose(1, 0, 2)  # (c, E, B)
            if with_inputs:
                out += self._d_in.T[:, :, None]
            return out
        full = np.zeros((c, f + self.n_in + 1, b))
        full[:, :f] = x.transpose(1, 0, 2)
        if with_inputs:
            full[np.arange(c), f + np.arange(c)] = 1.0
        flat = full.reshape(c, -1)
        return np.take(flat, self._ia, axis=1) - np.take(flat, self._ic, axis=1)

    def gradient(self) -> tuple[np.ndarray, np.ndarray]:
        """Δk (S), shape (B, E), of the continuous rule over each network's samples, and errors (B,) (V²)."""
        g, z = self.responses()
        n_in, n_out = self.n_in, self.n_out
        bi = np.arange(self.b)
        g_out = g[self.out_pos.T, :, bi].transpose(0, 2, 1)  # (n_out, n_in, B)
        s = z[self.out_pos.T, :, bi].transpose(0, 2, 1)  # (n_out, n_out, B)
        q_f = self._edge_drops(g, True)  # (n_in, E, B) drops per input volt
        dz = self._edge_drops(z, False)  # (n_out, E, B)
        if n_out == 1:
            s_inv = 1.0 / s
        elif n_out == 2:
            det = s[0, 0] * s[1, 1] - s[0, 1] * s[1, 0]
            s_inv = np.stack([np.stack([s[1, 1], -s[0, 1]]), np.stack([-s[1, 0], s[0, 0]])]) / det
        else:
            s_inv = np.linalg.inv(s.transpose(2, 0, 1)).transpose(1, 2, 0)
        eta = self.eta
        r = [sum(dz[k] * (eta * s_inv[k, j]) for k in range(n_out)) for j in range(n_out)]  # η D_f Z S⁻¹
        xs, ts = self._xs, self._ts
        n_s = xs.shape[0]
        out = np.einsum("ojb,sjb->sob", g_out, xs)  # (S, n_out, B) free outputs
        err = np.mean((out - ts) ** 2, axis=(0, 1))
        acc = np.zeros((self.e, self.b))
        if n_s <= n_in + n_out:  # explicit per sample
            for si in range(n_s):
                dv_f = sum(q_f[j] * xs[si, j] for j in range(n_in))
                d = ts[si] - out[si]  # (n_out, B)
                delta = sum(r[k] * d[k] for k in range(n_out))
                acc -= delta * (2.0 * dv_f + delta)
            acc /= n_s
        else:  # second moments of [x; t]: mean (ΔV^F)² − mean (ΔV^C)²
            q_c = [q_f[j] - sum(r[k] * g_out[k, j] for k in range(n_out)) for j in range(n_in)] + r
            m = self._moments
            for i in range(n_in + n_out):
                for j in range(n_in + n_out):
                    term = q_c[i] * q_c[j]
                    if i < n_in and j < n_in:
                        term = q_f[i] * q_f[j] - term
                    else:
                        term = -term
                    acc += term * m[i, j]
        acc *= self.alpha / eta
        return acc.T, err  # (B, E)

    def step(self) -> np.ndarray:
        """One full-batch step of every network; returns each network's mean free error (V²), shape (B,)."""
        if self.engine == "numba":
            return self._run_kernel(1)[0]
        dk, err = self.gradient()
        kt = self._kt
        kt += dk.T
        np.maximum(kt, self._kmin_t, out=kt)
        np.minimum(kt, self._kmax_t, out=kt)
        return err

    def _run_kernel(self, steps: int) -> np.ndarray:
        errs = np.empty((steps, self.b))
        args = (self._kb, self.ends, self.out_pos, self._xb, self._tb, self.alpha, self.eta,
                self._kmin_b, self._kmax_b, self.f, steps, errs, self.bw)
        if self.threads > 1 and self.b >= 64 * self.threads:
            _kernels.train_small_parallel(*args, self.threads)
        else:
            _kernels.train_small(*args)
        return errs

    def train(self, steps: int) -> np.ndarray:
        """``steps`` steps; per-step errors (V²) measured before each update, shape (steps, B)."""
        if self.engine == "numba":
            return self._run_kernel(steps)
        return np.stack([self.step() for _ in range(steps)])


def direct_states(
    network: Network, conductances: np.ndarray, x: np.ndarray, t: np.ndarray, eta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Reference free and clamped node voltages (N,) by two fresh direct solves (:func:`labnet.core.physics.solve`)."""
    from labnet.core.physics import solve

    held = dict(zip(network.inputs, map(float, x)))
    vf = solve(network, conductances, held)
    o = vf[network.indices(network.outputs)]
    held.update(zip(network.outputs, map(float, o + eta * (np.asarray(t) - o))))
    return vf, solve(network, conductances, held)


__all__ = ["BatchedCoupledLearning", "CoupledLearning", "DENSE_MAX", "KERNEL_MAX", "PCG_MIN", "StepStats", "direct_states"]
