"""Checkpoints: everything needed to continue a run exactly where its last complete step ended.

A checkpoint is written after every *complete* step — the step's free and clamped states,
its update written to the digipots and, when one is due, its evaluation — as
``checkpoint.json`` in the session folder, replaced atomically (temp file, fsync,
``os.replace``). It holds:

* ``step``, ``attempt`` and the engine state: the batch/stochastic-rounding generator's
  state, the evaluations so far;
* ``codes``: the host's record of every digipot code after the step;
* ``csv_rows`` / ``csv_bytes``: how much of the CSV the step's rows fill (the CSV was
  fsynced before the checkpoint was written, so the file is at least that long);
* ``sim``: on a simulated rig, the state of the simulator — every random stream (meter noise,
  fault injection, …) and its virtual clock — so a resumed dry run draws the very same noise
  the uninterrupted run would have. On a bench there is nothing to restore there: the codes
  are re-written from the host record and verified (``Rig.restore_codes``).

The simulator state is found by walking the rig's instrument objects (those defined in the
``simulator`` and ``drivers`` packages, through attributes, lists, tuples and dicts, a few
levels deep): every ``numpy.random.Generator`` and every virtual clock (an object with a
float ``t`` and a ``charge`` method) is saved under its attribute path and restored to the
same path. labnet thus never imports the simulator, and a new emulated instrument with its
own generator is covered without code here. A class lists the attributes that only hold
derived data (parse caches, solver plans) in ``CHECKPOINT_SKIP``; they are not walked, so a
checkpoint costs the same at step 10 and at step 10,000.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labnet.session.folder import atomic_write_json, atomic_write_text

CHECKPOINT_NAME = "checkpoint.json"
EVALUATIONS_NAME = "evaluations.jsonl"
RUN_NAME = "run.json"
FORMAT = 1

_WALK_PACKAGES = ("simulator", "drivers")
_MAX_DEPTH = 6


#: Values that cannot hold a generator or a clock: not walked into (most of what caches hold).
_LEAVES = frozenset({str, bytes, bytearray, int, float, bool, complex, type(None), np.ndarray, np.float64, np.int64,
                     frozenset, set})


def _walk(root: Any, name: str, seen: set[int]) -> tuple[list[tuple[str, Any]], int]:
    """Generators and clocks under ``root`` as (path, object), depth first with attributes and
    dict keys in sorted order, and how many objects were visited. Objects in ``seen`` (and
    those visited now, which are added) are not entered again; leaves are never pushed."""
    found: list[tuple[str, Any]] = []
    stack: list[tuple[Any, str, int]] = [(root, name, 0)]
    visits = 0
    while stack:
        obj, path, depth = stack.pop()
        if id(obj) in seen or depth > _MAX_DEPTH:
            continue
        seen.add(id(obj))
        visits += 1
        if isinstance(obj, np.random.Generator) or _is_clock(obj):
            found.append((path, obj))
            continue
        if isinstance(obj, dict):
            children = [(obj[k], f"{path}[{k!r}]") for k in sorted(obj, key=str) if type(obj[k]) not in _LEAVES]
        elif isinstance(obj, (list, tuple)):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(obj) if type(v) not in _LEAVES]
        else:
            if type(obj).__module__.split(".")[0] not in _WALK_PACKAGES:
                continue
            attrs = getattr(obj, "__dict__", None)
            if not isinstance(attrs, dict):
                continue
            skip = getattr(type(obj), "CHECKPOINT_SKIP", ())
            children = [(attrs[k], f"{path}.{k}") for k in sorted(attrs)
                        if k not in skip and type(attrs[k]) not in _LEAVES]
        stack.extend((c, p, depth + 1) for c, p in reversed(children))
    return found, visits


def _is_clock(obj: Any) -> bool:
    return (type(obj).__module__.split(".")[0] in _WALK_PACKAGES and isinstance(getattr(obj, "t", None), float)
            and callable(getattr(obj, "charge", None)))


def _roots(rig: Any) -> dict[str, Any]:
    roots = {}
    bench = _sim_bench(rig)
    if bench is not None:
        roots["bench"] = bench
    roots.update(digipots=rig.digipots, sources=rig.sources, meter=rig.meter, clock=rig.clock)
    return roots


def _sim_bench(rig: Any) -> Any:
    """The simulated bench behind a wired simulated rig (``rig.extra["sim_bench"]``), if any.

    Looked up in ``sys.modules`` only: labnet does not import the simulator here; if the rig
    is simulated over the wire, ``simulator.bench`` is already loaded.
    """
    name = getattr(rig, "extra", {}).get("sim_bench")
    mod = sys.modules.get("simulator.bench")
    if not name or mod is None:
        return None
    try:
        return mod.get_bench(name)
    except KeyError:
        return None


def sim_model(rig: Any) -> Any:
    """The simulator's physical model behind ``rig`` (an object with ``driven`` — the source
    channels whose outputs are on — and ``held_voltages()``), or None on a bench."""
    seen: set[int] = set()
    for root in _roots(rig).values():
        found = _find_model(root, 0, seen)
        if found is not None:
            return found
    return None


def _find_model(obj: Any, depth: int, seen: set[int]) -> Any:
    if id(obj) in seen or depth > _MAX_DEPTH:
        return None
    seen.add(id(obj))
    if type(obj).__module__.split(".")[0] not in _WALK_PACKAGES:
        return None
    if isinstance(getattr(obj, "driven", None), dict) and callable(getattr(obj, "held_voltages", None)):
        return obj
    for v in sorted(getattr(obj, "__dict__", {}).items()):
        found = _find_model(v[1], depth + 1, seen)
        if found is not None:
            return found
    return None


def find_state(rig: Any) -> dict[str, Any]:
    """Paths of the random generators and virtual clocks inside the rig's instruments."""
    seen: set[int] = set()
    out: dict[str, Any] = {}
    for name, root in _roots(rig).items():
        for path, obj in _walk(root, name, seen)[0]:
            out.setdefault(path, obj)
    return out


def sim_state(rig: Any) -> dict[str, Any]:
    """JSON-able state of the rig's simulator: ``{path: {"rng": state} | {"clock_t": t}}``."""
    out: dict[str, Any] = {}
    for path, obj in find_state(rig).items():
        if isinstance(obj, np.random.Generator):
            out[path] = {"rng": obj.bit_generator.state}
        else:
            out[path] = {"clock_t": float(obj.t)}
    return out


def restore_sim_state(rig: Any, state: dict[str, Any]) -> list[str]:
    """Put the saved generator states and clock times back; returns the paths not found.

    Objects are matched by path; a path present now but absent from ``state`` is left as it is.
    """
    now = find_state(rig)
    missing = []
    for path, saved in state.items():
        obj = now.get(path)
        if obj is None:
            missing.append(path)
            continue
        if "rng" in saved and isinstance(obj, np.random.Generator):
            obj.bit_generator.state = saved["rng"]
        elif "clock_t" in saved and not isinstance(obj, np.random.Generator):
            obj.t = float(saved["clock_t"])
        else:
            missing.append(path)
    return missing


def write_checkpoint(folder: str | Path, data: dict[str, Any]) -> None:
    """Atomically replace the session's ``checkpoint.json``."""
    atomic_write_json(Path(folder) / CHECKPOINT_NAME, {"format": FORMAT, **data})


def read_checkpoint(folder: str | Path) -> dict[str, Any] | None:
    """The session's checkpoint, or None if the run never completed its first checkpoint."""
    p = Path(folder) / CHECKPOINT_NAME
    if not p.exists():
        return None
    data = json.loads(p.read_text(encoding="utf-8"))
    if data.get("format") != FORMAT:
        raise ValueError(f"{p}: unsupported checkpoint format {data.get('format')!r}")
    return data


class EvaluationLog:
    """The run's evaluations, one JSON line each, appended as checkpoints are written.

    A checkpoint names how many lines belong to it (``{"file": EVALUATIONS_NAME, "count": n}``
    in place of the list), so ``checkpoint.json`` stays the same size however long the run:
    rewriting every evaluation so far at every step made checkpoints quadratic in the run's
    length. Opening the log rewrites it with ``kept`` (the evaluations of the checkpoint resumed
    from, as :func:`engine_state` read them), dropping any line written after that checkpoint.
    """

    def __init__(self, folder: str | Path, kept: Sequence[dict[str, Any]] = ()) -> None:
        self.path = Path(folder) / EVALUATIONS_NAME
        # replaced atomically: a crash now leaves the old log, which still holds the checkpoint's lines
        atomic_write_text(self.path, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept))
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.count = len(kept)

    def extend(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Append the records past ``count``, fsync; the reference a checkpoint stores."""
        new = records[self.count:]
        if new:
            self._file.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in new)
            self._file.flush()
            os.fsync(self._file.fileno())
            self.count = len(records)
        return {"file": EVALUATIONS_NAME, "count": self.count}

    def close(self) -> None:
        self._file.close()


def read_evaluations(folder: str | Path, count: int) -> list[dict[str, Any]]:
    """The first ``count`` evaluations of a session's log; ValueError if it has fewer."""
    p = Path(folder) / EVALUATIONS_NAME
    out: list[dict[str, Any]] = []
    if count:
        with open(p, encoding="utf-8") as f:
            for line in f:
                if len(out) == count:
                    break
                out.append(json.loads(line))
    if len(out) != count:
        raise ValueError(f"{p}: {len(out)} evaluations, the checkpoint needs {count}")
    return out


def engine_state(checkpoint: dict[str, Any], folder: str | Path) -> dict[str, Any]:
    """The checkpoint's engine state with its evaluations read back from the log (a checkpoint
    written before the log existed holds them inline)."""
    state = dict(checkpoint["engine"])
    ev = state.get("evaluations")
    if isinstance(ev, dict):
        state["evaluations"] = read_evaluations(folder, int(ev["count"]))
    return state
