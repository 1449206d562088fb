"""Sessions: one folder per run with the input files copied in and an append-only CSV.

The CSV starts with ``#`` comment lines that make it self-describing — each is
``# key: <JSON>`` (protocol, ``started_utc`` — the absolute start, ISO 8601 UTC —, rig,
network, versions, seed, the calibration table used, the ``--codes-from`` source of a probe,
the simulator's part draw, instrument identities) — followed by a header row and one row per measured state, appended
and flushed as it happens. ``pandas.read_csv(path, comment="#")`` reads it;
:func:`read_header` returns the comment block as a dict.

Durability and resume (see ARCHITECTURE.md, "Stopping, crashing and resuming")
-------------------------------------------------------------------------------
* Every row is appended with **one** ``os.write`` of the complete line on an ``O_APPEND``
  descriptor, so a process killed at any moment (``kill -9``) leaves only complete rows;
  the file is fsynced at least once per training step (:meth:`SessionWriter.sync`).
* The CSV is never rewritten. A resumed run appends to the same file: it first writes a
  ``# resumed: {...}`` comment line, then its rows with the next ``attempt`` number. Rows of
  an earlier attempt whose ``step`` is after the resume point (``from_step``) were measured
  by a step that never completed; they stay in the file but are *superseded*.
  :func:`read_session` drops them; ``pandas.read_csv`` alone shows every row.
* The single exception to "never rewritten": an incomplete last line (only possible if the
  machine itself lost power mid-write) is cut off on resume and its text is kept, quoted,
  in the ``# resumed`` line, so no byte a run produced is lost.
* ``status.json`` (replaced atomically) says how the run ended — ``running``, ``completed``,
  ``stopped`` or ``failed`` with a reason — and ``events.jsonl`` logs limit refusals,
  retries, recoveries, signals and resumes, one JSON object per line. A driver's events
  (``retry``, ``resync``, ``queue_errors``, ``recovered``, ``gave_up``, ``board_reset``,
  ``port_lost``, ``reconnected``, …) carry ``instrument`` (the driver's label) and ``bench_s``
  (the rig clock) besides their details.
"""

from __future__ import annotations

from labnet.session.events import LOGGED, EventLog, EventLogHandler, attach_event_log, detach_event_log
from labnet.session.files import (
    CSV_NAME,
    EVENTS_NAME,
    STATUS_NAME,
    atomic_write_json,
    atomic_write_text,
    copy_into,
    discard_if_empty,
    fsync_dir,
    header_json,
    new_session_dir,
    versions,
)
from labnet.session.reader import read_header, read_markers, read_session, superseded_mask
from labnet.session.status import read_status, write_status
from labnet.session.writer import SessionWriter

__all__ = ["CSV_NAME", "EVENTS_NAME", "LOGGED", "STATUS_NAME", "EventLog", "EventLogHandler", "SessionWriter",
           "atomic_write_json", "atomic_write_text", "attach_event_log", "copy_into", "detach_event_log", "discard_if_empty",
           "fsync_dir", "header_json", "new_session_dir", "read_header", "read_markers", "read_session", "read_status",
           "superseded_mask", "versions", "write_status"]
