"""``labnet infer PROBE [--before PROBE0]``: rank a probed network's task inputs and outputs.

Reads probe session folders (``labnet probe``: ``session.csv`` with ``set_<node>`` columns for
the driven nodes and ``v_<node>`` for every node). Known to the estimator: which nodes were
driven (the ``set_`` columns) and which were measured (every other non-ground node with finite
readings) — nothing about roles. With ``--before`` (a probe of the same rig and drive set before
training, e.g. at the initial codes) it ranks by the change of the transfer (see
:mod:`labnet.core.infer`). The session header's network roles are used only to score the
ranking afterwards (the hit), never to make it. Every problem is a one-line :class:`ConfigError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labnet.core.errors import ConfigError
from labnet.core.infer import Inference, chance, fit_transfer, infer_roles, topk_hits
from labnet.session.folder import read_header, read_session


def load_probe(folder: str | Path, key: str = "SESSION") -> tuple[dict[str, Any], list[str], list[str], np.ndarray, np.ndarray]:
    """(header, drive, measured, applied (M, D), responses (M, F)) of a probe session folder."""
    f = Path(folder)
    csv = f / "session.csv"
    if not f.is_dir() or not csv.is_file():
        raise ConfigError(str(f), key, "expected a probe session folder with a session.csv")
    header = read_header(csv)
    proto = header.get("protocol")
    if not isinstance(proto, dict) or proto.get("kind") != "probe":
        raise ConfigError(str(csv), key, "not a probe session (header protocol.kind is not 'probe'; run labnet probe)")
    net = header.get("network")
    if not isinstance(net, dict) or not isinstance(net.get("nodes"), list):
        raise ConfigError(str(csv), "network", "no network in the session header")
    try:
        df = read_session(f)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ConfigError(str(csv), key, f"unreadable session CSV ({str(exc).splitlines()[0]})") from None
    drive = [c[4:] for c in df.columns if c.startswith("set_")]
    ground = net.get("ground")
    cand = [n for n in net["nodes"] if n not in drive and n != ground and f"v_{n}" in df.columns]
    resp = df[[f"v_{n}" for n in cand]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    ok = np.all(np.isfinite(resp), axis=0)
    measured = [n for n, g in zip(cand, ok, strict=True) if g]
    applied = df[[f"set_{n}" for n in drive]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if not drive or not measured:
        raise ConfigError(str(csv), key, f"need driven (set_*) and measured (v_*) nodes; got {len(drive)} and {len(measured)}")
    if len(df) < len(drive) + 1 or not np.all(np.isfinite(applied)):
        raise ConfigError(str(csv), key, f"need at least {len(drive) + 1} complete patterns, got {len(df)}")
    return header, drive, measured, applied, resp[:, ok]


def infer_session(folder: str | Path, before: str | Path | None = None) -> tuple[Inference, dict[str, Any]]:
    """The ranking of a probe session (and the true roles from its header, for scoring only)."""
    header, drive, measured, applied, resp = load_probe(folder)
    t_before = None
    if before is not None:
        _, d0, m0, a0, r0 = load_probe(before, "--before")
        if d0 != drive or m0 != measured:
            raise ConfigError(str(before), "--before", f"drive/measured nodes {d0}/{m0} differ from {drive}/{measured}")
        t_before = fit_transfer(a0, r0)
    net = header["network"]
    return infer_roles(fit_transfer(applied, resp), drive, measured, t_before), {
        "inputs": [n for n in net.get("inputs", []) if n in drive],
        "outputs": [n for n in net.get("outputs", []) if n in measured]}


def infer_summary(inf: Inference, truth: dict[str, Any]) -> str:
    """The ranking, and each role's top-1/top-2 hit against the recorded roles, as text."""
    how = "change of the transfer (before/after probes)" if inf.method == "change" else "trained probe alone"
    lines = [f"labnet infer: ranking from the {how}; leading direction's share {inf.share:.3f}"]
    for role, rank, score in (("inputs", inf.inputs, inf.input_score), ("outputs", inf.outputs, inf.output_score)):
        lines.append(f"  {role:7s} " + ", ".join(f"{n} ({s:.3f})" for n, s in zip(rank, score, strict=True)))
        true = truth[role]
        if true:
            hits = [f"top-{k} {topk_hits(rank, true, k):.2f} (chance {chance(k, len(rank)):.2f})"
                    for k in (1, 2) if k <= len(rank)]
            lines.append(f"          recorded {role}: {', '.join(true)}; " + ", ".join(hits))
    return "\n".join(lines)


__all__ = ["infer_session", "infer_summary", "load_probe"]
