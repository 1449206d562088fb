"""Sessions: one folder per run with the input files copied in and an append-only CSV.

The CSV starts with ``#`` comment lines that make it self-describing — each is
``# key: <JSON>`` (protocol, rig, network, versions, seed, the simulator's part draw,
instrument identities) — followed by a header row and one row per measured state, appended
and flushed as it happens. ``pandas.read_csv(path, comment="#")`` reads it;
:func:`read_header` returns the comment block as a dict.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import platform
import shutil
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

CSV_NAME = "session.csv"


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
    d = root / f"{stamp}-{name}"
    n = 1
    while d.exists():
        n += 1
        d = root / f"{stamp}-{name}-{n}"
    d.mkdir(parents=True)
    return d


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
    """

    def __init__(self, folder: str | Path, header: Mapping[str, Any], columns: Sequence[str],
                 files: Mapping[str, str] | None = None, *, append: bool = False) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / CSV_NAME
        self.columns = list(columns)
        for name, text in (files or {}).items():
            (self.folder / name).write_text(text, encoding="utf-8")
        if append:
            self._fh = open(self.path, "a", encoding="utf-8", newline="")
        else:
            self._fh = open(self.path, "x", encoding="utf-8", newline="")
            for k, v in header.items():
                self._fh.write(f"# {k}: {json.dumps(v, default=_json_default, sort_keys=True)}\n")
            self._fh.write(",".join(self.columns) + "\n")
            self.sync()
        self.rows = 0

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row and flush it to the OS."""
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([_cell(row.get(c)) for c in self.columns])
        self._fh.write(buf.getvalue())
        self._fh.flush()
        self.rows += 1

    def sync(self) -> None:
        """Flush and fsync: what is written survives a crash of the process or the machine."""
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self.sync()
            self._fh.close()


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
