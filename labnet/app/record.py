"""How a session run's end is written down: the ``# run_ended`` line and ``status.json``.

:class:`SessionRecord` is the ``record`` hook of :class:`labnet.experiments.lifecycle.RunOwner`:
the owner decides the outcome (after the safe state, with signals deferred) and calls
:meth:`SessionRecord.finish` once with it. Nothing here maps exceptions to a status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labnet.experiments.runstate import Ending, Outcome
from labnet.session.checkpoint import read_checkpoint
from labnet.session.folder import EventLog, SessionWriter, write_status


class SessionRecord:
    """Writes the end of one attempt of a session run (``folder``, its ``events`` log)."""

    def __init__(self, folder: Path, events: EventLog, attempt: int) -> None:
        self.folder = folder
        self.events = events
        self.attempt = attempt
        self.writer: SessionWriter | None = None  # set once the CSV is open

    def finish(self, ending: Ending) -> dict[str, Any]:
        """Close the CSV with a ``# run_ended`` line, log ``run_ended``, write ``status.json``
        (the last checkpoint's step, rows, event counts); returns the status record."""
        state = ending.outcome.value
        ck = read_checkpoint(self.folder)
        writer = self.writer
        info = {"attempt": self.attempt, "step": None if ck is None else ck["step"], "safe_state": ending.safe,
                "rows": None if writer is None else writer.rows,
                "events": dict(self.events.counts)}
        lost: list[str] = []  # a full disk may refuse these; the status below still gets written
        if writer is not None and not writer.closed:
            try:
                try:
                    writer.comment("run_ended", {"status": state, "reason": ending.reason, **info})
                finally:
                    writer.close()
            except OSError as exc:
                lost.append(f"run_ended line ({exc})")
        try:
            self.events.log("run_ended", status=state, reason=ending.reason, safe_state=ending.safe)
            self.events.sync()
        except OSError as exc:
            lost.append(f"run_ended event ({exc})")
        if lost:
            info["not_written"] = lost
        return write_status(self.folder, state, ending.reason, resumable=ending.outcome is not Outcome.COMPLETED,
                            **info)
