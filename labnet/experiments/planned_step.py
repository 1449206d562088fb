"""One training state pair under a :class:`~labnet.experiments.measureplan.MeasurementPlan`.

The engine measured the free and the clamped state at the plan's training NPLC; here the
marginal decisions (:func:`~labnet.experiments.measureplan.marginal_edges`) are held (not
moved this step) or, with ``on_marginal = "reread"``, both states are read again at the
re-read NPLC — the clamped state first (it is still applied), then the free state (inputs
applied again, settled) — and Δk comes from the re-reads. Re-reads are not session rows: the
rows keep the states as first measured.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from labnet.bench.rig import Rig
from labnet.core.rules import Rule
from labnet.experiments.measureplan import MeasurementPlan, marginal_edges


def planned_dk(rig: Rig, rule: Rule, plan: MeasurementPlan, free_held: dict[str, float], dvf: np.ndarray,
               dvc: np.ndarray, settle: Callable[[], None]) -> tuple[np.ndarray, int]:
    """Δk (S, shape (E,)) from the quick reads ``dvf``, ``dvc`` (V, (E,)) and 1 if a decision was
    marginal (else 0). ``free_held``: the free state's source pattern; ``settle()`` waits the
    settle time (and may stop the run at a safe point)."""
    marginal = marginal_edges(plan, dvf, dvc)
    if not marginal.any():
        return rule.dk(dvf, dvc), 0
    if plan.on_marginal == "reread":
        net = rig.network
        rig.set_nplc(plan.nplc_reread)
        vc = rig.measure()
        rig.apply(free_held)
        settle()
        vf = rig.measure()
        rig.set_nplc(plan.nplc_train)
        return rule.dk(net.delta_v(vf), net.delta_v(vc)), 1
    dk = np.array(rule.dk(dvf, dvc), dtype=float)
    dk[marginal] = 0.0
    return dk, 1


__all__ = ["planned_dk"]
