"""Source outputs that take time to reach a new setpoint: :class:`OutputSettling`.

Each source channel with a :class:`~labnet.core.settling.SourceResponse` moves from the voltage
it had when it was set (mid-way through an earlier move, or 0 V for an output that was off) to
its new setpoint: it stays put for the dead time, then approaches exponentially. The breadboard
adds :meth:`OutputSettling.residual` to the programmed voltage whenever it solves the circuit,
so a reading taken too soon after a change reads the part of the step still to go. Channels
without a response (the direct rig's ideal sources, current-driven channels) step at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from labnet.core.settling import SourceResponse

#: A move whose remaining fraction falls below this is over (dropped: the output is at its setpoint).
_DONE = 1e-15


class OutputSettling:
    """The moves in progress of the source channels that have a response."""

    #: :class:`labnet.core.state.Stateful`: channel -> [start time (s), from V, to V].
    STATE_SCHEMA: ClassVar[dict[str, Any]] = {"moves": dict}

    def __init__(self) -> None:
        self.responses: dict[str, SourceResponse] = {}
        self.moves: dict[str, tuple[float, float, float]] = {}

    def state(self) -> dict[str, Any]:
        return {"moves": {ch: list(m) for ch, m in self.moves.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self.moves = {str(ch): (float(m[0]), float(m[1]), float(m[2])) for ch, m in state["moves"].items()}

    def set_response(self, channel: str, response: SourceResponse) -> None:
        self.responses[channel] = response

    def residual(self, channel: str, t: float) -> float:
        """Programmed-voltage error (V) of ``channel`` at time ``t``: (from − to)·fraction left."""
        m = self.moves.get(channel)
        if m is None:
            return 0.0
        left = self.responses[channel].fraction_left(t - m[0])
        if left < _DONE:
            del self.moves[channel]
            return 0.0
        return (m[1] - m[2]) * left

    def drive(self, old: Mapping[str, float], new: Mapping[str, float], t: float) -> None:
        """The sources go from driving ``old`` to ``new`` (channel -> programmed V) at time ``t``."""
        for ch, v in new.items():
            if ch not in self.responses:
                continue
            before = old.get(ch)
            if before is None:  # the output was off: it rises from 0 V
                start = 0.0
            elif before == v:
                continue
            else:
                start = before + self.residual(ch, t)
            self.moves[ch] = (t, start, float(v))
        for ch in [c for c in self.moves if c not in new]:  # turned off: no longer driven
            del self.moves[ch]


__all__ = ["OutputSettling"]
