"""A session folder checked like a user file before a resume opens anything.

``labnet resume`` trusts nothing in the folder it continues: every file a resume reads is
checked here first, and any problem is one :class:`ConfigError` line naming the file, the
entry and what is wrong (CLI exit 2), raised before a rig is built or a port opened.

* **No links.** No entry of the folder may be a symbolic link (a resume appends to
  ``session.csv`` and ``events.jsonl``: through a link it would write into the target).
* **status.json / run.json** are JSON objects with the expected types.
* **checkpoint.json** values, beyond the layout :func:`labnet.session.checkpoint.check_checkpoint`
  checks: the step within the run, counts and extents non-negative, every number finite,
  every code vector of the network's length and within the part's taps (the host record
  and the engine's within the rig's code limits), every held pattern on nodes with a
  source and within the source limit, every generator state one numpy accepts.
* **evaluations.jsonl** holds at least the checkpoint's count of evaluations, each a JSON
  object ``{"step": int, "train": {name: number}, "test": {name: number}}``.
* **session.csv against the checkpoint**: the file is at least ``csv_bytes`` long, those
  bytes end at a line end and hold exactly ``csv_rows`` data rows; its header block is a
  labnet session's and records the same rig (network, part, limits, name) and protocol
  entries the resume will use, and its column row is the columns it will append. A
  checkpoint without its CSV is refused (the rows are gone); without both the run starts over.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labnet.bench.limits import Limits
from labnet.core.errors import ConfigError
from labnet.core.network import Network
from labnet.session.checkpoint import EVALUATIONS_NAME
from labnet.session.files import CSV_NAME, header_json
from labnet.session.writer import csv_line

STATUSES = ("running", "completed", "stopped", "failed")
#: keys of a checkpoint's tree whose values are sources' voltages (node or channel -> V)
_PATTERNS = ("held", "driven")


def check_no_links(folder: Path) -> None:
    """Refuse a session folder with a symbolic link in it (a resume would write through it)."""
    for entry in sorted(folder.iterdir()):
        if entry.is_symlink():
            raise ConfigError(str(entry), "-", f"is a symbolic link (to {entry.readlink()}); session files must be "
                              "regular files in the folder (a resume appends to them and would write into the "
                              "link's target)")


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ConfigError if it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(str(path), "-", f"unreadable, not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "-", f"expected a JSON object, got {type(data).__name__}")
    return data


def checked_status(path: Path) -> dict[str, Any] | None:
    """``status.json`` (``path``) with ``status`` one of :data:`STATUSES` and ``pid`` an
    integer, or None if there is none."""
    if not path.exists():
        return None
    st = read_json_object(path)
    if st.get("status") not in STATUSES:
        raise ConfigError(str(path), "status", f"expected one of {', '.join(STATUSES)}, got {st.get('status')!r}")
    pid = st.get("pid", 0)
    if not isinstance(pid, int) or isinstance(pid, bool) or pid < 0:
        raise ConfigError(str(path), "pid", f"expected a process id (integer >= 0), got {pid!r}")
    return st


def _fail(file: str, entry: str, why: str) -> ConfigError:
    return ConfigError(file, entry, f"{why} (cannot resume)")


def check_generator(state: Any, file: str, entry: str) -> None:
    """Refuse a generator state numpy would not take (``bit_generator.state = state``)."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    cls = getattr(np.random, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, np.random.BitGenerator)):
        raise _fail(file, entry, f"not a numpy generator state (bit_generator {name!r})")
    try:
        cls().state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise _fail(file, entry, f"not a valid {name} state ({exc})") from None


def _walk(tree: Any, path: str) -> Any:
    """(path, value) of every leaf and dict of ``tree``, depth first."""
    yield path, tree
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _walk(v, f"{path}[{i}]")


def _check_codes(codes: Any, file: str, entry: str, n: int, lo: int, hi: int) -> None:
    if not isinstance(codes, list) or len(codes) != n:
        got = len(codes) if isinstance(codes, list) else type(codes).__name__
        raise _fail(file, entry, f"expected {n} codes (one per edge), got {got}")
    for j, c in enumerate(codes):
        if not isinstance(c, int) or isinstance(c, bool) or not lo <= c <= hi:
            raise _fail(file, f"{entry}[{j}]", f"expected an integer code {lo}..{hi}, got {c!r}")


def _check_pattern(pattern: Any, file: str, entry: str, limit: Mapping[str, float], *, bounded: bool = True,
                   amps: frozenset[str] = frozenset()) -> None:
    """A node (or channel) -> V pattern (A at the nodes in ``amps``, current-driven): known keys,
    finite values, within ``limit`` if ``bounded``."""
    if not isinstance(pattern, dict):
        raise _fail(file, entry, f"expected an object, got {type(pattern).__name__}")
    for where, v in pattern.items():
        if where not in limit:
            raise _fail(file, f"{entry}.{where}", f"no source drives {where!r} on this rig")
        unit, what = ("A", "a current") if where in amps else ("V", "a voltage")
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise _fail(file, f"{entry}.{where}", f"expected {what} ({unit}), got {v!r}")
        if bounded and abs(v) > limit[where] * (1 + 1e-9) + 1e-12:
            raise _fail(file, f"{entry}.{where}", f"{v} {unit} exceeds the {limit[where]:g} {unit} source limit")


def check_checkpoint_values(ck: Mapping[str, Any], file: str | Path, *, steps: int, network: Network,
                            limits: Limits, taps: int, currents: Mapping[str, float] | None = None) -> None:
    """Refuse a checkpoint (whose layout already fits) with values the run cannot continue
    from; ``steps``: the run's length, ``taps``: the part's positions, ``currents``: node -> the
    largest current (A) of each current-driven node."""
    f = str(file)
    step = ck["step"]
    if not 0 <= step <= steps:
        raise _fail(f, "step", f"expected 0..{steps} (the run's steps), got {step}")
    if ck["engine"]["step"] != step:
        raise _fail(f, "engine.step", f"expected {step} (the checkpoint's step), got {ck['engine']['step']}")
    for key in ("attempt", "csv_rows", "csv_bytes"):
        if ck[key] < 0:
            raise _fail(f, key, f"expected >= 0, got {ck[key]}")
    _check_keep_records(ck["engine"], f)
    by_node = {n: limits.channel_limit(ch) for n, ch in network.source_channels.items()} | dict(currents or {})
    amps = frozenset(currents or {})
    by_channel = {ch: limits.channel_limit(ch) for ch in network.source_channels.values()}
    for path, v in _walk(dict(ck), ""):
        if isinstance(v, float) and not math.isfinite(v):
            raise _fail(f, path, f"expected a finite number, got {v}")
        parent, _, last = path.rpartition(".")
        if last == "rng" or parent == "engine.sink_rngs":
            check_generator(v, f, path)
        elif last == "codes" and v is not None:
            host = path in ("engine.codes", "state.rig.codes", "engine.best.codes", "engine.kept.codes")
            _check_codes(v, f, path, network.n_edges, limits.code_min if host else 0,
                         limits.code_max if host else taps - 1)
        elif last in _PATTERNS:
            # ``driven``: the simulator's outputs (setpoints through its source errors): no bound
            _check_pattern(v, f, path, by_channel if last == "driven" else by_node, bounded=last == "held", amps=amps)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0 and path.startswith("state.") \
                and parent.rpartition(".")[2] not in _PATTERNS:  # a pattern's setpoint may be negative
            raise _fail(f, path, f"expected >= 0 (a count or a time), got {v}")


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_keep_records(engine: Mapping[str, Any], f: str) -> None:
    """``engine.best`` (``{"step", "mse", "codes"}``) and ``engine.kept`` (:meth:`Kept.record`), when present."""
    best = engine.get("best")
    if best is not None and not (isinstance(best.get("step"), int) and not isinstance(best["step"], bool)
                                 and _number(best.get("mse")) and "codes" in best):
        raise _fail(f, "engine.best", 'expected {"step": int, "mse": number, "codes": [...]}')
    kept = engine.get("kept")
    if kept is not None:
        ints = all(isinstance(kept.get(k), int) and not isinstance(kept[k], bool) for k in ("from_step", "final_step"))
        nums = all(_number(kept.get(k)) for k in ("best_train_mse", "final_train_mse"))
        rem = kept.get("remeasured")
        if not (ints and nums and "codes" in kept and isinstance(rem, dict)
                and _evaluation_ok({"step": 0, **{k: rem.get(k) for k in ("train", "test")}})):
            raise _fail(f, "engine.kept", "expected the kept record (from_step, best_train_mse, final_step, "
                        "final_train_mse, codes, remeasured {train, test})")


def _evaluation_ok(rec: Any) -> bool:
    """``rec`` is ``{"step": int, "train": {name: number}, "test": {name: number}, ...}``."""
    return (isinstance(rec, dict) and isinstance(rec.get("step"), int) and not isinstance(rec["step"], bool)
            and all(isinstance(rec.get(k), dict) and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in rec[k].values())
                for k in ("train", "test")))


_EVAL_SHAPE = 'expected {"step": int, "train": {name: number}, "test": {name: number}}'


def check_evaluations(folder: Path, ck: Mapping[str, Any], file: str | Path) -> None:
    """Refuse the checkpoint's evaluations (``engine.evaluations``: a reference into
    ``evaluations.jsonl`` or, in older checkpoints, the list) unless every one is well formed
    and the log holds at least the count it names."""
    ref = ck["engine"]["evaluations"]
    if isinstance(ref, list):
        for i, rec in enumerate(ref):
            if not _evaluation_ok(rec):
                raise _fail(str(file), f"engine.evaluations[{i}]", _EVAL_SHAPE)
        return
    count = ref.get("count")
    if ref.get("file") != EVALUATIONS_NAME or not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise _fail(str(file), "engine.evaluations", f'expected {{"file": "{EVALUATIONS_NAME}", "count": n >= 0}}, '
                    f"got {header_json(ref)[:80]}")
    path = folder / EVALUATIONS_NAME
    f = str(path)
    if count and not path.is_file():
        raise _fail(f, "-", f"missing; the checkpoint needs {count} evaluations")
    n = 0
    if count:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    rec = json.loads(line)
                except ValueError:
                    raise _fail(f, f"line {n}", "not JSON") from None
                if not _evaluation_ok(rec):
                    raise _fail(f, f"line {n}", _EVAL_SHAPE)
                if n == count:
                    break
    if n < count:
        raise _fail(f, "-", f"{n} evaluations, the checkpoint needs {count} (lines deleted after the checkpoint)")


def check_csv(folder: Path, ck: Mapping[str, Any] | None, columns: Sequence[str],
              header: Mapping[str, Any]) -> bool:
    """Check ``session.csv`` against the checkpoint ``ck`` (or None); return whether it exists.

    ``columns``: the column row the resume will append under; ``header``: the header entries
    (dotted paths, e.g. ``rig.name``) and the values the resume's protocol and rig give them.
    """
    p = folder / CSV_NAME
    f = str(p)
    if not p.exists():
        if ck is not None:
            raise _fail(f, "-", f"missing, but checkpoint.json records {ck['csv_rows']} rows up to step {ck['step']}")
        return False
    if not p.is_file():
        raise _fail(f, "-", "not a regular file")
    size = p.stat().st_size
    rows, extent = (0, 0) if ck is None else (int(ck["csv_rows"]), int(ck["csv_bytes"]))
    if size < extent:
        raise _fail(f, "-", f"{size} bytes, but checkpoint.json (step {ck['step'] if ck else '-'}) records "
                    f"{extent} bytes: rows were deleted or the file truncated")
    _check_header(p, columns, header)
    if ck is None:
        return True
    found, last = -1, b"\n"  # the column row is no data row
    with open(p, "rb") as fh:
        left = extent
        for ln in fh:
            if left <= 0:
                break
            ln = ln[:left]
            left -= len(ln)
            last = ln
            if not ln.startswith(b"#") and ln.strip():
                found += 1
    if extent and not last.endswith(b"\n"):
        raise _fail(f, "-", f"the checkpoint's extent ({extent} bytes) does not end at a line end: the file "
                    "was changed before it")
    if found != rows:
        raise _fail(f, "-", f"{max(found, 0)} data rows in the first {extent} bytes, checkpoint.json records "
                    f"{rows}: rows were changed before the checkpoint")
    return True


def _check_header(p: Path, columns: Sequence[str], header: Mapping[str, Any]) -> None:
    f = str(p)
    found: dict[str, Any] = {}
    col_row = None
    with open(p, encoding="utf-8", errors="replace", newline="") as fh:
        first = fh.readline()
        if first != "# labnet_session: 1\n":
            raise _fail(f, "-", "does not start with '# labnet_session: 1' (not a labnet session CSV)")
        for ln in fh:
            if not ln.startswith("#"):
                col_row = ln
                break
            key, _, val = ln[1:].strip().partition(": ")
            try:
                found[key] = json.loads(val)
            except ValueError:
                raise _fail(f, f"header {key}", "not JSON") from None
    for dotted, want in header.items():
        have: Any = found
        for part in dotted.split("."):
            have = have.get(part) if isinstance(have, dict) else None
        if have != json.loads(header_json(want)):
            raise _fail(f, f"header {dotted}", f"recorded {header_json(have)[:80]}, but the session's files give "
                        f"{header_json(want)[:80]} (not the same rig/protocol)")
    if col_row is not None and col_row != csv_line(columns):
        raise _fail(f, "columns", "the column row is not the one this rig's runs write")


__all__ = ["STATUSES", "check_csv", "check_evaluations", "check_checkpoint_values", "check_generator",
           "check_no_links", "checked_status", "read_json_object"]
