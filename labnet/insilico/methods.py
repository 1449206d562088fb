"""The ``method`` strings of :class:`labnet.insilico.trainer.CoupledLearning` and the solve
strategy (:class:`labnet.insilico.strategy.SolveStrategy`) each names."""

from __future__ import annotations

from labnet.core import solvers
from labnet.core.errors import ConfigError
from labnet.core.solvers import ReducedLaplacian
from labnet.insilico.choice import Choice, choose
from labnet.insilico.dense import BAND_MIN, DenseSolve
from labnet.insilico.direct import DirectSolve
from labnet.insilico.many import KERNEL_MAX
from labnet.insilico.pcg import PcgSolve
from labnet.insilico.strategy import SolveProblem, SolveStrategy

#: The fixed thresholds ``method="auto"`` used before issue 17 (free nodes: dense up to
#: DENSE_MAX, direct up to PCG_MIN, PCG above). Kept for reference and for callers that name
#: them; ``auto`` now asks the cost model of :mod:`labnet.insilico.choice` instead.
DENSE_MAX = 400
PCG_MIN = 2000

METHODS = ("auto", "dense", "direct", "pcg")


def auto_method(red: ReducedLaplacian, *, n_samples: int, n_in: int, n_out: int, backend: str | None,
                kernel: bool) -> Choice:
    """What ``method="auto"`` resolves to for a trainer on ``red`` with ``n_samples`` training
    samples (:func:`labnet.insilico.choice.choose`; ``kernel``: the numba kernel may be used)."""
    cols = min(n_samples, n_in) + n_out
    return choose(red, backend=backend or solvers.DEFAULT_BACKEND, cols=cols, n_in=n_in, single=n_samples == 1,
                  kernel=kernel, band_min=BAND_MIN, kernel_max=KERNEL_MAX)



def make_strategy(method: str, problem: SolveProblem, *, backend: str | None = None, rtol: float = 1e-12,
                  refresh_iterations: int = 20, refresh_cost: float | None = None,
                  history: int | str = "auto") -> SolveStrategy:
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
