"""The numbers of a training session's report: the before/after table of ``report.md`` and
``report.json``, built once from the same values so the two cannot disagree.

``report.json``::

    {"labnet_report": 1, "session": "...", "kind": "train", "status": "completed",
     "quantities": {"lambda_min": {"symbol": "λ_min(H_F)", "unit": "S", "over": "...",
                                   "definition": "...", "before": 1.3e-4, "after": 2.3e-4,
                                   "before_step": 0, "after_step": 300}, ...},
     "classification": {"accuracy": {"train": {"before": .., "after": ..}, ...},
                        "confusion": {"test": {"step": 300, "classes": [...], "counts": [[...]]}, ...}},
     "kept": {...} | null}

Names, symbols and definitions are :data:`labnet.core.quantities.QUANTITIES`. A quantity the
session cannot give (``deff_probe`` without a probe) is present with ``before``/``after`` null
and a ``reason``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from labnet.app.report_data import SessionData
from labnet.app.report_task import confusion, eval_steps
from labnet.core.quantities import QUANTITIES, over

#: Name of the numbers file next to report.md.
REPORT_JSON = "report.json"
#: Tracking column -> quantity name.
_TRACKED = {"lam_min": "lambda_min", "share_soft": "softest_share", "abs_share_soft": "softest_abs_share",
            "deff": "deff_model", "gbar": "gbar"}


def _num(x: Any) -> float | None:
    v = float(x)
    return v if math.isfinite(v) else None


def _entry(name: str, before: Any, after: Any, before_step: Any, after_step: Any, force: bool = False,
           **extra: Any) -> dict[str, Any]:
    q = QUANTITIES[name]
    return {"name": name, "symbol": q.symbol, "unit": q.unit, "over": over(name, force), "definition": q.definition,
            "before": None if before is None else _num(before), "after": None if after is None else _num(after),
            "before_step": None if before_step is None else int(before_step),
            "after_step": None if after_step is None else int(after_step), **extra}


def session_numbers(d: SessionData, kept: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every before/after number of a training session (the ``quantities`` and
    ``classification`` parts of report.json)."""
    out: dict[str, Any] = {}
    ev, steps = d.evals, eval_steps(d)
    for split in ("train", "test"):
        if split in ev:
            col = ev[split].dropna()
            if not col.empty:
                out[f"{split}_mse"] = _entry(f"{split}_mse", col.iloc[0], col.iloc[-1], col.index[0], col.index[-1])
    classes: dict[str, Any] = {}
    if steps:
        for split in ("train", "test"):
            a, b = confusion(d, steps[0], split), confusion(d, steps[-1], split)
            if a is not None and b is not None:
                out[f"{split}_accuracy"] = _entry(f"{split}_accuracy", a.accuracy, b.accuracy, a.step, b.step)
                classes.setdefault("confusion", {})[split] = {
                    "step": b.step, "classes": list(b.names), "counts": b.counts.tolist(),
                    "rows": "true class", "columns": "predicted class"}
    if classes:
        classes["accuracy"] = {s: {"before": out[f"{s}_accuracy"]["before"], "after": out[f"{s}_accuracy"]["after"]}
                               for s in ("train", "test") if f"{s}_accuracy" in out}
    if not d.tracking.empty:
        t = d.tracking.sort_values("step")
        a, b = t.iloc[0], t.iloc[-1]
        for col, name in _TRACKED.items():
            out[name] = _entry(name, a[col], b[col], a["step"], b["step"],
                               force=any(n in d.network.current_channels for n in d.network.inputs))
    out.update(_probe_numbers(d.tracking))
    return {"quantities": out, "classification": classes or None, "kept": kept}


def _probe_numbers(t: pd.DataFrame) -> dict[str, Any]:
    probed = t[t["probe_deff"].notna()].sort_values("step") if "probe_deff" in t else t.iloc[:0]
    if probed.empty:
        why = "no probe in this session (the training protocol's [analysis] probe_every = 0, or no tracking)"
        return {n: _entry(n, None, None, None, None, reason=why) for n in ("deff_probe", "deff_probe_model")}
    a, b = probed.iloc[0], probed.iloc[-1]
    return {"deff_probe": _entry("deff_probe", a["probe_deff"], b["probe_deff"], a["step"], b["step"],
                                 before_sd=_num(a["probe_deff_sd"]), after_sd=_num(b["probe_deff_sd"])),
            "deff_probe_model": _entry("deff_probe_model", a["probe_model_deff"], b["probe_model_deff"],
                                       a["step"], b["step"])}


def _fmt(q: dict[str, Any], key: str) -> str:
    v = q[key]
    if v is None:
        return "—"
    if q["name"].endswith("_accuracy"):
        return f"{v:.1%}"
    s = f"{v:.4g}" if q["unit"] else f"{v:.3f}"
    sd = q.get(f"{key}_sd")
    return f"{s} ± {sd:.3f}" if sd is not None else s


def table_rows(numbers: dict[str, Any]) -> list[list[str]]:
    """report.md's table (quantity, before, after, computed over) from :func:`session_numbers`."""
    rows = []
    for q in numbers["quantities"].values():
        if q["before"] is None and q["after"] is None:
            continue
        label = f"{q['symbol']} ({q['unit']})" if q["unit"] else q["symbol"]
        rows.append([label, _fmt(q, "before"), _fmt(q, "after"), q["over"]])
    return rows


def definitions(numbers: dict[str, Any]) -> list[str]:
    """``symbol: definition`` of every quantity the table shows (report.md's list under it)."""
    return [f"{q['symbol']}: {q['definition']}" for q in numbers["quantities"].values()
            if q["before"] is not None or q["after"] is not None]


def write_numbers(folder: Path, d: SessionData, kept: dict[str, Any] | None) -> dict[str, Any]:
    """Write ``report.json`` (atomically) and return what it holds."""
    from labnet.session.files import atomic_write_text

    doc = {"labnet_report": 1, "session": folder.name, "kind": "train",
           "status": (d.status or {}).get("status", "unknown"), **session_numbers(d, kept)}
    atomic_write_text(folder / REPORT_JSON, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return doc


__all__ = ["REPORT_JSON", "definitions", "session_numbers", "table_rows", "write_numbers"]
