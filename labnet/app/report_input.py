"""What ``labnet report`` reads, checked first: a training session folder with a readable CSV.

A folder that is not one (missing, no ``session.csv``, a CSV that is not a labnet session's,
unreadable, without the columns the figures need) is a one-line :class:`ConfigError` (exit 2)
before any figure is started. A CSV without rows (a run that failed before its first state) is
returned as it is: its report is a partial page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from labnet.core.errors import ConfigError
from labnet.session.folder import CSV_NAME, read_header

#: columns every training session CSV has and the report uses (besides ``code_e<j>``)
NEEDED = ("step", "phase", "split", "error")


def read_training_csv(folder: str | Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """(header, rows) of the training session in ``folder``; ConfigError naming the file."""
    f = Path(folder)
    csv = f / CSV_NAME
    if not f.is_dir():
        raise ConfigError(str(f), "-", "session folder not found")
    if not csv.is_file():
        raise ConfigError(str(f), CSV_NAME, "missing (not a labnet training session?)")
    try:
        header = read_header(csv)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(csv), "-", f"unreadable ({exc})") from None
    if header.get("labnet_session") != 1:
        raise ConfigError(str(csv), "labnet_session", "missing: not a labnet session CSV")
    proto = header.get("protocol")
    kind = proto.get("kind", "train") if isinstance(proto, dict) else None
    if kind != "train":  # labnet.app.report dispatches calibrate and probe sessions before this
        raise ConfigError(str(csv), "protocol.kind", f"a {kind or 'unknown'} session; expected train, calibrate "
                          "or probe")
    if not isinstance(header.get("network"), dict):
        raise ConfigError(str(csv), "network", "missing from the header")
    try:
        states = pd.read_csv(csv, comment="#")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ConfigError(str(csv), "-", f"unreadable CSV ({str(exc).splitlines()[0]})") from None
    n_edges = len(header["network"].get("edges", []))
    missing = [c for c in (*NEEDED, *(f"code_e{j}" for j in range(n_edges))) if c not in states.columns]
    if missing:
        raise ConfigError(str(csv), missing[0], "column missing (not a training session's CSV)")
    return header, states  # no rows: a session that failed before its first state, a partial report


__all__ = ["NEEDED", "read_training_csv"]
