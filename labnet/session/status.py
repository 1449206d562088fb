"""``status.json``: how a run stands or ended (replaced atomically)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from pathlib import Path
from typing import Any

from labnet.core.errors import StorageError
from labnet.session.files import STATUS_NAME, atomic_write_json, json_default


def write_status(folder: str | Path, status: str, reason: str = "", **fields: Any) -> dict[str, Any]:
    """Atomically (re)write ``status.json``: how the run stands or ended."""
    rec = {"status": status, "reason": reason, "pid": os.getpid(),
           "updated": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
           "unix_time": time.time(), **fields}
    p = Path(folder) / STATUS_NAME
    try:
        atomic_write_json(p, rec)
    except StorageError:  # a full disk has no room for the temp file: overwrite in place
        _overwrite(p, json.dumps(rec, default=json_default, indent=1, sort_keys=True) + "\n")
    return rec


def _overwrite(path: Path, text: str) -> None:
    """Rewrite an existing ``path`` in place (its blocks are reused, so a full disk has room for a
    record of about its size; not atomic — used only when the atomic replace found no room)."""
    if not path.exists():
        raise StorageError(f"{path}: cannot write (no room on the disk, and no earlier status to overwrite)")
    try:
        with open(path, "r+b") as fh:
            fh.write(text.encode("utf-8"))
            fh.truncate()
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise StorageError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def read_status(folder: str | Path) -> dict[str, Any] | None:
    """``status.json`` of a session folder, or None if there is none."""
    p = Path(folder) / STATUS_NAME
    if not p.exists():
        return None
    return json.loads(p.read_text(encoding="utf-8"))
