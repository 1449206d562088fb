"""``events.jsonl``: the session's event log, and routing log records into it."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labnet.core.errors import StorageError
from labnet.session.files import EVENTS_NAME, json_default, storage_error, write_all

#: Loggers whose records (INFO and above) are copied into a session's ``events.jsonl``.
LOGGED = ("labnet", "drivers", "simulator")


class EventLog:
    """``events.jsonl``: one JSON object per line (time, kind, details), appended and flushed."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / EVENTS_NAME
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        self.counts: dict[str, int] = {}
        self._dirty = True  # written since the last fsync
        self.failure: StorageError | None = None  # the first event a full disk refused

    def log(self, kind: str, **fields: Any) -> None:
        """Append one event ``{"time": ISO-8601 UTC, "kind": kind, **fields}``."""
        if self._fd < 0:
            return
        rec = {"time": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"), "kind": kind, **fields}
        self._dirty = True
        data = (json.dumps(rec, default=json_default, sort_keys=False) + "\n").encode("utf-8")
        try:
            write_all(self._fd, data)
        except OSError as exc:  # a full disk: no half line is left behind
            try:
                os.ftruncate(self._fd, max(os.fstat(self._fd).st_size - _partial(self.path), 0))
            except OSError:
                pass
            self.failure = storage_error(self.path, exc)
            raise self.failure from exc
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def sync(self) -> None:
        """fsync, unless nothing was logged since the last one; raise the :class:`StorageError`
        of an event that could not be written (one a log handler reported: the run fails at
        its next checkpoint rather than go on with a gap in its log)."""
        if self.failure is not None:
            raise self.failure
        if self._fd >= 0 and self._dirty:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise storage_error(self.path, exc) from exc
            self._dirty = False

    def close(self) -> None:
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1


def _partial(path: Path) -> int:
    """Length (bytes) of an incomplete last line of ``path`` (0 if it ends with a line end)."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(size - 65536, 0))
        tail = fh.read()
    return 0 if not tail or tail.endswith(b"\n") else len(tail) - (tail.rfind(b"\n") + 1)


#: Keys of an event record that a log record's ``fields`` may not override (kept as ``field_<key>``).
RESERVED = frozenset({"time", "kind", "level", "logger", "message"})


class EventLogHandler(logging.Handler):
    """Copies log records into an :class:`EventLog`.

    The event kind is the record's ``event`` attribute (``logger.warning(msg, extra={"event":
    "retry", ...})``), else ``"log"``; other ``extra`` keys listed in ``fields`` are kept.
    A record marked ``delivered`` (a driver already handed the event to its ``on_event``
    callback, which :func:`labnet.app.sinks.connect_driver_events` connects to the same log) is
    skipped, so every event is logged once.
    """

    def __init__(self, events: EventLog, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "delivered", False):
            return
        try:
            fields = {(f"field_{k}" if k in RESERVED else k): v
                      for k, v in dict(getattr(record, "fields", {}) or {}).items()}
            self.events.log(getattr(record, "event", "log"), level=record.levelname, logger=record.name,
                            message=record.getMessage(), **fields)
        except StorageError:  # a full disk: the run itself reports it, no traceback from logging
            self.lost = getattr(self, "lost", 0) + 1
        except Exception:  # noqa: BLE001 - logging must never break a run
            self.handleError(record)


def attach_event_log(events: EventLog, names: Sequence[str] = LOGGED) -> list[tuple[logging.Logger, int]]:
    """Route the records of loggers ``names`` (INFO and up) into ``events``; returns what to undo."""
    handler = EventLogHandler(events)
    undo = []
    for name in names:
        lg = logging.getLogger(name)
        undo.append((lg, lg.level))
        if lg.level == logging.NOTSET or lg.level > logging.INFO:
            lg.setLevel(logging.INFO)
        lg.addHandler(handler)
    events.handler = handler  # type: ignore[attr-defined]
    return undo


def detach_event_log(events: EventLog, undo: list[tuple[logging.Logger, int]]) -> None:
    """Undo :func:`attach_event_log`."""
    handler = getattr(events, "handler", None)
    for lg, level in undo:
        if handler is not None:
            lg.removeHandler(handler)
        lg.setLevel(level)
