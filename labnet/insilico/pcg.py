"""Below one factorisation per step (``method="pcg"``).

Conjugate gradients preconditioned by an earlier step's factorisation, warm-started from the
A-norm-best combination of the last ``history`` steps' G and Z (a Galerkin projection on their
Newton differences, which contains polynomial extrapolation of the conductance trajectory:
≈1.1–1.5 instead of ≈4.3 iterations per step at 65k edges), stopping at relative residual
``rtol``. The factor is refreshed when a step's PCG cost (iterations, in units where a
refactorisation costs ``refresh_cost``) exceeds the average cost per step since the last
refactorisation — the point where refreshing starts to pay — or the iterations exceed
``refresh_iterations``; it is recomputed at once if PCG does not converge.

``history = "auto"`` (the default) picks the history length by measurement: after
:data:`TUNE_WARMUP` steps it runs :data:`TUNE_STEPS` steps with each of :data:`HISTORY_CHOICES`
and keeps the fastest (the best length depends on the network and the trajectory: measured on
Delaunay networks, 4 at 16k edges (1.30 vs 1.47 ms per step with 8), 6 at 33k, 8 at 65k). The
choice is timed, so two runs may pick differently; the solutions agree to ``rtol`` either way.
Both this choice and the measured ``refresh_cost`` use the thread's CPU time
(:func:`time.thread_time`), not wall time: on a loaded machine wall time also counts the slices
other processes got, which made the choice erratic (measured at 16k edges, load average 4.6
from other sessions: wall-time trials of 3.5–9.2 ms per step, history 8 picked where 4 is
fastest; thread CPU time: 1.8–2.4 ms, 4 picked in every run). After the trials the
difference table keeps only the chosen length (it kept all 8 before).
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from labnet.core.solvers import block_pcg
from labnet.insilico.direct import DirectSolve
from labnet.insilico.strategy import SolveProblem, StepStats

#: History lengths ``history="auto"`` tries, and its warm-up and trial lengths (steps).
HISTORY_CHOICES = (4, 6, 8)
TUNE_WARMUP, TUNE_STEPS = 10, 15


class PcgSolve(DirectSolve):
    """Stale-factor preconditioned block CG with a history warm start (see the module docstring).

    Parameters
    ----------
    rtol : float
        Stopping tolerance on the relative residual of every column.
    refresh_iterations : int
        Refactorise at the next step when a solve needed more iterations than this.
    refresh_cost : float, optional
        Cost of one numeric refactorisation in PCG iterations; default: measured at the first step.
    history : int or "auto"
        Solutions (≥ 1) the warm start combines; ``"auto"``: the fastest of :data:`HISTORY_CHOICES`,
        measured during the first steps (``history_trials`` holds the seconds per step of each).
    """

    name: ClassVar[str] = "pcg"

    def __init__(self, problem: SolveProblem, backend: str | None = None, *, rtol: float = 1e-12,
                 refresh_iterations: int = 20, refresh_cost: float | None = None,
                 history: int | str = "auto") -> None:
        super().__init__(problem, backend)
        self.rtol = float(rtol)
        self.refresh_iterations = int(refresh_iterations)
        self.refresh_cost = refresh_cost
        if history != "auto" and not (isinstance(history, int) and history >= 1):
            raise ValueError(f"history: expected an integer >= 1 or 'auto', got {history!r}")
        self._tuning = history == "auto"
        self.history = HISTORY_CHOICES[-1] if history == "auto" else int(history)
        #: ``history="auto"``: seconds per step measured with each history length tried
        self.history_trials: dict[int, float] = {}
        self._tune_step = 0
        self._tune_spent = 0.0
        self._cycle = [0.0, 0]  # PCG cost (iterations) since the last refactorisation, and steps
        self._stale = True
        self._guess: np.ndarray | None = None
        self._diff: np.ndarray | None = None  # (history, c, F): Newton differences of past solutions
        self._diff_old: np.ndarray | None = None
        self._n_hist = 0

    def solve_all(self, k: np.ndarray, combos: np.ndarray, stats: StepStats) -> np.ndarray:
        if not self._tuning:
            return self._solve_all(k, combos, stats)
        t0 = time.thread_time()
        out = self._solve_all(k, combos, stats)
        self._tune(time.thread_time() - t0)
        return out

    def _tune(self, seconds: float) -> None:
        """``history="auto"``: time :data:`TUNE_STEPS` steps with each choice after the warm-up; keep the fastest."""
        self._tune_step += 1
        trial = (self._tune_step - TUNE_WARMUP) // TUNE_STEPS  # index into HISTORY_CHOICES (< 0: warm-up)
        if trial < 0:
            if self._tune_step == TUNE_WARMUP:
                self._set_history(HISTORY_CHOICES[0])
            return
        self._tune_spent += seconds
        if (self._tune_step - TUNE_WARMUP) % TUNE_STEPS == TUNE_STEPS - 1:  # the trial's last step
            self.history_trials[HISTORY_CHOICES[trial]] = self._tune_spent / TUNE_STEPS
            self._tune_spent = 0.0
            if trial + 1 < len(HISTORY_CHOICES):
                self._set_history(HISTORY_CHOICES[trial + 1])
            else:
                self._tuning = False
                self._set_history(min(self.history_trials, key=self.history_trials.__getitem__))

    def _set_history(self, m: int) -> None:
        """Change the history length (the difference table holds the longest choice: nothing is lost)."""
        self.history = m

    def _solve_all(self, k: np.ndarray, combos: np.ndarray, stats: StepStats) -> np.ndarray:
        lap, rhs = self.system(k, combos)
        guess = self._guess if self._guess is not None and self._guess.shape == rhs.shape else None
        if self.factor is None or self._stale or guess is None:
            factor = self.factorise(lap, stats)
            self._stale = False
            x = factor.solve(rhs)
            if self.refresh_cost is None:
                self.refresh_cost = self._measure_refresh_cost(lap, rhs)
            self._cycle = [float(self.refresh_cost or 0.0) + 1.0, 1]
        else:
            factor = self.factor
            guess, r0 = self._warm_start(lap, rhs)
            res = block_pcg(lap.__matmul__, factor.solve, rhs, guess, rtol=self.rtol, maxiter=40, r0=r0)
            stats.pcg_iterations += res.iterations
            stats.pcg_solves += 1
            if not res.converged:  # drifted too far: refactorise now and solve directly
                factor.refactor(lap)
                stats.factorisations += 1
                x = factor.solve(rhs)
                self._cycle = [float(self.refresh_cost or 0.0) + 1.0, 1]
            else:
                x = res.x
                cost = res.iterations + 1.0  # + the residual and bookkeeping
                self._cycle[0] += cost
                self._cycle[1] += 1
                if cost > self._cycle[0] / self._cycle[1] or res.iterations > self.refresh_iterations:
                    self._stale = True
        self._guess = x
        self._push_history(x)
        return x

    def _warm_start(self, lap: sp.csc_matrix, rhs: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Starting guess for PCG and its residual: per column, the Galerkin (A-norm optimal) solution
        in the span of the last ``history`` solutions of that column, spanned by their Newton
        differences (x₁, x₁ − x₂, x₁ − 2x₂ + x₃, …: a well-conditioned basis of the same span, which
        contains polynomial extrapolation of every order < ``history``). Never worse in the A-norm
        than the previous solution alone; with conductances drifting smoothly it is orders of
        magnitude better (65k-edge lattice: relative residual of the start ≈2e-3 with the previous
        solution, ≈1e-11 with 8; ≈4.3 → ≈1.1–1.5 PCG iterations per step)."""
        d, m = self._diff, min(self._n_hist, self.history)
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
        w = max(self.history, HISTORY_CHOICES[-1] if self._tuning else 1)  # after tuning: only what is used
        n, c = x.shape
        if self._diff is None or self._diff_old is None or self._diff.shape[1:] != (c, n):
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
        assert self.factor is not None
        t_f = t_i = np.inf
        for _ in range(3):
            t0 = time.thread_time()
            self.factor.refactor(lap)
            t1 = time.thread_time()
            self.factor.solve(lap @ rhs)
            t2 = time.thread_time()
            t_f, t_i = min(t_f, t1 - t0), min(t_i, t2 - t1)
        self.factor.n_factorisations -= 3  # calibration, not training
        return float(t_f / max(t_i, 1e-9))
