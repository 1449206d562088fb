"""The simulated bench's modelled time: :class:`VirtualClock` (also importable from
:mod:`simulator.breadboard`)."""

from __future__ import annotations

from typing import Any, ClassVar


class VirtualClock:
    """Modelled bench time (s). Emulators ``charge`` what an action would take on the bench."""

    #: :class:`labnet.core.state.Stateful`: the modelled time (s).
    STATE_SCHEMA: ClassVar[dict[str, Any]] = {"t": float}

    def __init__(self) -> None:
        self.t = 0.0

    def state(self) -> dict[str, Any]:
        return {"t": float(self.t)}

    def restore(self, state: dict[str, Any]) -> None:
        self.t = float(state["t"])

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.charge(seconds)

    def charge(self, seconds: float) -> None:
        if seconds > 0:
            self.t += float(seconds)
