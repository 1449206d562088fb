"""The bench's clock on real hardware: wall time (the simulator brings its own virtual clock)."""

from __future__ import annotations

import time


class WallClock:
    """Real time: ``now`` from a monotonic clock, ``sleep`` really sleeps."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
