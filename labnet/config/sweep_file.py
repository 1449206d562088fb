"""Sweep files (``labnet sweep SWEEP.toml``): a base point and the axes to vary, validated whole.

::

    [sweep]
    name = "small"
    seed = 0            # every point's draws: default_rng([seed, point's seed])
    chunk = 20          # points per Dask task

    [base]              # any labnet.insilico.effects.PointSpec field (except sweep_seed)
    nodes = 30
    edges = 60
    demand = 0.9

    [[axis]]            # exactly one of: grid, zip, seeds, random
    grid = { demand = [0.3, 0.6, 0.9] }
    [[axis]]
    zip = { inputs = ["voltage", "force"], alpha = [5e-3, 1e-5] }
    [[axis]]
    seeds = 24          # seed = 0..23 (or a list of seeds)
    [[axis]]
    random = { param = "eta", low = 0.2, high = 1.0, n = 4, log = false }

The points are the Cartesian product of the axes, first axis slowest; point ``i`` is the
``i``-th of that product. Every error is one ``file: key: problem`` line (:class:`ConfigError`,
CLI exit 2), and every point is checked before anything runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labnet.config.schema import Table, quiet, read_toml
from labnet.core.errors import ConfigError
from labnet.core.network import check_name
from labnet.core.parts import CATALOG
from labnet.core.rules import RULE_FORMULAS
from labnet.insilico.effects import INPUTS, NETWORKS, RULES, PointSpec
from labnet.insilico.ep import EP_FORMULA

# field -> (kind, lo, hi, choices); lo/hi inclusive
_FIELDS: dict[str, tuple[str, float | None, float | None, tuple[str, ...] | None]] = {
    "network": ("str", None, None, NETWORKS),
    "nodes": ("int", 4, 100_000, None),
    "edges": ("int", 3, 10_000_000, None),
    "rows": ("int", 2, 10_000, None),
    "cols": ("int", 2, 10_000, None),
    "n_inputs": ("int", 1, 64, None),
    "inputs": ("str", None, None, INPUTS),
    "demand": ("float", 0.0, 10.0, None),
    "alpha": ("float", 0.0, None, None),
    "eta": ("float", 1e-9, 1.0, None),
    "steps": ("int", 0, 10_000_000, None),
    "block": ("int", 1, 1_000_000, None),
    "tol": ("float", 0.0, None, None),
    "k_min_siemens": ("float", 1e-12, None, None),
    "k_max_siemens": ("float", 1e-12, None, None),
    "k0_min_siemens": ("float", 1e-12, None, None),
    "k0_max_siemens": ("float", 1e-12, None, None),
    "force_a": ("float", 1e-15, None, None),
    "part": ("str", None, None, ("", *sorted(CATALOG))),
    "rule": ("str", None, None, RULES),
    "tolerance": ("float", 0.0, 0.99, None),
    "deadband_siemens": ("float", 0.0, None, None),
    "max_taps": ("int", 1, 1_000_000, None),
    "update_probability": ("float", 0.0, 1.0, None),
    "formula": ("str", None, None, (*RULE_FORMULAS, EP_FORMULA)),
    "power_lambda": ("float", 0.0, 1.0, None),
    "beta_siemens": ("float", 0.0, None, None),
    "n_tasks": ("int", 1, 10_000, None),
    "seed": ("int", 0, 2**63 - 1, None),
}


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: its points in order, what varies, and where it came from."""

    file: str
    text: str
    name: str
    seed: int
    chunk: int
    varied: tuple[str, ...]
    points: tuple[PointSpec, ...]

    @property
    def key(self) -> str:
        """SHA-256 of the points and the chunk size (canonical JSON): the identity a resumed sweep must match."""
        blob = json.dumps({"chunk": self.chunk, "points": [dataclasses.asdict(p) for p in self.points]},
                          sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def chunks(self) -> list[range]:
        """Point indices of each task, in order (fixed by the sweep file alone)."""
        n = len(self.points)
        return [range(i, min(i + self.chunk, n)) for i in range(0, n, self.chunk)]


def _value(file: str, key: str, name: str, v: Any) -> Any:
    if name not in _FIELDS:
        raise ConfigError(file, key, f"unknown parameter {name!r} (known: {', '.join(sorted(_FIELDS))})")
    kind, lo, hi, choices = _FIELDS[name]
    prefix, leaf = key.rsplit(".", 1) if "." in key else ("", key)
    with quiet():  # the key reference lists base.<name> (declared in load_sweep), not each value
        return _checked(Table({leaf: v}, file, prefix), leaf, kind, lo, hi, choices)


def _checked(t: Table, leaf: str, kind: str, lo: float | None, hi: float | None, choices: tuple[str, ...] | None) -> Any:
    if kind == "str":
        return t.str(leaf, choices=choices)
    if kind == "int":
        return t.int(leaf, lo=None if lo is None else int(lo), hi=None if hi is None else int(hi))
    return t.float(leaf, lo=lo, hi=hi)


def _axis(t: Table, file: str, sweep_seed: int, index: int) -> list[dict[str, Any]]:
    kinds = [k for k in ("grid", "zip", "seeds", "random") if t.has(k)]
    if len(kinds) != 1:
        raise ConfigError(file, t.prefix, f"an axis needs exactly one of grid, zip, seeds, random; got {kinds or 'none'}")
    kind = kinds[0]
    if kind == "seeds":
        v = t.raw("seeds")
        if isinstance(v, int) and not isinstance(v, bool):
            if v < 1:
                raise t.error("seeds", f"expected at least 1 seed, got {v}")
            values: list[Any] = list(range(v))
        elif isinstance(v, list) and v:
            values = [_value(file, t.key(f"seeds[{i}]"), "seed", s) for i, s in enumerate(v)]
        else:
            raise t.error("seeds", f"expected a count or a non-empty list of seeds, got {v!r}"[:120])
        t.finish()
        return [{"seed": s} for s in values]
    sub = t.table(kind)
    if kind == "random":
        name = sub.str("param")
        if name not in _FIELDS or _FIELDS[name][0] != "float":
            raise sub.error("param", f"random draws need a float parameter, got {name!r}")
        lo, hi = sub.float("low"), sub.float("high")
        n = sub.int("n", lo=1)
        log = sub.bool("log", False)
        sub.finish()
        if hi < lo or (log and lo <= 0):
            raise sub.error("high", f"need low <= high{' and low > 0 for log' if log else ''}, got {lo}, {hi}")
        rng = np.random.default_rng([sweep_seed, 7919, index])
        draws = np.exp(rng.uniform(np.log(lo), np.log(hi), n)) if log else rng.uniform(lo, hi, n)
        t.finish()
        return [{name: _value(file, sub.key(name), name, float(d))} for d in draws]
    lists: dict[str, list[Any]] = {}
    sub.declare("<parameter>", "list of values")  # any base parameter (key reference)
    for name in list(sub.data):
        with quiet():
            v = sub.raw(name)
        if name not in _FIELDS:
            _value(file, sub.key(name), name, v)  # raises: unknown parameter
        if not isinstance(v, list) or not v:
            raise sub.error(name, f"expected a non-empty list of values, got {v!r}"[:120])
        lists[name] = [_value(file, sub.key(f"{name}[{i}]"), name, x) for i, x in enumerate(v)]
    if not lists:
        raise t.error(kind, "expected at least one parameter")
    if kind == "grid" and len(lists) != 1:
        raise t.error(kind, f"a grid axis varies one parameter (use zip for several), got {sorted(lists)}")
    lengths = {len(v) for v in lists.values()}
    if len(lengths) != 1:
        raise t.error(kind, f"zipped lists need equal lengths, got {dict((k, len(v)) for k, v in lists.items())}")
    t.finish()
    return [dict(zip(lists, vals)) for vals in zip(*lists.values())]


def _check_point(file: str, i: int, p: PointSpec) -> None:
    where = f"point {i} ({p.network}, nodes {p.nodes}, edges {p.edges})"
    if p.network == "random" and not p.nodes - 1 <= p.edges <= p.nodes * (p.nodes - 1) // 2:
        raise ConfigError(file, "base.edges", f"{where}: a connected graph on {p.nodes} nodes has "
                          f"{p.nodes - 1}..{p.nodes * (p.nodes - 1) // 2} edges")
    size = p.rows * p.cols if p.network == "lattice" else p.nodes
    if p.n_inputs + p.n_tasks + 1 > size:
        raise ConfigError(file, "base.n_tasks" if p.n_tasks > 1 else "base.n_inputs",
                          f"{where}: {p.n_inputs} inputs + {p.n_tasks} output(s) + ground exceed {size} nodes")
    if p.n_tasks > 1 and (p.inputs != "voltage" or p.part):
        raise ConfigError(file, "base.n_tasks", f"point {i}: n_tasks > 1 (one target per output node) is supported "
                          f"with voltage inputs and the continuous rule, got inputs {p.inputs!r}, part {p.part!r}")
    if (p.rule != "continuous") != bool(p.part):
        raise ConfigError(file, "base.rule", f"point {i}: tap rules ({', '.join(RULES[1:])}) need a part and a part "
                          f"needs one of them, got rule {p.rule!r}, part {p.part!r}")
    if not 0.0 < p.update_probability <= 1.0 or (p.update_probability < 1.0 and not p.part):
        raise ConfigError(file, "base.update_probability", f"point {i}: expected 0 < update_probability <= 1, "
                          f"below 1 only with a tap rule (a part), got {p.update_probability!r}, part {p.part!r}")
    if p.formula == EP_FORMULA or p.beta_siemens:
        _check_ep(file, i, p)
    elif (p.formula != "coupled" and not p.part) or (p.power_lambda and p.formula != "power_efficient"):
        raise ConfigError(file, "base.formula" if p.formula != "coupled" else "base.power_lambda",
                          f"point {i}: formula = \"power_efficient\" needs a tap rule (a part) and power_lambda only "
                          f"applies to it, got formula {p.formula!r}, power_lambda {p.power_lambda!r}, part {p.part!r}")
    if p.part and p.inputs == "force":
        raise ConfigError(file, "base.part", f"point {i}: tap-quantised parts are supported with voltage inputs only")
    if not p.k_min_siemens <= p.k0_min_siemens <= p.k0_max_siemens <= p.k_max_siemens:
        raise ConfigError(file, "base.k0_min_siemens",
                          f"point {i}: need k_min_siemens <= k0_min_siemens <= k0_max_siemens <= k_max_siemens")


def _check_ep(file: str, i: int, p: PointSpec) -> None:
    """Equilibrium propagation (:mod:`labnet.insilico.ep`): a finite nudge beta_siemens > 0, voltage inputs, one target."""
    if p.formula != EP_FORMULA or not p.beta_siemens > 0.0:
        raise ConfigError(file, "base.beta_siemens", f"point {i}: formula = \"ep\" needs beta_siemens > 0 (S, finite) and "
                          f"beta_siemens only applies to it, got formula {p.formula!r}, beta_siemens {p.beta_siemens!r}")
    if p.inputs != "voltage" or p.n_tasks != 1 or p.power_lambda:
        raise ConfigError(file, "base.formula", f"point {i}: formula = \"ep\" runs with voltage inputs, one target and "
                          f"no power_lambda, got inputs {p.inputs!r}, n_tasks {p.n_tasks}, power_lambda {p.power_lambda!r}")


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file completely (every point); nothing is computed."""
    file = str(path)
    data = read_toml(path)
    top = Table(data, file)
    head = top.table("sweep")
    name = head.str("name", Path(file).stem)
    if head.has("name"):  # it names the default sweep folder
        check_name(name, file, "sweep.name", "sweep name")
    seed = head.int("seed", 0, lo=0)
    chunk = head.int("chunk", 20, lo=1, hi=100_000)
    head.finish()
    base_t = top.table("base", required=False)
    base: dict[str, Any] = {}
    defaults = PointSpec()
    for k, (kind, lo, hi, choices) in _FIELDS.items():  # every parameter, for the key reference
        base_t.declare(k, {"str": "string", "int": "integer", "float": "number"}[kind], getattr(defaults, k),
                       lo=lo, hi=hi, choices=choices)
    for k in list(base_t.data):
        with quiet():
            base_t.raw(k)
        base[k] = _value(file, base_t.key(k), k, base_t.data[k])
    axes_raw = top.raw("axis", [])
    if not isinstance(axes_raw, list) or not all(isinstance(a, Mapping) for a in axes_raw):
        raise top.error("axis", "expected [[axis]] tables")
    top.finish()
    axes = [_axis(Table(a, file, f"axis[{i}]"), file, seed, i) for i, a in enumerate(axes_raw)]
    varied: list[str] = []
    for ax in axes:
        for k in ax[0]:
            if k in varied:
                raise ConfigError(file, "axis", f"parameter {k!r} is varied by two axes")
            varied.append(k)
    points = []
    for i, combo in enumerate(itertools.product(*axes)):
        values = dict(base)
        for part in combo:
            values.update(part)
        p = PointSpec(**values, sweep_seed=seed)
        _check_point(file, i, p)
        points.append(p)
    return Sweep(file=file, text=Path(path).read_text(encoding="utf-8"), name=name, seed=seed, chunk=chunk,
                 varied=tuple(varied), points=tuple(points))


__all__ = ["Sweep", "load_sweep"]
