"""The interface between :class:`labnet.insilico.trainer.CoupledLearning` and its linear algebra.

A training step needs, for the present conductances k (S), the solutions of one linear system
with the reduced Laplacian L_ff (F × F, SPD) and n_in + n_out right-hand sides:

    G·C = −L_ff⁻¹ L_f,in C   (F, c)     free-node response to the input patterns C (n_in, c)
    Z   =  L_ff⁻¹ E_out      (F, n_out) response to unit current injected at each output (Ω)

G gives the free state, Z the clamped one (see the trainer's module docstring). A
:class:`SolveStrategy` computes them; the trainer picks one by its ``method`` string:

* ``dense`` — :class:`labnet.insilico.dense.DenseSolve` (LAPACK Cholesky per step);
* ``direct`` — :class:`labnet.insilico.direct.DirectSolve` (sparse numeric refactorisation per
  step, symbolic analysis reused);
* ``pcg`` — :class:`labnet.insilico.pcg.PcgSolve` (conjugate gradients preconditioned by a
  stale factorisation, warm-started from past solutions, refreshed when that stops paying).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from labnet.core.network import Network
from labnet.core.solvers import ReducedLaplacian


@dataclass
class StepStats:
    """Bookkeeping of the linear algebra of a trainer (cumulative)."""

    steps: int = 0
    factorisations: int = 0
    pcg_iterations: int = 0
    pcg_solves: int = 0


@dataclass(frozen=True)
class SolveProblem:
    """What a strategy solves for, fixed for a trainer's life.

    ``red``: the reduced Laplacian's pattern (ground and inputs held); ``out_pos`` (n_out,):
    the outputs' rows among the free nodes; ``e_out`` (F, n_out): E_out, a one per output;
    ``in_cols``: the columns of L_f,held that belong to the inputs.
    """

    network: Network
    red: ReducedLaplacian
    n_in: int
    n_out: int
    out_pos: np.ndarray
    e_out: np.ndarray
    in_cols: np.ndarray


class SolveStrategy(ABC):
    """How a trainer gets G·C and Z for given conductances (see the module docstring)."""

    #: The trainer's ``method`` string naming this strategy.
    name: ClassVar[str]
    #: ``"dense"`` or the sparse factorisation back end (``"cholmod"``, ``"splu"``).
    backend: str
    #: Edge incidence of the free nodes, D_f (E, F): ΔV = D_f V_f + D_in x; dense or sparse,
    #: whichever multiplies fastest with this strategy's solutions.
    d_free: np.ndarray | sp.spmatrix

    def __init__(self, problem: SolveProblem) -> None:
        self.problem = problem
        self.d_free = problem.red.d_free

    @abstractmethod
    def responses(self, k: np.ndarray, combos: np.ndarray, stats: StepStats) -> tuple[np.ndarray, np.ndarray]:
        """G·C (F, c) and Z (F, n_out) for conductances ``k`` (E,) (S) and input patterns
        ``combos`` C (n_in, c); factorisations and PCG work are counted in ``stats``."""

    def single(self, k: np.ndarray, x: np.ndarray, stats: StepStats) -> tuple[np.ndarray, np.ndarray] | None:
        """Lean path for one sample with inputs ``x`` (n_in,) (V): the drops D_f·[V_f | Z]
        (E, 1 + n_out) and the output rows of [V_f | Z] (n_out, 1 + n_out); work counted in
        ``stats``. None: this strategy has no such path (the trainer takes the general one)."""
        return None
