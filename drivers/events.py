"""Driver events: every retry, re-synchronisation, recovery and reconnect of a driver.

A driver reports one with :func:`emit_event`: it is handed as a dict
``{"instrument": <label>, "event": <kind>, **detail}`` to the driver's ``on_event`` callback
(a session connects it to its ``events.jsonl``, see :func:`labnet.app.sinks.connect_driver_events`)
and logged on the driver's logger as a warning tagged ``event=<kind>`` with the detail in
``fields`` (so a log handler that turns records into events keeps the kind). The record is
also marked ``delivered`` when ``on_event`` took the event, so such a handler can skip it
instead of logging the event twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

#: The callback type drivers accept as ``on_event``.
EventCallback = Callable[[dict[str, Any]], None]


def emit_event(logger: logging.Logger, on_event: EventCallback | None, instrument: str, kind: str,
               detail: dict[str, Any]) -> dict[str, Any]:
    """Hand a driver event to ``on_event`` (if any) and log it; returns the event dict."""
    ev = {"instrument": instrument, "event": kind, **detail}
    logger.warning("%s: %s %s", instrument, kind, detail,
                   extra={"event": kind, "fields": {"instrument": instrument, **detail},
                          "delivered": on_event is not None})
    if on_event is not None:
        on_event(ev)
    return ev


class EventBuffer:
    """An ``on_event`` that keeps events until a session takes them: the events of a rig being
    built (connecting the board, setting up the sources), before any session log exists.

    Parameters
    ----------
    clock : callable, optional
        ``clock()`` -> seconds; each kept event gets ``bench_s`` from it.
    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.clock = clock
        self.events: list[dict[str, Any]] = []

    def __call__(self, ev: dict[str, Any]) -> None:
        self.events.append({**ev, "bench_s": round(self.clock(), 6)} if self.clock is not None else dict(ev))

    def take(self) -> list[dict[str, Any]]:
        """The kept events, oldest first; the buffer is empty afterwards."""
        out, self.events = self.events, []
        return out
