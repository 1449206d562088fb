"""The calibration table: per-edge code -> conductance with uncertainties (a ConductanceModel).

Stored as ``calibration.csv``: ``# key: JSON`` header lines like the session CSV, then
``edge,code,conductance_siemens,sigma_siemens`` rows (conductances and 1σ in siemens). Tables
written before the units convention (columns ``conductance_s``/``sigma_s``, where ``_s`` meant
siemens) are refused with a message naming the new columns.

A table file is checked like a user file: a damaged one (missing, empty, header only, cut
off mid-row, a file that does not match the ``content_sha256`` header line written with it,
non-finite, zero or negative conductances, missing or repeated (edge, code) pairs, fewer
codes than the part's taps) is one :class:`ConfigError` line. Which rig a table belongs to
(its ``binding`` header entry) is checked by :mod:`labnet.config.tables`.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from labnet.core.errors import ConfigError
from labnet.session.folder import atomic_write_text, header_json, read_header

#: Column names of tables written before the units convention -> their names now.
OLD_COLUMNS = {"conductance_s": "conductance_siemens", "sigma_s": "sigma_siemens"}


class CalibrationTable:
    """Per-edge code -> conductance table with uncertainties: a ConductanceModel.

    Parameters
    ----------
    k : array (E, C)
        Conductance (S) of edge j at code c (codes 0 … C−1).
    sigma : array (E, C)
        1σ uncertainty (S).
    meta : dict
        What produced the table (written into the CSV header).
    """

    def __init__(self, k: np.ndarray, sigma: np.ndarray, meta: Mapping[str, Any] | None = None) -> None:
        self.k = np.asarray(k, dtype=float)
        self.sigma = np.asarray(sigma, dtype=float)
        if self.k.ndim != 2 or self.k.shape != self.sigma.shape:
            raise ValueError(f"table: expected matching (E, C) arrays, got {self.k.shape} and {self.sigma.shape}")
        if not np.all(self.k > 0):
            raise ValueError("table: every conductance must be > 0 S")
        self.meta = dict(meta or {})
        self._rows = np.arange(self.k.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.k.shape[0])

    def conductance(self, codes: np.ndarray) -> np.ndarray:
        """Conductances (S), shape (E,), at integer codes (E,)."""
        c = np.asarray(codes, dtype=np.int64)
        return self.k[self._rows, c]

    def uncertainty(self, codes: np.ndarray) -> np.ndarray:
        """1σ (S), shape (E,), at integer codes (E,)."""
        return self.sigma[self._rows, np.asarray(codes, dtype=np.int64)]

    def slope(self, codes: np.ndarray) -> np.ndarray:
        """dk/dD (S per tap), shape (E,): k(D+1) − k(D), backward difference at the top code."""
        c = np.asarray(codes, dtype=np.int64)
        top = self.k.shape[1] - 1
        up = np.minimum(c + 1, top)
        lo = np.where(c >= top, top - 1, c)
        return (self.k[self._rows, up] - self.k[self._rows, lo]) / np.maximum(up - lo, 1)

    def to_csv(self, path: str | Path) -> Path:
        """Write ``# key: JSON`` header lines (``meta``, then :data:`HASH_KEY`: the SHA-256 of
        every other line of the file), then ``edge,code,conductance_siemens,sigma_siemens``
        rows. Replaced atomically: a failed write leaves the old file (or none), no temp file."""
        p = Path(path)
        e, c = np.meshgrid(np.arange(self.k.shape[0]), np.arange(self.k.shape[1]), indexing="ij")
        body = "".join([f"{COLUMNS}\n"] + [f"{a},{b},{float(kk)!r},{float(ss)!r}\n" for a, b, kk, ss in zip(
            e.ravel(), c.ravel(), self.k.ravel(), self.sigma.ravel())])
        head = "".join(f"# {key}: {header_json(val)}\n" for key, val in self.meta.items() if key != HASH_KEY)
        atomic_write_text(p, head + hash_line(head + body) + body)
        return p

    @classmethod
    def from_csv(cls, path: str | Path, n_edges: int | None = None, positions: int | None = None) -> CalibrationTable:
        """Read a table written by :meth:`to_csv`; :class:`ConfigError` (one line naming the file
        and what is wrong) if it is damaged or does not fit ``n_edges`` edges of a part with
        ``positions`` taps: missing, empty, header only, cut off mid-row, a content hash that
        does not match, non-numeric, non-finite, zero or negative conductances, negative 1σ,
        repeated or missing (edge, code) pairs, fewer codes than the part has."""
        p = Path(path)
        f = str(p)
        if not p.exists():
            raise ConfigError(f, "-", "calibration table not found")
        try:
            raw = p.read_bytes()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f, "-", f"unreadable calibration table ({exc})") from None
        if not text.strip():
            raise ConfigError(f, "-", "empty calibration table (no column row, no rows)")
        if not text.endswith("\n"):
            raise ConfigError(f, "-", "cut off mid-row (the last line has no line end): re-copy or re-calibrate")
        meta = read_header(p)
        lines = text.splitlines(keepends=True)
        n_head = next((i for i, ln in enumerate(lines) if not ln.startswith("#")), len(lines))
        body = "".join(lines[n_head:])
        columns = body.split("\n", 1)[0].split(",")
        for old, new in OLD_COLUMNS.items():  # an old table (before the units convention) says so first
            if old in columns:
                raise ConfigError(f, old, f"renamed to {new!r} (conductances are in siemens; '_s' means seconds)")
        k, sigma = _parse_rows(f, body, n_edges, positions)
        want = meta.get(HASH_KEY)
        if want is not None:
            rest = "".join(ln for ln in lines if not ln.startswith(f"# {HASH_KEY}: "))
            if hash_line(rest) != f"# {HASH_KEY}: {header_json(want)}\n":
                raise ConfigError(f, HASH_KEY, "the file does not match its content hash (changed or damaged after "
                                  "calibration): re-calibrate")
        return cls(k, sigma, meta)


#: the column row of a table file
COLUMNS = "edge,code,conductance_siemens,sigma_siemens"
#: header key of the SHA-256 (hex) of every other line of the table file
HASH_KEY = "content_sha256"


def hash_line(text: str) -> str:
    """The ``# content_sha256: "<hex>"`` line of a table whose other lines are ``text``."""
    return f"# {HASH_KEY}: {header_json(hashlib.sha256(text.encode('utf-8')).hexdigest())}\n"


def _parse_rows(f: str, body: str, n_edges: int | None, positions: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(k, sigma), each (E, C), from the column row and rows of a table file ``f``."""
    import pandas as pd

    if not body.strip():
        raise ConfigError(f, "-", "header only: no column row and no rows")
    try:
        df = pd.read_csv(io.StringIO(body), comment="#", dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ConfigError(f, "-", f"not a calibration table ({str(exc).splitlines()[0]})") from None
    need = COLUMNS.split(",")
    if not set(need) <= set(df.columns):
        raise ConfigError(f, "-", f"expected columns {sorted(need)}, got {list(df.columns)}")
    if not len(df):
        raise ConfigError(f, "-", "header only: a column row and no rows")
    vals = {}
    for col in need:
        num = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(num))
        if bad.size:
            raise ConfigError(f, col, f"row {int(bad[0]) + 1}: expected a finite number, got {df[col].iloc[bad[0]]!r}")
        vals[col] = num
    edge, code = vals["edge"], vals["code"]
    for col, v in (("edge", edge), ("code", code)):
        bad = np.flatnonzero((v != np.round(v)) | (v < 0))
        if bad.size:
            raise ConfigError(f, col, f"row {int(bad[0]) + 1}: expected an integer >= 0, got {df[col].iloc[bad[0]]!r}")
    for col, ok, what in (("conductance_siemens", vals["conductance_siemens"] > 0, "> 0 S"),
                          ("sigma_siemens", vals["sigma_siemens"] >= 0, ">= 0 S")):
        bad = np.flatnonzero(~ok)
        if bad.size:
            i = int(bad[0])
            raise ConfigError(f, col, f"row {i + 1} (edge {int(edge[i])}, code {int(code[i])}): expected {what}, "
                              f"got {df[col].iloc[i]}")
    e, c = int(edge.max()) + 1, int(code.max()) + 1
    if n_edges is not None and e != n_edges:
        raise ConfigError(f, "edge", f"table has {e} edges, the network has {n_edges}")
    if positions is not None and c != positions:
        raise ConfigError(f, "code", f"table has codes 0..{c - 1}, the part has {positions} (codes 0..{positions - 1}): "
                          "every code the run may write needs a row")
    if len(df) != e * c:
        raise ConfigError(f, "-", f"expected {e}x{c} rows (every edge at every code), got {len(df)}")
    pairs, counts = np.unique(edge.astype(np.int64) * c + code.astype(np.int64), return_counts=True)
    if pairs.size != len(df):
        i = int(pairs[np.flatnonzero(counts > 1)[0]])
        raise ConfigError(f, "-", f"edge {i // c} at code {i % c} appears twice (and another pair is missing)")
    k = np.empty((e, c))
    s = np.empty((e, c))
    k[edge.astype(np.int64), code.astype(np.int64)] = vals["conductance_siemens"]
    s[edge.astype(np.int64), code.astype(np.int64)] = vals["sigma_siemens"]
    return k, s
