"""Measurement planning: the meter's integration time per state from what the rule tolerates.

The sign rule moves an edge one tap when ``|Δk| = a |(ΔV^F)² − (ΔV^C)²|`` exceeds its dead
band ``d`` (S), with ``a`` the rule's Δk per unit of D (α/η for coupled learning, α/β for
equilibrium propagation); only the sign of ``D = (ΔV^F)² − (ΔV^C)²`` beyond ``d/a`` (V²) matters. A reading
at ``n`` NPLC has Gaussian noise ``σ(n) = σ₁/√n`` per node (V; σ₁ at 1 NPLC). An edge's ΔV is
the difference of two node readings (σ√2), so to first order

    σ_D(n) = 2 √2 σ(n) √((ΔV^F)² + (ΔV^C)²)    (V²)

and with ``|ΔV| ≤ v_scale`` ``σ_D ≤ 4 σ(n) v_scale``; the plan takes ``v_scale`` as the typical
edge drop (``labnet.app.measurement.typical_drop``), so edges with larger drops may be marginal
more often — they are held (``k_sigma`` = 3: a held decision is one whose sign a 3σ error could flip).

Line-frequency pickup of amplitude A (V peak) at the floating nodes adds, per reading,
A·10^(−NMR(n)/20)·sin φ with a random phase (:mod:`simulator.pickup`; the meter's normal-mode
rejection NMR(n) from :data:`labnet.bench.catalog.METERS`, 34970A/34972A User's Guide ch. 7:
0 dB below 1 PLC, ≥ 60 dB at whole PLCs), so ``σ(n)² = σ₁²/n + (A·10^(−NMR/20))²/2``: below
1 PLC pickup is not averaged out and a plan with pickup picks whole PLCs. The A/D resolution falls
with the integration time too (same guide: 15 bits at 0.02 PLC, 18 at 0.2, 20 at 1 PLC): one count
q adds q²/12.

:func:`plan_measurement` picks the cheapest allowed NPLC whose bound ``σ_D`` is at most
``tolerance · d/α`` for the training states, re-reads a step's states at ``nplc_reread``
(the rig's configured NPLC) only when some edge's decision is marginal
(:func:`marginal_edges`: ``| |D| − d/α | < k σ_D``), and keeps evaluations at ``nplc_reread``
so reported errors are measured as before. Pure functions; no instrument is touched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: What a plan does with a marginal decision.
ON_MARGINAL = ("hold", "reread")


@dataclass(frozen=True)
class MeasurementPlan:
    """What the meter does in each state of a training step.

    Attributes
    ----------
    nplc_train : float
        NPLC of the free and clamped states of a training step.
    nplc_reread : float
        NPLC of a re-read (both states again) when a decision is marginal, and of evaluations.
    k_sigma : float
        A decision is marginal when its margin from the dead band is below ``k_sigma · σ_D``.
    sigma_v : float
        Noise of one node reading at ``nplc_train`` (V rms).
    sigma_d_v2 : float
        Bound of the noise of ``D`` at ``nplc_train`` (V²).
    threshold_v2 : float
        The dead band in ``D``'s units, ``d/α`` (V²).
    scan : tuple of str
        Nodes read in each state (all metered nodes: a held node's voltage is not its setpoint
        with the sources' gain and offset errors).
    step_s : float
        Modelled meter integration time of one training step without re-reads (s).
    on_marginal : {"hold", "reread"}
        A marginal edge is not moved this step (``hold``: no reading is repeated), or the step's
        two states are read again at ``nplc_reread`` (``reread``).
    """

    nplc_train: float
    nplc_reread: float
    k_sigma: float
    sigma_v: float
    sigma_d_v2: float
    threshold_v2: float
    scan: tuple[str, ...]
    step_s: float
    on_marginal: str = "hold"

    def sigma_d(self, dv_f: np.ndarray, dv_c: np.ndarray) -> np.ndarray:
        """Per-edge noise of ``D`` (V²), shape (E,), at ``nplc_train`` from the measured ΔV."""
        return 2.0 * math.sqrt(2.0) * self.sigma_v * np.sqrt(dv_f ** 2 + dv_c ** 2)

    def record(self) -> dict[str, Any]:
        """JSON-able form (the session header's ``measurement_plan``)."""
        d = asdict(self)
        d["scan"] = list(self.scan)
        return d

    def text(self) -> str:
        act = f"re-read at {self.nplc_reread:g} NPLC" if self.on_marginal == "reread" else "hold the edge"
        return (f"measurement plan: training states at {self.nplc_train:g} NPLC ({act} where "
                f"| |D| - {self.threshold_v2:.3g} V² | < {self.k_sigma:g} sigma_D, sigma_D <= {self.sigma_d_v2:.3g} V²), "
                f"evaluations at {self.nplc_reread:g} NPLC, scan {len(self.scan)} nodes per state; "
                f"integration {self.step_s * 1e3:.1f} ms per step without re-reads")


def reading_sigma(sigma1_v: float, nplc: float, pickup_v: float = 0.0, nmr_db: float = 0.0,
                  lsb_v: float = 0.0) -> float:
    """RMS error (V) of one reading at ``nplc``: white noise σ₁/√n, pickup A·10^(−NMR/20)/√2 and
    the A/D count ``lsb_v``/√12."""
    return math.sqrt(sigma1_v ** 2 / nplc + 0.5 * (pickup_v * 10.0 ** (-nmr_db / 20.0)) ** 2 + lsb_v ** 2 / 12.0)


def plan_measurement(*, alpha: float, deadband_s: float, sigma1_v: float, v_scale: float,
                     nplc_choices: Sequence[float], nplc_reread: float, plc_s: float,
                     scan: Sequence[str], tolerance: float = 2.0, k_sigma: float = 3.0,
                     on_marginal: str = "hold", pickup_v: float = 0.0,
                     nmr_db: Mapping[float, float] | None = None,
                     lsb_v: Mapping[float, float] | None = None) -> MeasurementPlan:
    """The cheapest plan whose bounded noise of ``D`` is at most ``tolerance · d/α``.

    ``alpha`` the rule's Δk per unit of D (S/V²: α/η for coupled learning, α/β for EP —
    :attr:`labnet.core.rules.Rule.dk_scale`), ``deadband_s`` (S), ``sigma1_v`` the meter noise at 1 NPLC (V),
    ``v_scale`` the typical |ΔV| (V), ``nplc_choices`` the meter's allowed NPLC values,
    ``nplc_reread`` the NPLC of re-reads and evaluations (the rig's), ``plc_s`` one power-line
    cycle (s), ``scan`` the metered nodes, ``pickup_v`` the line-frequency pickup (V peak) and
    ``nmr_db`` the meter's normal-mode rejection per NPLC (needed when ``pickup_v`` > 0),
    ``lsb_v`` one A/D count per NPLC on the range in use (the manual's resolution). A
    tighter (smaller) ``tolerance`` → never fewer NPLC.
    """
    if alpha <= 0 or deadband_s <= 0:
        raise ValueError("planned measurement needs alpha > 0 and a dead band > 0 (the sign rule)")
    if tolerance <= 0 or k_sigma < 0:
        raise ValueError("tolerance must be > 0 and k_sigma >= 0")
    if on_marginal not in ON_MARGINAL:
        raise ValueError(f"on_marginal: expected one of {ON_MARGINAL}, got {on_marginal!r}")
    if pickup_v > 0 and nmr_db is None:
        raise ValueError("pickup_v > 0 needs the meter's nmr_db")
    nmr = dict(nmr_db or {})

    def sigma(n: float) -> float:
        return reading_sigma(sigma1_v, n, pickup_v, nmr.get(n, 0.0), (lsb_v or {}).get(n, 0.0))

    threshold = deadband_s / alpha
    allowed = sorted(n for n in nplc_choices if n <= nplc_reread) or [nplc_reread]
    chosen = allowed[-1]
    for n in allowed:  # ascending: the first that meets the bound is the cheapest
        if 4.0 * sigma(n) * v_scale <= threshold * tolerance:
            chosen = n
            break
    sigma_v = sigma(chosen)
    step_s = 2 * len(scan) * chosen * plc_s
    return MeasurementPlan(float(chosen), float(nplc_reread), float(k_sigma), sigma_v, 4.0 * sigma_v * v_scale,
                           threshold, tuple(scan), step_s, on_marginal)


def marginal_edges(plan: MeasurementPlan, dv_f: np.ndarray, dv_c: np.ndarray) -> np.ndarray:
    """Edges whose decision is marginal: ``| |D| − d/α | < k σ_D`` (bool, shape (E,))."""
    d = dv_f ** 2 - dv_c ** 2
    return np.asarray(np.abs(np.abs(d) - plan.threshold_v2) < plan.k_sigma * plan.sigma_d(dv_f, dv_c))


__all__ = ["ON_MARGINAL", "MeasurementPlan", "marginal_edges", "plan_measurement", "reading_sigma"]
