"""How a source output settles after it is set: a dead time, then a first-order approach.

A source channel set from ``v0`` to ``v1`` at time 0 delivers

    v(t) = v0                                   for t < t_d
    v(t) = v1 + (v0 − v1) exp(−(t − t_d)/τ)     for t ≥ t_d

(:class:`SourceResponse`: ``dead_s`` = t_d, ``tau_s`` = τ). A reading taken ``t`` after the
change is off by at most ``|v1 − v0| exp(−(t − t_d)/τ)`` at the source, and — the network being
resistive and linear — by no more at any node (a node voltage is a convex combination of the
held voltages when no current is injected). So the residual is below ``ε`` once

    t ≥ t_d + τ ln(|v1 − v0| / ε)               (:func:`settle_time`).

Documented responses (:data:`RESPONSES`, by instrument model as rig files write it):

* **Keithley 2450**, voltage source: the Model 2450 datasheet (SPEC-2450 Rev. A, July 2013,
  p. 4, "Output settling time") gives the "time required to reach within 0.1 % of final value:
  20 V range, 100 mA I-limit: < 200 µs typical". As a first-order response with no dead time:
  τ = 200 µs / ln(1000) = 29 µs. The Reference Manual (2450-901-01 Rev. B, section 2 "Source
  delay", p. 2-111) sets a longer *autodelay*, "a settling time for the source", of 1 ms on the
  100 µA … 1 A ranges (resistive loads; 2–50 ms on the lower ranges); a rig that keeps the
  autodelay on waits that inside the instrument as well.
* **Keysight E36312A**: no programming-response or settling figure is in the manuals and data
  sheets at hand (searched: the E36300 and E3631A/E3632A guides; the E3632A guide's tutorial,
  ch. 6 "Remote Programming", says only that the output capacitor and the load set the speed,
  and that supplies program up faster than down). Its response is not documented here:
  :data:`RESPONSES` has none, so a plan keeps the protocol's ``settle_s`` for it unless the rig
  file states a measured one (``[instruments.sources.<name>] response_tau_s`` and
  ``response_dead_s``).

The digipot's wiper: the X9C102/103/104/503 data sheet (Intersil FN8222.3, AC operating
characteristics, p. 5) gives t_IW, "INC to V_W/R_W change", 100 µs (500 µs is printed beside it:
taken as the bound, :data:`X9C_WIPER_CHANGE_S`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class SourceResponse:
    """A source output's response to a new setpoint.

    Attributes
    ----------
    dead_s : float
        Time (s) before the output begins to move (command processing).
    tau_s : float
        First-order time constant (s) of the approach to the new setpoint.
    basis : str
        Where the figures come from (a manual's section, or "measured"/"stated in the rig file").
    """

    dead_s: float
    tau_s: float
    basis: str = ""

    def __post_init__(self) -> None:
        if not (self.dead_s >= 0 and math.isfinite(self.dead_s)):
            raise ValueError(f"response dead time must be a finite time >= 0 s, got {self.dead_s!r}")
        if not (self.tau_s >= 0 and math.isfinite(self.tau_s)):
            raise ValueError(f"response time constant must be a finite time >= 0 s, got {self.tau_s!r}")

    def fraction_left(self, t: float) -> float:
        """Fraction of a step still to go ``t`` s after the change (1 before the dead time)."""
        if t < self.dead_s:
            return 1.0
        if self.tau_s == 0:
            return 0.0
        return math.exp(-(t - self.dead_s) / self.tau_s)


def settle_time(response: SourceResponse, step_v: float, tolerance_v: float) -> float:
    """Shortest wait (s) after a step of ``step_v`` (V) that leaves at most ``tolerance_v`` (V > 0)
    of it: ``t_d + τ ln(|step| / ε)``, or 0 when the step is within the tolerance already."""
    if tolerance_v <= 0:
        raise ValueError(f"settling tolerance must be > 0 V, got {tolerance_v!r}")
    step = abs(step_v)
    if step <= tolerance_v:
        return 0.0
    return response.dead_s + response.tau_s * math.log(step / tolerance_v)


#: The Keithley 2450's voltage source (see the module docstring).
KEITHLEY2450_RESPONSE = SourceResponse(0.0, 200e-6 / math.log(1000.0),
                                       "2450 datasheet SPEC-2450 Rev. A p. 4 'Output settling time': "
                                       "within 0.1 % in < 200 µs (typical)")
#: Documented responses by instrument model (rig files' ``model``); a model missing here has none.
RESPONSES: Mapping[str, SourceResponse] = MappingProxyType({"Keithley2450": KEITHLEY2450_RESPONSE})
#: X9C wiper: longest "INC to V_W change" t_IW (s), FN8222.3 p. 5.
X9C_WIPER_CHANGE_S = 500e-6


__all__ = ["KEITHLEY2450_RESPONSE", "RESPONSES", "SourceResponse", "X9C_WIPER_CHANGE_S", "settle_time"]
