"""``status.json``: how a run stands or ended (replaced atomically)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from pathlib import Path
from typing import Any

from labnet.session.files import STATUS_NAME, atomic_write_json


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
