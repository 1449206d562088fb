"""What ``labnet watch`` reads: a running session's files, followed as they grow.

A session CSV is append-only (``labnet.session.writer``), so a watcher needs no link to the
running process: :class:`CsvTail` keeps its byte offset and parses only the complete lines
added since the last poll (``# key: JSON`` header and marker lines, the column row, data rows),
leaving a half-written last line for the next poll. :class:`SessionView` puts the pieces of one
session folder together (CSV, ``evaluations.jsonl``, ``status.json``) for the figure;
:func:`sweep_progress` reads a sweep folder's manifest and finished parts.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labnet.core.errors import ConfigError

#: Files whose presence means the session's work is done (calibrate and probe write no status.json).
RESULT_FILES = {"calibrate": "calibration.csv", "probe": "probe.csv"}


class CsvTail:
    """Incremental reader of an append-only CSV with ``# key: JSON`` comment lines.

    Attributes: ``header`` (the comment lines' values by key, the latest one of each key),
    ``markers`` (comment lines after the column row, in order), ``columns``, ``rows`` (lists of
    strings, one per data row).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = 0
        self.header: dict[str, Any] = {}
        self.markers: list[tuple[str, Any]] = []
        self.columns: list[str] | None = None
        self.rows: list[list[str]] = []

    def poll(self) -> int:
        """Read what was appended since the last call; the number of new data rows."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return 0
        end = chunk.rfind(b"\n")
        if end < 0:
            return 0  # nothing complete yet
        self.offset += end + 1
        before = len(self.rows)
        for line in chunk[: end + 1].decode("utf-8", errors="replace").splitlines():
            if not line:
                continue
            if line.startswith("#"):
                key, _, val = line[1:].strip().partition(": ")
                try:
                    value: Any = json.loads(val)
                except json.JSONDecodeError:
                    value = val
                self.header[key] = value
                if self.columns is not None:
                    self.markers.append((key, value))
                continue
            fields = next(csv.reader([line]))
            if self.columns is None:
                self.columns = fields
            else:
                self.rows.append(fields)
        return len(self.rows) - before

    def column(self, name: str, rows: list[list[str]] | None = None) -> list[float]:
        """One column as floats (NaN where empty), over ``rows`` (default: all)."""
        if self.columns is None or name not in self.columns:
            return []
        i = self.columns.index(name)
        return [_num(r[i]) if i < len(r) else math.nan for r in (self.rows if rows is None else rows)]

    def names(self, prefix: str) -> list[str]:
        """The columns starting with ``prefix`` (``v_``, ``code_``, ``set_``), in order."""
        return [c for c in self.columns or [] if c.startswith(prefix)]

    def last(self, where: dict[str, str]) -> list[str] | None:
        """The last row whose columns equal ``where`` (e.g. ``{"phase": "free"}``)."""
        if self.columns is None:
            return None
        idx = {self.columns.index(k): v for k, v in where.items() if k in self.columns}
        if len(idx) != len(where):
            return None
        for r in reversed(self.rows):
            if all(i < len(r) and r[i] == v for i, v in idx.items()):
                return r
        return None


def _num(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        return math.nan


@dataclass
class SessionView:
    """One session folder followed as it runs: kind, status, evaluations and the CSV tail."""

    folder: Path
    csv: CsvTail = field(init=False)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    _eval_offset: int = 0

    def __post_init__(self) -> None:
        self.csv = CsvTail(self.folder / "session.csv")

    @property
    def kind(self) -> str:
        """``train``, ``calibrate`` or ``probe`` (from the CSV header; ``train`` until it is read)."""
        proto = self.csv.header.get("protocol")
        return str(proto.get("kind", "train")) if isinstance(proto, dict) else "train"

    def poll(self) -> int:
        """New rows since the last poll (also reads new evaluation lines)."""
        n = self.csv.poll()
        path = self.folder / "evaluations.jsonl"
        if path.exists():
            with open(path, "rb") as fh:
                fh.seek(self._eval_offset)
                chunk = fh.read()
            end = chunk.rfind(b"\n")
            if end >= 0:
                self._eval_offset += end + 1
                for line in chunk[: end + 1].decode("utf-8", errors="replace").splitlines():
                    try:
                        self.evaluations.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue
        return n

    def status(self) -> dict[str, Any]:
        """``status.json`` (training), or what the folder says for calibrate/probe sessions."""
        try:
            s = json.loads((self.folder / "status.json").read_text(encoding="utf-8"))
            return s if isinstance(s, dict) else {}
        except (FileNotFoundError, json.JSONDecodeError, OSError):
            pass
        if "run_ended" in self.csv.header:
            return dict(self.csv.header["run_ended"])
        result = RESULT_FILES.get(self.kind)
        return {"status": "completed" if result and (self.folder / result).exists() else "running"}

    @property
    def done(self) -> bool:
        """Whether the run has ended (completed, stopped or failed)."""
        return str(self.status().get("status", "running")) not in ("running", "starting")

    @property
    def step(self) -> int:
        """Steps completed: status.json's count, or the highest step in the CSV."""
        steps = [s for s in self.csv.column("step") if s == s]
        done = self.status().get("step")
        return max(int(max(steps)) if steps else 0, int(done) if isinstance(done, int) else 0)


def sweep_progress(folder: Path) -> dict[str, Any]:
    """A sweep folder: points in the sweep, points done (finished parts), the manifest's runs and
    the fraction of finished points showing each effect (reads the parts with pandas)."""
    import pandas as pd

    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    parts = sorted((folder / "parts").glob("chunk-*.parquet"))
    frames = []
    for p in parts:
        try:
            frames.append(pd.read_parquet(p))
        except (OSError, ValueError):  # a part being replaced right now: next poll
            continue
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    effects = {c: float(df[c].mean()) for c in ("lam_falls", "share_rises", "deff_falls", "gbar_rises", "all_four")
               if c in df.columns}
    runs = manifest.get("runs", [])
    return {"name": manifest.get("name", folder.name), "n_points": int(manifest.get("n_points", 0)), "done": len(df),
            "effects": effects, "finished": bool(runs) and "finished" in runs[-1], "frame": df}


def resolve(path: Path) -> tuple[str, Path]:
    """(``session`` | ``sweep``, folder) for a session or sweep folder, or a folder of sessions (its
    newest); ConfigError naming the path otherwise."""
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(str(p), "-", "not a folder (expected a session or sweep folder)")
    if (p / "manifest.json").exists():
        return "sweep", p
    if (p / "session.csv").exists() or (p / "run.json").exists():
        return "session", p
    subs = sorted((d for d in p.iterdir() if d.is_dir() and (d / "session.csv").exists()),
                  key=lambda d: (d / "session.csv").stat().st_mtime)
    if subs:
        return "session", subs[-1]
    raise ConfigError(str(p), "-", "not a session folder (no session.csv) nor a sweep folder (no manifest.json), "
                      "and it holds no session folders")


__all__ = ["RESULT_FILES", "CsvTail", "SessionView", "resolve", "sweep_progress"]
