"""Run state shared by the drivers: their statistics counters as a :class:`labnet.core.state.Stateful`."""

from __future__ import annotations

from typing import Any, ClassVar


class StatsState:
    """``state()``/``restore()`` of a driver whose only run state is its ``stats`` counters.

    A driver mixes this in and sets ``stats`` (name -> count) in its constructor; ``state_name``
    names it in errors. Restoring counters with other names is an error (a checkpoint of
    another driver).
    """

    STATE_SCHEMA: ClassVar[dict[str, Any]] = {"stats": dict}
    stats: dict[str, int]

    def state_name(self) -> str:
        """The driver's name in a restore error."""
        return type(self).__name__

    def state(self) -> dict[str, Any]:
        return {"stats": dict(self.stats)}

    def restore(self, state: dict[str, Any]) -> None:
        stats = state["stats"]
        if set(stats) != set(self.stats):
            raise ValueError(f"{self.state_name()} state: statistics {sorted(stats)}, expected {sorted(self.stats)}")
        self.stats = {k: int(stats[k]) for k in self.stats}
