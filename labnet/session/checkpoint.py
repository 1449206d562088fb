"""Checkpoints: everything needed to continue a run exactly where its last complete step ended.

A checkpoint is written after every *complete* step — the step's free and clamped states,
its update written to the digipots and, when one is due, its evaluation — as
``checkpoint.json`` in the session folder, replaced atomically (temp file, fsync,
``os.replace``). It holds (format 2):

* ``step``, ``attempt`` and ``engine``: the engine's state (its generator, the evaluations
  so far — in :data:`EVALUATIONS_NAME`, see :class:`EvaluationLog` —, codes, held pattern);
* ``csv_rows`` / ``csv_bytes``: how much of the CSV the step's rows fill (the CSV was
  fsynced before the checkpoint was written, so the file is at least that long);
* ``state``: the run's other stateful objects by role name (:mod:`labnet.core.state`):
  ``rig`` (the host record), ``drivers`` (``digipots``, ``meter``, ``sources``…) and, on a
  simulated rig, ``simulator`` (physical model and clock, fault plan, board and instrument
  emulators), so a resumed dry run draws the very same noise the uninterrupted run would have.

The session layer never imports a driver or the simulator: the application hands over the
*parts* (role name -> Stateful) and, before anything is built or opened, the *layout* the
rig file will give them (and the engine's class, whose ``STATE_SCHEMA`` the ``engine`` entry
must fit); :func:`check_checkpoint` refuses a checkpoint with a missing,
unknown or mistyped entry (:class:`ConfigError`, one line naming the file and the entry).

A checkpoint of format 1 (older labnet: the simulator's generators and clocks saved under
the private attribute paths an object walker found) is refused with a one-line message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labnet.core.errors import ConfigError
from labnet.core.state import Layout, Parts, collect, problem, restore_parts
from labnet.session.files import atomic_write_json, atomic_write_text, storage_error

CHECKPOINT_NAME = "checkpoint.json"
EVALUATIONS_NAME = "evaluations.jsonl"
RUN_NAME = "run.json"
FORMAT = 2

def checkpoint_layout(state: Layout, engine: Any) -> dict[str, Any]:
    """The whole layout of a checkpoint whose ``state`` has the roles of ``state`` and whose
    ``engine`` entry is the state of ``engine`` (a Stateful class: its ``STATE_SCHEMA``)."""
    return {"format": int, "step": int, "attempt": int, "engine": engine, "csv_rows": int, "csv_bytes": int,
            "state": state}


def run_state(parts: Parts) -> dict[str, Any]:
    """The ``state`` entry of a checkpoint: every part's ``state()`` by role name."""
    return collect(parts)


def check_checkpoint(checkpoint: Mapping[str, Any], state: Layout, engine: Any, file: str | Path) -> None:
    """Raise :class:`ConfigError` naming ``file`` and the first entry of ``checkpoint`` that is
    missing, unknown or of the wrong type for a run whose parts have the layout ``state`` and
    whose engine is of class ``engine``."""
    found = problem(dict(checkpoint), checkpoint_layout(state, engine))
    if found is not None:
        entry, why = found
        raise ConfigError(str(file), entry, f"{why}; this checkpoint does not fit the rig (cannot resume)")


def restore_run_state(parts: Parts, checkpoint: Mapping[str, Any]) -> None:
    """Restore every part from the checkpoint's ``state`` (checked with :func:`check_checkpoint`)."""
    restore_parts(parts, checkpoint["state"])


def write_checkpoint(folder: str | Path, data: dict[str, Any]) -> None:
    """Atomically replace the session's ``checkpoint.json``."""
    atomic_write_json(Path(folder) / CHECKPOINT_NAME, {"format": FORMAT, **data})


def read_checkpoint(folder: str | Path) -> dict[str, Any] | None:
    """The session's checkpoint, or None if the run never completed its first checkpoint."""
    p = Path(folder) / CHECKPOINT_NAME
    if not p.exists():
        return None
    data = json.loads(p.read_text(encoding="utf-8"))
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt == 1:
        raise ValueError(f"{p}: checkpoint format 1 was written by an older labnet (simulator state saved by "
                         "object path) and cannot be resumed by this version; start the run again")
    if fmt != FORMAT:
        raise ValueError(f"{p}: unsupported checkpoint format {fmt!r}")
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
            try:
                self._file.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in new)
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as exc:  # lines past the checkpoint's count are dropped on resume anyway
                raise storage_error(self.path, exc) from exc
            self.count = len(records)
        return {"file": EVALUATIONS_NAME, "count": self.count}

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:  # a full disk refused the buffer's rest: past the checkpoint, dropped on resume
            pass


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
