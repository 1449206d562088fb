"""How long a rig waits after a change before it reads: settle times from the sources' responses.

A fixed ``settle_s`` waits as long after a 1 µV change as after a full-scale one, and as long for
a source that settles in microseconds as for one that takes milliseconds. :class:`SettleModel`
derives the wait from what changed instead: a source channel whose output goes from ``v0`` to
``v1`` leaves at most ``|v1 − v0| exp(−(t − t_d)/τ)`` of the step at any node ``t`` after the
change (:mod:`labnet.core.settling`), so the rig waits until that is at most the tolerated
residual ``ε`` (:func:`labnet.core.settling.settle_time`). The wait of a state is the longest
over the channels that changed since the last reading; a node without a known response (no
documented figure and none stated in the rig file, or a current-driven node) waits the
protocol's ``settle_s``. After a code write the wipers need the part's "INC to V_W change" time
(``wiper_s``; X9C: :data:`labnet.core.settling.X9C_WIPER_CHANGE_S`). A node released by opening
its switch leaves a resistive network without a source to wait for (the switch driver waits for
the switch itself); a node released by turning its output off waits as for a step to 0 V (an
electronic off-state drives the output down — the E3631A guide's OUTPut[:STATe]: "less than 0.6
volts of opposite polarity" — and how fast is the output's response).

:class:`SettleTracking` (a base of :class:`labnet.bench.rig.Rig`) notes every change as it is
sent and answers :meth:`SettleTracking.wait_for` when the engine is about to read; the steps of
a planned transition (:mod:`labnet.bench.planned`) wait for each other the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labnet.core.settling import SourceResponse, settle_time


@dataclass(frozen=True)
class SettleModel:
    """What a rig knows of how its changes settle.

    Attributes
    ----------
    responses : mapping node -> SourceResponse
        Response of the voltage source driving each node (nodes missing: unknown).
    tolerance_v : float
        Tolerated residual ε (V) of a step at any node when a state is read.
    wiper_s : float
        Wait after a code write (s): the digipot's wiper change time.
    reconnect_v : float
        Extra step (V) assumed for a node that becomes held: the output rises from 0 V (supply
        turned on), plus this much when the source stayed on behind an open switch at another
        setpoint (switch release: the rig's largest source voltage).
    """

    responses: Mapping[str, SourceResponse] = field(default_factory=dict)
    tolerance_v: float = 1e-6
    wiper_s: float = 0.0
    reconnect_v: float = 0.0
    #: Nodes released by a switch (no wait on release).
    switched: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not (self.tolerance_v > 0 and math.isfinite(self.tolerance_v)):
            raise ValueError(f"settle tolerance must be a finite voltage > 0, got {self.tolerance_v!r}")

    def wait(self, old: Mapping[str, float], new: Mapping[str, float]) -> tuple[float, bool]:
        """(wait in s for the nodes with a known response, whether a node without one changed)
        when the held pattern goes from ``old`` to ``new`` (node -> V or A)."""
        t, unknown = 0.0, False
        for node, v in new.items():
            before = old.get(node)
            if before == v:
                continue
            resp = self.responses.get(node)
            if resp is None:
                unknown = True
                continue
            step = abs(v - before) if before is not None else abs(v) + self.reconnect_v
            t = max(t, settle_time(resp, step, self.tolerance_v))
        for node, v in old.items():
            if node in new or node in self.switched:
                continue
            resp = self.responses.get(node)  # turned off: its output goes down to the off-state
            if resp is None:
                unknown = True
            else:
                t = max(t, settle_time(resp, v, self.tolerance_v))
        return t, unknown

    def record(self) -> dict[str, Any]:
        """JSON-able form (the session header's ``settle_model``)."""
        return {"tolerance_v": self.tolerance_v, "wiper_s": self.wiper_s, "reconnect_v": self.reconnect_v,
                "switched": sorted(self.switched),
                "responses": {n: {"dead_s": r.dead_s, "tau_s": r.tau_s, "basis": r.basis}
                              for n, r in self.responses.items()}}


class SettleTracking:
    """Changes sent since the last reading and the wait they need (a rig's)."""

    clock: Any
    #: How this rig's changes settle (None: every state waits the protocol's ``settle_s``).
    settle_model: SettleModel | None = None
    #: Wait (s) for a change the model cannot time, between the steps of a planned transition
    #: (the protocol's ``settle_s``, set by the application; 0: the steps follow one another).
    settle_fallback_s: float = 0.0
    _ready_at: float = -math.inf  # when the changes with a known response have settled
    _unknown_at: float | None = None  # last change at a node without a known response

    def _note_change(self, old: Mapping[str, float], new: Mapping[str, float]) -> None:
        m = self.settle_model
        if m is None or old == new:
            return
        now = self.clock.now()
        t, unknown = m.wait(old, new)
        self._ready_at = max(self._ready_at, now + t)
        if unknown:
            self._unknown_at = now

    def _note_codes(self) -> None:
        m = self.settle_model
        if m is not None and m.wiper_s > 0:
            self._ready_at = max(self._ready_at, self.clock.now() + m.wiper_s)

    def settle_between_steps(self) -> None:
        """Between two steps of a planned transition: wait until the last step has settled, so
        the next starts from the state the plan checked (an output still moving from an earlier
        level would put the bench outside the checked steps' hull)."""
        self.clock.sleep(self.wait_for(self.settle_fallback_s))

    def wait_for(self, fallback_s: float) -> float:
        """Seconds to wait before reading (``fallback_s`` without a model; else what the changes
        since the last reading need, ``fallback_s`` after a change the model cannot time);
        the changes are then taken as settled."""
        if self.settle_model is None:
            return fallback_s
        now = self.clock.now()
        ready = self._ready_at
        if self._unknown_at is not None:
            ready = max(ready, self._unknown_at + fallback_s)
        self._ready_at, self._unknown_at = -math.inf, None
        return max(0.0, ready - now)


__all__ = ["SettleModel", "SettleTracking"]
