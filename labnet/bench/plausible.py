"""Whether a meter scan can be right for the applied pattern (a pure check, used by :class:`labnet.bench.rig.Rig`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from labnet.core.network import Network


def implausible(network: Network, held: Mapping[str, float], ends: Sequence[float], v: np.ndarray,
                metered: Sequence[int]) -> str | None:
    """Why a scan ``v`` (V, shape (N,)) cannot be right, or None.

    A passive resistor network obeys the maximum principle: every node lies between the lowest
    and highest of ``ends`` (V: ground's 0 V, every held voltage, the voltage limit of a current
    source on the side its current pushes); a node held by a voltage source (``held``, node -> V)
    reads its setpoint. Tolerance: 2 % of the span plus 20 mV (source errors, meter loading and
    noise are far smaller; a wildly-off reading is far larger). NaN from an unmetered node (not in
    ``metered``, node indices) is ignored.
    """
    lo, hi = min(ends), max(ends)
    tol = 0.02 * (hi - lo) + 0.02
    vals = v.tolist()  # plain floats: the same comparisons, without numpy's per-call cost on 10 values
    isfinite = math.isfinite
    for i in metered:
        if not isfinite(vals[i]):
            return "non-finite value"
    j, worst = 0, -math.inf  # the node furthest outside [lo, hi] (first of equals, NaN ignored)
    for i, x in enumerate(vals):
        d = x - hi if x - hi >= lo - x else lo - x
        if d > worst and isfinite(x):
            j, worst = i, d
    if vals[j] > hi + tol or vals[j] < lo - tol:
        return f"node {network.nodes[j]} reads {vals[j]:.6g} V outside [{lo:.6g}, {hi:.6g}] V"
    for node, sv in held.items():
        i = network.index[node]
        if node in network.meter_channels and abs(vals[i] - sv) > 0.02 * abs(sv) + 0.02:
            return f"driven node {node} reads {vals[i]:.6g} V, set to {sv:.6g} V"
    return None
