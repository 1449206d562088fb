"""Reading a session CSV: its header block, its marker lines, its rows (superseded ones dropped)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labnet.session.files import CSV_NAME


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
