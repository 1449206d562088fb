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
  (:class:`labnet.core.solvers.SparseCholesky`, CHOLMOD when installed;
  :mod:`labnet.insilico.direct`).
* **Below one factorisation per step** (``method="pcg"``, :mod:`labnet.insilico.pcg`): conjugate
  gradients preconditioned by an earlier step's factorisation, warm-started from the last
  ``history`` solutions, refreshed when that stops paying; the node voltages agree with a fresh
  direct solve to about 1e-10 relative (tested in ``tests/test_insilico.py``).
* **Small networks**: dense LAPACK Cholesky with conductances scattered straight into the
  matrix (:mod:`labnet.insilico.dense`); :class:`labnet.insilico.many.BatchedCoupledLearning`
  trains many independent small networks in one vectorised call.

The three solve strategies implement :class:`labnet.insilico.strategy.SolveStrategy`; the
trainer picks one from its ``method`` string (:func:`labnet.insilico.methods.make_strategy`).

Conductances in siemens (S), voltages in volts (V), α in S/V².
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.linalg import lapack

from labnet.core.conductance import ConductanceModel
from labnet.core.errors import ConfigError
from labnet.core.network import Network
from labnet.core.rules import Rule, apply_step, clip_conductance, power_efficient
from labnet.core.solvers import ReducedLaplacian
from labnet.core.threads import ThreadLimit, limited
from labnet.insilico import batched as _kernels
from labnet.insilico.choice import Choice
from labnet.insilico.many import KERNEL_MAX, BatchedCoupledLearning
from labnet.insilico.methods import DENSE_MAX, METHODS, PCG_MIN, auto_method, make_strategy
from labnet.insilico.strategy import SolveProblem, StepStats

(_dposv,) = lapack.get_lapack_funcs(("posv",), (np.zeros(1),))


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
        (symbolic analysis reused); ``pcg``: stale-factor preconditioned CG; ``auto``: the one
        the cost model of :mod:`labnet.insilico.choice` predicts fastest for this network's
        structure (its prediction is kept in :attr:`choice`).
    rtol : float
        PCG stopping tolerance on the relative residual of every column.
    refresh_iterations : int
        Refactorise at the next step when a PCG solve needed more iterations than this.
    refresh_cost : float, optional
        Cost of one numeric refactorisation in PCG iterations (one preconditioner solve plus one
        mat-vec on the step's right-hand sides). Default: measured once, at the first PCG step.
    history : int or "auto"
        PCG starts from the best (A-norm) combination of the last ``history`` solutions (1: the
        previous solution alone); ``"auto"`` (default) times 4, 6 and 8 over the first steps and
        keeps the fastest; see :class:`labnet.insilico.pcg.PcgSolve`.
    backend : {"cholmod", "qdldl", "splu"}, optional
        Sparse factorisation back end (default :data:`labnet.core.solvers.DEFAULT_BACKEND`).
    seed : int or Generator
        For stochastic rounding and batch draws.
    use_kernel : bool
        Full-batch continuous steps of small networks (≤ :data:`KERNEL_MAX` free nodes) run in
        the compiled kernel of :mod:`labnet.insilico.batched` when numba is installed.
    threads : int or "default", optional
        BLAS/OpenMP threads while this trainer solves (:mod:`labnet.core.threads`; default
        ``$LABNET_THREADS`` or 1; 0 or "default": the libraries' own settings).
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
        history: int | str = "auto",
        backend: str | None = None,
        seed: int | np.random.Generator = 0,
        use_kernel: bool = True,
        threads: int | str | None = None,
    ) -> None:
        #: BLAS/OpenMP thread limit around every solve (:class:`labnet.core.threads.ThreadLimit`).
        self.thread_limit = ThreadLimit(threads)
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
        self.rule, self.model = rule, model
        self.quantised = codes is not None  # below: λ of the power-efficient rule (tap rules only; 0 = coupled)
        self._lam = rule.power_lambda if self.quantised and rule is not None and rule.formula == "power_efficient" else 0.0
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
        #: What ``method="auto"`` predicted per strategy (None for an explicit method).
        self.choice: Choice | None = None
        if method == "auto":
            self.choice = auto_method(red, n_samples=self.inputs.shape[0], n_in=n_in, n_out=n_out, backend=backend,
                                      kernel=not self.quantised and _kernels.HAVE_NUMBA and use_kernel)
            method = self.choice.method
        self.method = method
        if history != "auto" and not (isinstance(history, int) and not isinstance(history, bool) and history >= 1):
            raise ConfigError("<code>", "history", f"expected an integer >= 1 or 'auto', got {history!r}")
        self.stats = StepStats()
        e_out = np.zeros((red.n_free, n_out))
        e_out[self.out_pos, np.arange(n_out)] = 1.0
        problem = SolveProblem(network, red, n_in, n_out, self.out_pos, e_out, self.in_cols)
        #: The linear algebra (:class:`labnet.insilico.strategy.SolveStrategy`) named by ``method``.
        self.solver = make_strategy(method, problem, backend=backend, rtol=rtol, refresh_iterations=refresh_iterations,
                                    refresh_cost=refresh_cost, history=history)
        self.backend = self.solver.backend
        # incidence pieces: drops ΔV = D_f V_f + D_in x
        self.d_free = self.solver.d_free
        self.d_in = red.d_held[:, 1:].toarray()  # (E, n_in)
        # (E, S): input part of every sample's drops (the lean one-sample path), or per step (large E·S)
        self._c_in = self.d_in @ self.inputs.T if method == "dense" or self.inputs.shape[0] == 1 else None
        self._moments_all = self._moments(np.arange(self.inputs.shape[0]))
        self._kernel: BatchedCoupledLearning | None = None
        if (method == "dense" and not self.quantised and _kernels.HAVE_NUMBA and red.n_free <= KERNEL_MAX
                and use_kernel):
            self._kernel = BatchedCoupledLearning(
                network, k[None, :], self.inputs, self.targets, alpha=alpha, eta=eta, k_min=k_min, k_max=k_max
            )

    # ------------------------------------------------------------------ linear algebra
    @limited
    def responses(self, combos: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """G·C (F, c) and Z (F, n_out) for the present conductances.

        G = −L_ff⁻¹ L_f,in is the free-node response to one volt on each input (default C = I,
        c = n_in); with ``combos`` C (n_in, c) only the c input patterns C's columns are solved
        for (fewer right-hand sides when a task has fewer distinct samples than inputs).
        Z = L_ff⁻¹ E_out is the response to unit current injected at each output (Ω).
        """
        cmat = np.eye(self.n_in) if combos is None else combos
        self.stats.steps += 1
        return self.solver.responses(self.k, cmat, self.stats)

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
    @limited
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
            g, z = self.responses(x.T)  # g (F, n): the samples' free states; clamped = free + Z S⁻¹ η(t − o)
            g_out, dv_f = g[self.out_pos], self.d_free @ g + self.d_in @ x.T  # (n_out, n), (E, n)
            dv_c = dv_f + self.d_free @ (z @ np.linalg.solve(z[self.out_pos], self.eta * (t.T - g_out)))
            err = float(np.mean((g_out.T - t) ** 2))  # R = D_f Z S⁻¹ (E, n_out) is never formed
            return power_efficient(dv_f, dv_c, alpha=self.alpha, eta=self.eta, lam=self._lam).reshape(-1), err
        g, z = self.responses()
        q_f, r, g_out = self._drops(g, z)
        err = float(np.mean((x @ g_out.T - t) ** 2))
        eta = self.eta
        if n <= self.n_in + self.n_out:  # explicit per-sample drops, (E, n)
            dv_f = q_f @ x.T
            dv_c = dv_f + eta * (r @ (t.T - g_out @ x.T))
            return power_efficient(dv_f, dv_c, alpha=self.alpha, eta=eta, lam=self._lam).reshape(-1), err
        m = self._moments_all if idx is None else self._moments(idx)
        n_in, q_c = self.n_in, np.concatenate([q_f - eta * (r @ g_out), eta * r], axis=1)  # ΔV^C = Q_C [x; t]
        mean_f2 = np.einsum("ej,jk,ek->e", q_f, m[:n_in, :n_in], q_f)
        mean_c2 = np.einsum("ej,jk,ek->e", q_c, m, q_c)
        return (self.alpha / eta) * ((1.0 - self._lam) * mean_f2 - mean_c2), err

    def _step(self, samples: np.ndarray | None = None) -> float:
        """One training step on ``samples`` (default: all — a full-batch epoch); returns the mean
        free-state error (V²) measured before the update."""
        if samples is None and self._kernel is not None:
            return float(self._run_kernel(1)[0])
        # one sample: the strategy's lean path (SolveStrategy.single); PCG's warm start wants one fixed sample
        one = self.inputs.shape[0] == 1 or (samples is not None and np.size(samples) == 1 and self.method != "pcg")
        if one and not self.quantised:
            lean = self._step_single(0 if samples is None else int(np.reshape(samples, -1)[0]))
            if lean is not None:
                return lean
        dk, err = self.gradient(samples)
        self.apply(dk)
        return err

    step = epoch = limited(_step)

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

    def _step_single(self, s: int) -> float | None:
        """Lean path for one sample: the sample's own right-hand side and the output columns in
        one solve, drops by one product (:meth:`SolveStrategy.single`). Same result as
        ``gradient([s])`` + ``apply`` to round-off (tested); None if the strategy has no such path."""
        lean = self.solver.single(self.k, self.inputs[s], self.stats)
        if lean is None:
            return None
        w, xo = lean
        o = xo[:, 0]
        d = self.targets[s] - o
        _, mu, info = _dposv(xo[:, 1:], d * self.eta, lower=1)  # S⁻¹ η (t − o)
        dv_f = w[:, 0] + (self._c_in[:, s] if self._c_in is not None else self.d_in @ self.inputs[s])
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
        return float(d @ d) / d.size

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

    @limited
    def train(self, steps: int, batch: int | None = None) -> np.ndarray:
        """Run ``steps`` steps; with ``batch`` draw that many samples per step, else full batch.

        Returns the per-step mean free error (V²), shape (steps,).
        """
        if batch is None and self._kernel is not None:
            return self._run_kernel(steps)
        errs = np.empty(steps)
        s = self.inputs.shape[0]
        for i in range(steps):
            errs[i] = self._step(None if batch is None else self.rng.integers(0, s, size=batch))
        return errs

    @limited
    def outputs(self, inputs: np.ndarray) -> np.ndarray:
        """Free-state output voltages (V), shape (S, n_out), for inputs (S, n_in) at the present conductances."""
        g, _ = self.responses()
        return _as_2d(inputs, self.n_in, "inputs") @ g[self.out_pos].T

    @limited
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


__all__ = ["BatchedCoupledLearning", "CoupledLearning", "DENSE_MAX", "KERNEL_MAX", "PCG_MIN", "StepStats", "direct_states",
           "make_strategy"]
