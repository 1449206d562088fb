"""The ``method`` strings of :class:`labnet.insilico.trainer.CoupledLearning` and the solve
strategy (:class:`labnet.insilico.strategy.SolveStrategy`) each names."""

from __future__ import annotations

from labnet.core.errors import ConfigError
from labnet.insilico.dense import DenseSolve
from labnet.insilico.direct import DirectSolve
from labnet.insilico.pcg import PcgSolve
from labnet.insilico.strategy import SolveProblem, SolveStrategy

#: Free-node count at or below which :class:`CoupledLearning` uses dense LAPACK.
DENSE_MAX = 400

#: Free-node count above which ``method="auto"`` goes below one factorisation per step (PCG);
#: between DENSE_MAX and this, a numeric refactorisation per step is cheaper than PCG's
#: iterations. Measured with the history warm start (benchmarks/results-2026-11-28-0146.txt):
#: 4,097-edge Delaunay (1,370 free nodes) direct 1.10 ms vs PCG 1.41 ms per step; 4,122-edge
#: lattice (2,104 free nodes) direct 1.90 ms vs PCG 1.42 ms.
PCG_MIN = 2000

METHODS = ("auto", "dense", "direct", "pcg")



def make_strategy(method: str, problem: SolveProblem, *, backend: str | None = None, rtol: float = 1e-12,
                  refresh_iterations: int = 20, refresh_cost: float | None = None,
                  history: int = 8) -> SolveStrategy:
    """The solve strategy named by ``method`` (``"dense"``, ``"direct"`` or ``"pcg"``; ``auto`` is
    resolved by the trainer); ``backend`` is the sparse back end, the rest PCG's settings."""
    if method == "dense":
        return DenseSolve(problem)
    if method == "direct":
        return DirectSolve(problem, backend)
    if method == "pcg":
        return PcgSolve(problem, backend, rtol=rtol, refresh_iterations=refresh_iterations,
                        refresh_cost=refresh_cost, history=history)
    raise ConfigError("<code>", "method", f"expected one of {METHODS}, got {method!r}")
