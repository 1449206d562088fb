"""Measure a source output's step response on the bench (``labnet doctor --responses``).

No settling figure is documented for some supplies (the E36312A: :mod:`labnet.core.settling`), so
the response a planned run times its waits by (:mod:`labnet.bench.settle`) has to be measured.
For each voltage-sourced, metered node, with every other source released:

1. hold the node at ``low_v``, then at ``high_v``, waiting ``rest_s`` each time, and read a few
   scans of each: the settled levels and the noise of one reading;
2. for each delay ``d`` of a geometric grid: hold it at ``low_v``, wait ``rest_s``, step it to
   ``high_v``, wait ``d``, read one scan (equivalent-time sampling: one point per step); ``repeats``
   steps per delay, averaged; stop once two delays running are within the noise of the high level.

The residual ``r(d) = V_final − V(d)`` of a first-order output is ``A e^(−d/τ)``: the meter's
latency (command, trigger, the node's place in the scan) and its aperture only scale ``A``, so τ
is the slope of ``ln r`` against ``d`` (least squares over the points above ``k_noise`` × the noise of
one reading, each weighted by r/σ: the error of ln r is σ/r). The scans run at the meter's
shortest integration time (``nplc``), so every reading
a run takes — an aperture at least as long, the same scan — sees at most ``A e^(−w/τ)`` of a step
``Δ`` after a wait ``w``: the response ``(t_d, τ)`` with ``t_d = max(0, τ ln(A/Δ))`` (the *effective*
dead time) bounds it (:func:`fit_response`). An output faster than the meter resolves gives no fit
(its residual is below the noise at the first reading); one that is not exponential (a
slew-limited ramp) is flagged: some well-resolved point (r ≥ 20 σ) is off the fit by more than
:data:`MAX_MISFIT` of itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Delays (s) after the step: 0, then 0.1 ms doubling to 0.82 s.
DELAYS_S: tuple[float, ...] = (0.0, *(1e-4 * 2 ** k for k in range(14)))
#: A point whose residual is above this fraction of the step is still in the dead time (not fitted).
MOVED = 0.95
#: A fit with a point of r ≥ 20 σ off it by more than this fraction is "not first-order".
MAX_MISFIT = 0.25


@dataclass(frozen=True)
class ResponseFit:
    """The measured step response of one source output.

    Attributes
    ----------
    node, channel : str
        The node and the source channel driving it.
    step_v : float
        The step measured (V): settled high minus settled low reading.
    tau_s : float or None
        First-order time constant (s); None when the output settled before the first reading.
    dead_s : float or None
        Effective dead time (s, ≥ 0) as this meter sees it (module docstring).
    points : int
        Delays whose residual was above the noise (used in the fit).
    misfit : float
        Largest |r / fit − 1| over the well-resolved points (r ≥ 20 σ; 0 for an exact exponential).
    noise_v : float
        Noise of one reading (V rms, from the repeats of the settled levels; at least the quantum).
    delays_s, residuals_v : tuple of float
        Every delay measured and its mean residual (V).
    """

    node: str
    channel: str
    step_v: float
    tau_s: float | None
    dead_s: float | None
    points: int
    misfit: float
    noise_v: float
    delays_s: tuple[float, ...]
    residuals_v: tuple[float, ...]

    @property
    def first_order(self) -> bool:
        return self.tau_s is not None and self.misfit <= MAX_MISFIT

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "channel": self.channel, "step_v": self.step_v, "tau_s": self.tau_s,
                "dead_s": self.dead_s, "points": self.points, "misfit": self.misfit, "noise_v": self.noise_v,
                "first_order": self.first_order, "delays_s": list(self.delays_s),
                "residuals_v": list(self.residuals_v)}


def fit_response(node: str, channel: str, delays_s: Sequence[float], residuals_v: Sequence[float],
                 step_v: float, noise_v: float, k_noise: float = 5.0) -> ResponseFit:
    """Fit ``r(d) = A e^(−d/τ)`` to the residuals above ``k_noise · noise_v`` and below
    :data:`MOVED` of the step (readings still in the dead time are flat: not the exponential), at
    least 3 points, else τ = None; ``dead_s = max(0, τ ln(A/|step|))``. Pure."""
    d = np.asarray(delays_s, dtype=float)
    r = np.asarray(residuals_v, dtype=float) * math.copysign(1.0, step_v)  # positive while still rising
    use = (r > k_noise * noise_v) & (r < MOVED * abs(step_v))  # above the noise; the output has begun to move
    # one run of points: from the first that moved to the first under the noise (a later spike is noise)
    first = int(np.argmax(use)) if use.any() else use.size
    rest = use[first:]
    end = first + (int(np.argmin(rest)) if not rest.all() else rest.size)
    use[end:] = False
    tau = dead = None
    misfit = 0.0
    if np.count_nonzero(use) >= 3:
        slope, icpt = np.polyfit(d[use], np.log(r[use]), 1, w=r[use] / noise_v)
        if slope < 0:
            tau = -1.0 / slope
            dead = max(0.0, tau * (icpt - math.log(abs(step_v))))
            good = use & (r >= 20.0 * noise_v)
            good = good if good.any() else use
            misfit = float(np.max(np.abs(r[good] / np.exp(icpt + slope * d[good]) - 1.0)))
    return ResponseFit(node, channel, float(step_v), tau, dead, int(np.count_nonzero(use)), misfit, float(noise_v),
                       tuple(map(float, d)), tuple(map(float, np.asarray(residuals_v, dtype=float))))


def _noise(lo: np.ndarray, hi: np.ndarray, quantum_v: float) -> float:
    """Noise of one reading (V rms): the pooled scatter of the settled levels, at least a count's."""
    pooled = math.sqrt(0.5 * (float(np.var(lo, ddof=1)) + float(np.var(hi, ddof=1))))
    return max(pooled, quantum_v / math.sqrt(12.0), 1e-9)


def measure_response(rig: Any, node: str, *, low_v: float, high_v: float, nplc: float, rest_s: float = 0.5,
                     repeats: int = 3, delays_s: Sequence[float] = DELAYS_S, quantum_v: float = 0.0) -> ResponseFit:
    """Step ``node``'s source from ``low_v`` to ``high_v`` (every other source released) and fit
    its response (module docstring); the meter at ``nplc`` meanwhile, put back to its own NPLC
    after. ``quantum_v``: the meter's count at ``nplc`` (a floor of the noise). The rig checks each
    pattern against its limits before applying it (:class:`~labnet.core.errors.LimitError`)."""
    metered = [n for n in rig.network.nodes if n in rig.network.meter_channels]
    pos = metered.index(node)
    nplc_before = getattr(rig.meter, "nplc", None)
    rig.set_nplc(nplc)
    try:
        def scan() -> float:
            return float(np.asarray(rig.meter.read(), dtype=float)[pos])

        def settled(v: float) -> np.ndarray:
            rig.apply({node: v})
            rig.settle(rest_s)
            return np.array([scan() for _ in range(max(repeats, 4))])

        lo, hi = settled(low_v), settled(high_v)
        final, noise = float(np.mean(hi)), _noise(lo, hi, quantum_v)
        res: list[float] = []
        below = 0
        for d in delays_s:
            vals = []
            for _ in range(repeats):
                rig.apply({node: low_v})
                rig.settle(rest_s)
                rig.apply({node: high_v})
                rig.settle(d)
                vals.append(scan())
            res.append(float(np.mean(vals)))
            below = below + 1 if abs(final - res[-1]) <= 5.0 * noise / math.sqrt(repeats) else 0
            if below >= 2:  # settled for two delays running: the rest is noise
                break
        step = final - float(np.mean(lo))
        resid = [final - v for v in res]
        ch = rig.network.source_channels[node]
        return fit_response(node, ch, list(delays_s)[:len(res)], resid, step, noise / math.sqrt(repeats))
    finally:
        if nplc_before is not None:
            rig.set_nplc(float(nplc_before))


__all__ = ["DELAYS_S", "MAX_MISFIT", "MOVED", "ResponseFit", "fit_response", "measure_response"]
