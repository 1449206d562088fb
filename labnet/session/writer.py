"""The session CSV: append-only rows with a self-describing comment header (see
:mod:`labnet.session.folder` for the durability rules)."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labnet.core.errors import StorageError
from labnet.session.files import (
    CSV_NAME,
    atomic_write_text,
    fsync_dir,
    header_json,
    storage_error,
    write_all,
    write_temp,
)


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
            lines = [f"# {k}: {header_json(v)}\n" for k, v in _with_start_time(header).items()]
            lines.append(csv_line(self.columns))  # quoted like the rows: any name reads back
            tmp = self.folder / f".{CSV_NAME}.tmp"
            try:
                write_temp(tmp, "".join(lines).encode("utf-8"))  # removed again if the disk is full
                try:
                    os.link(tmp, self.path)
                finally:
                    tmp.unlink()
            except FileExistsError:
                raise
            except OSError as exc:
                raise storage_error(self.path, exc) from exc
            fsync_dir(self.folder)
        # never through a link: a resume appends to the session's own file, not to a link's target
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
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
        try:
            write_all(self._fd, data)  # one write(2) for a row: a kill leaves whole rows only
        except OSError as exc:  # a full disk may take part of the line: cut it off again
            self._pending = None
            try:
                os.ftruncate(self._fd, b)
            except OSError:
                pass
            raise StorageError(f"{self.path}: cannot write row {r + 1} ({exc.strerror or exc}); the {r} rows "
                               "before it are intact") from exc
        self._counts = (b + len(data), r + rows)
        self._pending = None

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row (a single ``write`` of the whole line; it reaches the OS at once)."""
        self._append(csv_line([_cell(row.get(c)) for c in self.columns]), rows=1)

    def comment(self, key: str, value: Any) -> None:
        """Append a ``# key: JSON`` line (``pandas.read_csv(comment="#")`` skips it)."""
        self._append(f"# {key}: {header_json(value)}\n")

    def sync(self) -> None:
        """fsync: what is written survives a crash of the process or the machine (skipped when
        nothing was written since the last one: that is durable already)."""
        if self._fd >= 0 and self._dirty:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise storage_error(self.path, exc) from exc
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


def csv_line(cells: Sequence[str]) -> str:
    """One CSV line (``\\n``-terminated), cells quoted where they need it (comma, quote, newline)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return "" if f != f else repr(f)
    if isinstance(v, (np.integer,)):
        return str(int(v))
    return str(v)


def _with_start_time(header: Mapping[str, Any]) -> dict[str, Any]:
    """``header`` with ``started_utc`` (ISO 8601, UTC, ms) right after its first line, unless given:
    the absolute time the session started (``time_s``/``bench_s`` in the rows are relative)."""
    if "started_utc" in header:
        return dict(header)
    stamp = _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")
    items = list(header.items())
    return dict([*items[:1], ("started_utc", stamp), *items[1:]])
