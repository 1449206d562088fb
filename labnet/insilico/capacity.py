"""Training on n_T tasks at once (issue 15, item 5: capacity).

A point with ``n_tasks = n_T > 1`` is allostery with n_T targets: one input pattern (the inputs
as in a single-task point: the first at 1 V, the others uniform in 0–0.5 V), n_T output nodes,
each pushed by ``demand`` of the way from where it starts towards the farther of 5 % / 95 % of
the largest input — n_T constraints the E conductances must meet together. The error is the mean
over the n_T outputs of (V_o − V_T,o)² (V²), and training stops below ``tol`` or after ``steps``.

The physical-effects metrics are those of a single-task point (:data:`labnet.insilico.effects.METRICS`)
with the task's output functional A = Σ_o w_o e_o along the demanded shift, w = (V_T − V_0)/|V_T − V_0|:
λ_min, D_eff, ḡ of H_F (ground and inputs held), the softest mode's share of A's response, and
the overall stiffness λ̄ = tr H_F / F (``lam_mean_*``). The talk's claim to test: beyond capacity
(the n_T where the target is no longer reached) the network stays low-dimensional (D_eff down) but
stiffens (λ̄ up, ḡ down). The training itself is :func:`labnet.insilico.effects.run_tasks_point`.

Why n_T output targets and not n_T input patterns on one output: with ground and the inputs held,
an output is linear in the inputs, V_o = Σ_i w_i x_i (w_i ≥ 0, Σ_i w_i ≤ 1, set by the conductances),
so more than ``n_inputs`` generic (pattern, target) pairs on one output cannot be met by any
conductances — that capacity is n_inputs whatever the edges. Output targets instead compete for
the E conductances, which is the capacity the talk asks about.
"""

from __future__ import annotations

import numpy as np

from labnet.core.network import Network
from labnet.core.physics import Solver


def task_targets(net: Network, k0: np.ndarray, x: np.ndarray, demand: float) -> tuple[np.ndarray, np.ndarray]:
    """Untrained outputs ``o0`` (n_T,) and targets (n_T,) in V for inputs ``x`` (n_in,) V: each output
    moved ``demand`` of the way towards the farther of 5 % / 95 % of ``x.max()``."""
    v = Solver(net, k0, list(net.inputs)).solve(dict(zip(net.inputs, map(float, x))))
    o0 = v[net.indices(list(net.outputs))]
    lo, hi = 0.05 * x.max(), 0.95 * x.max()
    far = np.where(np.abs(o0 - lo) > np.abs(o0 - hi), lo, hi)
    return o0, o0 + demand * (far - o0)


def capacity_index(n_tasks: np.ndarray, reached: np.ndarray, threshold: float = 0.5) -> float:
    """The capacity n_T*: the smallest n_T at which at most ``threshold`` of the networks reach the
    target (``reached`` (P,) bool per point, ``n_tasks`` (P,) its n_T); NaN if every n_T is below it."""
    ns = np.unique(n_tasks)
    for n in ns:
        if np.mean(reached[n_tasks == n]) <= threshold:
            return float(n)
    return float("nan")


__all__ = ["capacity_index", "task_targets"]
