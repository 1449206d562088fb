"""The calibration table: per-edge code -> conductance with uncertainties (a ConductanceModel).

Stored as ``calibration.csv``: ``# key: JSON`` header lines like the session CSV, then
``edge,code,conductance_siemens,sigma_siemens`` rows (conductances and 1σ in siemens). Tables
written before the units convention (columns ``conductance_s``/``sigma_s``, where ``_s`` meant
siemens) are refused with a message naming the new columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from labnet.core.errors import ConfigError
from labnet.session.folder import header_json, read_header

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
        """Write ``# key: JSON`` header lines, then ``edge,code,conductance_siemens,sigma_siemens`` rows."""
        p = Path(path)
        e, c = np.meshgrid(np.arange(self.k.shape[0]), np.arange(self.k.shape[1]), indexing="ij")
        with open(p, "w", encoding="utf-8", newline="") as fh:
            for key, val in self.meta.items():
                fh.write(f"# {key}: {header_json(val)}\n")
            fh.write("edge,code,conductance_siemens,sigma_siemens\n")
            for a, b, kk, ss in zip(e.ravel(), c.ravel(), self.k.ravel(), self.sigma.ravel()):
                fh.write(f"{a},{b},{float(kk)!r},{float(ss)!r}\n")
        return p

    @classmethod
    def from_csv(cls, path: str | Path, n_edges: int | None = None) -> CalibrationTable:
        """Read a table written by :meth:`to_csv`; ConfigError if it does not fit ``n_edges``."""
        import pandas as pd

        p = Path(path)
        if not p.exists():
            raise ConfigError(str(p), "-", "calibration table not found")
        df = pd.read_csv(p, comment="#")
        renamed = {old: new for old, new in OLD_COLUMNS.items() if old in df.columns}
        if renamed:
            old, new = next(iter(renamed.items()))
            raise ConfigError(str(p), old, f"renamed to {new!r} (conductances are in siemens; '_s' means seconds)")
        need = {"edge", "code", "conductance_siemens", "sigma_siemens"}
        if not need <= set(df.columns):
            raise ConfigError(str(p), "-", f"expected columns {sorted(need)}, got {list(df.columns)}")
        e = int(df["edge"].max()) + 1
        c = int(df["code"].max()) + 1
        if len(df) != e * c:
            raise ConfigError(str(p), "-", f"expected {e}x{c} rows (every edge at every code), got {len(df)}")
        if n_edges is not None and e != n_edges:
            raise ConfigError(str(p), "edge", f"table has {e} edges, the network has {n_edges}")
        k = np.full((e, c), np.nan)
        s = np.full((e, c), np.nan)
        k[df["edge"].to_numpy(), df["code"].to_numpy()] = df["conductance_siemens"].to_numpy()
        s[df["edge"].to_numpy(), df["code"].to_numpy()] = df["sigma_siemens"].to_numpy()
        return cls(k, s, read_header(p))
