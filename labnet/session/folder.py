"""Sessions: one folder per run with the input files copied in and an append-only CSV.

The CSV starts with ``#`` comment lines that make it self-describing — each is
``# key: <JSON>`` (protocol, rig, network, versions, seed, the simulator's part draw,
instrument identities) — followed by a header row and one row per measured state, appended
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

import csv
import datetime as _dt
import io
import json
import logging
import os
import platform
import shutil
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

CSV_NAME = "session.csv"
STATUS_NAME = "status.json"
EVENTS_NAME = "events.jsonl"

#: Loggers whose records (INFO and above) are copied into a session's ``events.jsonl``.
LOGGED = ("labnet", "drivers", "simulator")


def versions() -> dict[str, str]:
    """Versions of Python, labnet and the libraries whose behaviour shapes the numbers."""
    out = {"python": platform.python_version()}
    for pkg in ("labnet", "numpy", "scipy", "pandas", "pyvisa", "pyserial"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def new_session_dir(base: str | Path, name: str) -> Path:
    """A fresh folder ``base/<YYYYmmdd-HHMMSS>-<name>`` (suffixed if it already exists)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    root = Path(base)
    root.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        d = root / (f"{stamp}-{name}" if n == 1 else f"{stamp}-{name}-{n}")
        try:
            d.mkdir()
            return d
        except FileExistsError:
            n += 1


def fsync_dir(folder: str | Path) -> None:
    """fsync a directory so a file created or renamed in it survives a machine crash."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically: temp file, fsync, ``os.replace``, fsync dir.

    A reader (or a crash at any moment) sees either the old or the new file, never a mix.
    """
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, p)
    fsync_dir(p.parent)


def atomic_write_json(path: str | Path, data: Any) -> None:
    """:func:`atomic_write_text` of ``data`` as indented JSON."""
    atomic_write_text(path, json.dumps(data, default=_json_default, indent=1, sort_keys=True) + "\n")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class SessionWriter:
    """Append-only CSV of measured states, with a self-describing comment header.

    Parameters
    ----------
    folder : Path
        The session folder (created if missing).
    header : mapping
        Written as ``# key: JSON`` lines before the column row.
    columns : sequence of str
        Column names; every row is a mapping with (a subset of) these keys.
    files : mapping name -> text
        Input files copied into the folder (protocol, rig).
    append : bool
        Continue an existing CSV (resume): no header is written; an incomplete last line is
        cut off and kept in :attr:`partial_line` (the caller records it).

    Attributes
    ----------
    rows : int
        Data rows in the file (including those found on opening with ``append``).
    bytes : int
        Size of the file (bytes) after the last write.

    A stop signal raises at any bytecode, also between a ``write(2)`` and the bookkeeping
    after it. So the counts are one tuple replaced in one store, and each append first records
    what it is about to write; :attr:`rows` and :attr:`bytes` settle a pending append against
    the file's size (written: counted; not written: dropped), so they always match the file.
    """

    def __init__(self, folder: str | Path, header: Mapping[str, Any], columns: Sequence[str],
                 files: Mapping[str, str] | None = None, *, append: bool = False) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / CSV_NAME
        self.columns = list(columns)
        self.partial_line = ""
        for name, text in (files or {}).items():
            atomic_write_text(self.folder / name, text)
        rows = 0
        self._pending: tuple[int, int] | None = None  # (bytes, rows) of an append in flight
        if append:
            self.partial_line, rows = _repair_tail(self.path)
        else:
            # The header and column row appear at once: written to a temporary file, then
            # linked into place (which, like O_EXCL, refuses to replace an existing CSV).
            lines = [f"# {k}: {header_json(v)}\n" for k, v in header.items()]
            lines.append(",".join(self.columns) + "\n")
            tmp = self.folder / f".{CSV_NAME}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_all(fd, "".join(lines).encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, self.path)
            finally:
                tmp.unlink()
            fsync_dir(self.folder)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._counts = (os.fstat(self._fd).st_size, rows)  # (bytes, rows): replaced, never mutated
        self._dirty = True  # written since the last fsync (a repaired tail counts)

    def _settled(self) -> tuple[int, int]:
        """(bytes, rows), with an append a signal interrupted counted if it reached the file."""
        pending = self._pending
        if pending is not None:
            size = os.fstat(self._fd).st_size if self._fd >= 0 else os.stat(self.path).st_size
            b, r = self._counts
            if size == b + pending[0]:
                self._counts = (size, r + pending[1])
            self._pending = None
        return self._counts

    @property
    def rows(self) -> int:
        return self._settled()[1]

    @property
    def bytes(self) -> int:
        return self._settled()[0]

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def _append(self, text: str, rows: int = 0) -> None:
        if self._fd < 0:
            raise ValueError(f"{self.path}: session writer is closed")
        data = text.encode("utf-8")
        b, r = self._settled()
        self._dirty = True
        self._pending = (len(data), rows)
        _write_all(self._fd, data)  # one write(2) for a row: a kill leaves whole rows only
        self._counts = (b + len(data), r + rows)
        self._pending = None

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row (a single ``write`` of the whole line; it reaches the OS at once)."""
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([_cell(row.get(c)) for c in self.columns])
        self._append(buf.getvalue(), rows=1)

    def comment(self, key: str, value: Any) -> None:
        """Append a ``# key: JSON`` line (``pandas.read_csv(comment="#")`` skips it)."""
        self._append(f"# {key}: {header_json(value)}\n")

    def sync(self) -> None:
        """fsync: what is written survives a crash of the process or the machine (skipped when
        nothing was written since the last one: that is durable already)."""
        if self._fd >= 0 and self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def close(self) -> None:
        if self._fd >= 0:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = -1


def _repair_tail(path: Path) -> tuple[str, int]:
    """Cut an incomplete last line off ``path``; return (its text, number of data rows)."""
    data = path.read_bytes()
    partial = ""
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        partial = data[cut:].decode("utf-8", errors="replace")
        with open(path, "r+b") as fh:
            fh.truncate(cut)
            fh.flush()
            os.fsync(fh.fileno())
        data = data[:cut]
    lines = [ln for ln in data.split(b"\n") if ln and not ln.startswith(b"#")]
    return partial, max(len(lines) - 1, 0)


class EventLog:
    """``events.jsonl``: one JSON object per line (time, kind, details), appended and flushed."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / EVENTS_NAME
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.counts: dict[str, int] = {}
        self._dirty = True  # written since the last fsync

    def log(self, kind: str, **fields: Any) -> None:
        """Append one event ``{"time": ISO-8601 UTC, "kind": kind, **fields}``."""
        if self._fd < 0:
            return
        rec = {"time": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"), "kind": kind, **fields}
        self._dirty = True
        _write_all(self._fd, (json.dumps(rec, default=_json_default, sort_keys=False) + "\n").encode("utf-8"))
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def sync(self) -> None:
        """fsync, unless nothing was logged since the last one."""
        if self._fd >= 0 and self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def close(self) -> None:
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1


class EventLogHandler(logging.Handler):
    """Copies log records into an :class:`EventLog`.

    The event kind is the record's ``event`` attribute (``logger.warning(msg, extra={"event":
    "retry", ...})``), else ``"log"``; other ``extra`` keys listed in ``fields`` are kept.
    A record marked ``delivered`` (a driver already handed the event to its ``on_event``
    callback, which :func:`labnet.app.runner.connect_driver_events` connects to the same log) is
    skipped, so every event is logged once.
    """

    def __init__(self, events: EventLog, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "delivered", False):
            return
        try:
            fields = dict(getattr(record, "fields", {}) or {})
            self.events.log(getattr(record, "event", "log"), level=record.levelname, logger=record.name,
                            message=record.getMessage(), **fields)
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


def write_status(folder: str | Path, status: str, reason: str = "", **fields: Any) -> dict[str, Any]:
    """Atomically (re)write ``status.json``: how the run stands or ended."""
    rec = {"status": status, "reason": reason, "pid": os.getpid(),
           "updated": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
           "unix_time": time.time(), **fields}
    atomic_write_json(Path(folder) / STATUS_NAME, rec)
    return rec


def read_status(folder: str | Path) -> dict[str, Any] | None:
    """``status.json`` of a session folder, or None if there is none."""
    p = Path(folder) / STATUS_NAME
    if not p.exists():
        return None
    return json.loads(p.read_text(encoding="utf-8"))


def copy_into(folder: Path, src: Path, name: str) -> None:
    shutil.copyfile(src, folder / name)


def read_header(path: str | Path) -> dict[str, Any]:
    """The ``# key: JSON`` block at the top of a session CSV, as a dict."""
    out: dict[str, Any] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            key, _, val = line[1:].strip().partition(": ")
            try:
                out[key] = json.loads(val)
            except json.JSONDecodeError:
                out[key] = val
    return out


def read_markers(path: str | Path, key: str) -> list[dict[str, Any]]:
    """Every ``# key: JSON`` comment line of the CSV after its header block (e.g. ``resumed``)."""
    out = []
    prefix = f"# {key}: "
    in_header = True
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith("#"):
                in_header = False
                continue
            if not in_header and line.startswith(prefix):
                try:
                    out.append(json.loads(line[len(prefix):]))
                except json.JSONDecodeError:
                    continue
    return out


def superseded_mask(df: Any, resumes: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Boolean mask of rows an exact resume made obsolete.

    A resume numbered ``attempt`` = b from ``from_step`` = k supersedes every row of an
    earlier attempt a < b whose step is > k (that step never completed in attempt a).
    """
    mask = np.zeros(len(df), dtype=bool)
    if "attempt" not in df.columns or not len(df):
        return mask
    att = df["attempt"].fillna(0).to_numpy(dtype=int)
    step = df["step"].to_numpy(dtype=int)
    for r in resumes:
        mask |= (att < int(r["attempt"])) & (step > int(r["from_step"]))
    return mask


def read_session(path: str | Path, *, keep_superseded: bool = False) -> Any:
    """The session CSV as a DataFrame; rows superseded by a resume are dropped by default.

    ``path`` is the CSV or its session folder.
    """
    import pandas as pd

    p = Path(path)
    if p.is_dir():
        p = p / CSV_NAME
    df = pd.read_csv(p, comment="#")
    if keep_superseded:
        return df
    mask = superseded_mask(df, read_markers(p, "resumed"))
    return df.loc[~mask].reset_index(drop=True)


def header_json(v: Any) -> str:
    """The JSON of one ``# key: JSON`` header line (numpy values and paths as plain JSON)."""
    return json.dumps(v, default=_json_default, sort_keys=True)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return "" if f != f else repr(f)
    if isinstance(v, (np.integer,)):
        return str(int(v))
    return str(v)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    return str(o)
