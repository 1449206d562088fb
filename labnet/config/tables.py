"""Calibration tables bound to their rig: written with the rig's identity, checked before use.

``labnet calibrate`` writes a ``binding`` header entry into ``calibration.csv``
(:func:`rig_binding` of the rig file, plus what is known only once the rig is open):

* checked on use — ``rig`` (the rig's name), ``kind`` (``simulator`` or ``bench``), the
  part (``part``, ``r_ab_ohm``, ``positions``), the network's ``edges`` and
  ``edge_channels`` (which digipot channel each edge is), and on a simulated rig the
  ``simulator`` keys that fix the simulated parts (seed, tolerance, wiper spread, INL);
* recorded — ``rig_file`` (the rig file's name) and ``board`` (the digipot board's identity
  from its ready line: model, firmware, family, channels).

:func:`load_bound_table` reads a table for a rig file (training ``[calibration] table``,
a probe protocol's, a resumed session's copy) and refuses, with one line naming the table
file and the binding entry, a table of another rig — or a damaged one
(:meth:`CalibrationTable.from_csv`) — before anything is built or opened.

**Tables without a binding** (written before tables were bound) are refused with a line
saying how to re-calibrate: nothing in them says which rig's parts they describe, and the
limit checks trust the table's conductances — another rig's table made a 20 V probe drive
291 % of an edge's rated current (issue 13). Re-calibrating takes minutes; a wrong table
can burn a part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labnet.config.rigfile import RigSpec
from labnet.core.errors import ConfigError
from labnet.core.nonideal import SimSettings
from labnet.experiments.calibration.table import HASH_KEY, CalibrationTable
from labnet.session.files import header_json

#: header entry of a table's binding
BINDING_KEY = "binding"
#: [simulator] keys that fix the simulated parts (their draw), bound for simulated rigs
SIM_PART_KEYS = ("seed", "tolerance", "wiper_spread", "inl_taps")


def rig_binding(spec: RigSpec, sim_seed: int | None = None) -> dict[str, Any]:
    """The entries of a table's binding that must match the rig file ``spec`` it is used with
    (``sim_seed``: the protocol's seed, which draws a simulated rig's parts when its
    ``[simulator]`` table has no ``seed``, as :func:`labnet.app.build.build_rig` does)."""
    b: dict[str, Any] = {
        "rig": spec.name,
        "kind": "simulator" if spec.simulated else "bench",
        "part": spec.part.name,
        "r_ab_ohm": float(spec.part.r_ab_ohm),
        "positions": int(spec.part.positions),
        "edges": [list(e) for e in spec.network.edges],
        "edge_channels": [int(c) for c in spec.network.edge_channels],
    }
    if spec.simulated:
        given = {k: v for k, v in spec.sim.items() if k in SimSettings.__dataclass_fields__}
        if "seed" not in given and sim_seed is not None:
            given["seed"] = sim_seed
        sim = SimSettings(**given)
        b["simulator"] = {k: getattr(sim, k) for k in SIM_PART_KEYS}
    return b


def table_binding(spec: RigSpec, board: Any = None, sim_seed: int | None = None) -> dict[str, Any]:
    """The whole binding ``labnet calibrate`` writes: :func:`rig_binding` plus the rig file's
    name and the board's identity (``board``: its ``identity()``, None when unknown)."""
    return {**rig_binding(spec, sim_seed), "rig_file": spec.path.name, "board": board}


def binding_problem(binding: Any, spec: RigSpec, sim_seed: int | None = None) -> tuple[str, str] | None:
    """(entry, what differs) for the first bound entry that does not match ``spec``, or None."""
    if not isinstance(binding, dict):
        return BINDING_KEY, f"expected an object, got {type(binding).__name__}"
    want = rig_binding(spec, sim_seed)
    for key, value in want.items():
        have = binding.get(key)
        if header_json(have) != header_json(value):
            return (f"{BINDING_KEY}.{key}", f"the table was calibrated with {key} = {_short(have)}, "
                    f"the rig file {spec.path.name} has {_short(value)} (another rig's table)")
    return None


def _short(v: Any) -> str:
    s = header_json(v)
    return s if len(s) <= 60 else s[:57] + "..."


def load_bound_table(path: str | Path, spec: RigSpec, sim_seed: int | None = None) -> CalibrationTable:
    """Read the table at ``path`` for the rig file ``spec``: undamaged, of ``spec``'s network
    and part, bound to ``spec`` (:class:`ConfigError` naming the table file otherwise)."""
    p = Path(path)
    table = CalibrationTable.from_csv(p, spec.network.n_edges, spec.part.positions)
    if BINDING_KEY not in table.meta:
        raise ConfigError(str(p), BINDING_KEY, "missing: the table does not say which rig it was measured on "
                          f"(written before tables were bound); re-calibrate with `labnet calibrate {spec.path}`")
    if HASH_KEY not in table.meta:
        raise ConfigError(str(p), HASH_KEY, "missing: a bound table carries the hash of its contents; "
                          f"re-calibrate with `labnet calibrate {spec.path}`")
    found = binding_problem(table.meta[BINDING_KEY], spec, sim_seed)
    if found is not None:
        raise ConfigError(str(p), *found)
    return table


__all__ = ["BINDING_KEY", "SIM_PART_KEYS", "binding_problem", "load_bound_table", "rig_binding", "table_binding"]
