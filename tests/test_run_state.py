"""Explicit run state: every stateful object of a run is covered by some ``state()``.

The object walker that once *was* the checkpoint format lives on only here, as a check: it
walks the rig's instruments and the simulated bench behind them (objects of the
``simulator`` and ``drivers`` packages, through attributes, lists, tuples and dicts) and
finds every ``numpy.random.Generator`` and every virtual clock. Each one found is then
disturbed, and restoring the state collected from the rig's parts (by role name) must put
every one of them back — so a generator or clock that no ``state()`` carries fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labnet.app.build import build_rig, dry_run_spec
from labnet.app.rigstate import expected_layout, sim_model, state_parts
from labnet.app.runner import run_protocol
from labnet.config.protocol import load_protocol
from labnet.config.rigfile import load_rig
from labnet.core.state import Stateful, collect, layout_of, problem, restore_parts
from labnet.experiments.engine import Engine
from labnet.session.checkpoint import check_checkpoint, read_checkpoint

ROOT = Path(__file__).resolve().parent.parent
RIGS = sorted((ROOT / "protocols" / "rigs").glob("*.toml"))

_PACKAGES = ("simulator", "drivers")
_LEAVES = (str, bytes, bytearray, int, float, bool, complex, type(None), np.ndarray, np.generic, frozenset, set)


def _is_clock(obj: Any) -> bool:
    return (type(obj).__module__.split(".")[0] in _PACKAGES and isinstance(getattr(obj, "t", None), float)
            and callable(getattr(obj, "charge", None)))


def walk_state(rig: Any) -> dict[str, Any]:
    """Every generator and virtual clock reachable from the rig's roles (and so from the
    simulated bench behind them), by the first path it was found under."""
    roots = {"digipots": rig.digipots, "sources": rig.sources, "meter": rig.meter, "clock": rig.clock}
    found: dict[str, Any] = {}
    seen: set[int] = set()
    stack = [(obj, name, 0) for name, obj in reversed(list(roots.items()))]
    while stack:
        obj, path, depth = stack.pop()
        if id(obj) in seen or depth > 8 or isinstance(obj, _LEAVES) or callable(obj) and not hasattr(obj, "__dict__"):
            continue
        seen.add(id(obj))
        if isinstance(obj, np.random.Generator) or _is_clock(obj):
            found.setdefault(path, obj)
            continue
        if isinstance(obj, dict):
            children = [(obj[k], f"{path}[{k!r}]") for k in sorted(obj, key=str)]
        elif isinstance(obj, (list, tuple)):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        elif type(obj).__module__.split(".")[0] in _PACKAGES and isinstance(getattr(obj, "__dict__", None), dict):
            children = [(v, f"{path}.{k}") for k, v in sorted(vars(obj).items())]
        else:
            continue
        stack.extend((c, p, depth + 1) for c, p in reversed(children))
    return found


def _snapshot(found: dict[str, Any]) -> dict[str, Any]:
    return {p: json.dumps(o.bit_generator.state if isinstance(o, np.random.Generator) else o.t, sort_keys=True,
                          default=str) for p, o in found.items()}


def assert_state_covers_everything(rig: Any) -> dict[str, Any]:
    """Disturb every generator and clock the walker finds; restoring the parts' state must
    undo every change. Returns what the walker found."""
    parts = state_parts(rig)
    found = walk_state(rig)
    assert found, "the walker found nothing: it no longer sees the simulator"
    saved = json.loads(json.dumps(collect(parts)))  # what a checkpoint holds
    before = _snapshot(found)
    for obj in found.values():
        if isinstance(obj, np.random.Generator):
            obj.random(3)
        else:
            obj.charge(1.5)
    assert _snapshot(found) != before
    restore_parts(parts, saved)
    after = _snapshot(found)
    missed = sorted(p for p in found if after[p] != before[p])
    assert not missed, f"not covered by any state(): {missed}"
    return found


def _protocol(tmp_path: Path, rig: Path, steps: int = 3) -> Any:
    f = tmp_path / "p.toml"
    f.write_text(f"""
[protocol]
name = "state"
rig = "{rig}"
seed = 3

[task]
kind = "allostery"
inputs_v = [1.0, 0.3]
targets_v = [0.25, 0.15]

[rule]
kind = "sign"
eta = 0.5
alpha = 1e-3
deadband_siemens = 1e-7

[train]
steps = {steps}
eval_every = 1
settle_s = 0.001
""")
    return load_protocol(f)


@pytest.mark.parametrize("rig_name", ["sim16.toml", "sim16-direct.toml"])
def test_every_generator_and_clock_is_in_some_state(rig_name: str, tmp_path: Path) -> None:
    out = run_protocol(_protocol(tmp_path, ROOT / "protocols" / "rigs" / rig_name), session_dir=tmp_path / "s",
                       progress=False)
    found = assert_state_covers_everything(out.rig)
    assert any(isinstance(o, np.random.Generator) for o in found.values())
    assert any(_is_clock(o) for o in found.values())


@pytest.mark.parametrize("rig_file", RIGS, ids=[p.stem for p in RIGS])
def test_expected_layout_is_what_the_built_rig_has(rig_file: Path) -> None:
    """What a rig file says before anything is built equals what the built rig's parts are."""
    spec = dry_run_spec(load_rig(rig_file))
    rig = build_rig(spec, sim_seed=1)
    parts = state_parts(rig)
    assert expected_layout(spec) == layout_of(parts)
    tree = json.loads(json.dumps(collect(parts)))  # JSON-serialisable
    assert problem(tree, expected_layout(spec)) is None
    leaves: list[Any] = []

    def gather(p: Any) -> None:
        for v in p.values():
            gather(v) if isinstance(v, dict) else leaves.append(v)

    gather(parts)
    assert leaves and all(isinstance(x, Stateful) for x in leaves)


def test_checkpoint_state_by_role_and_validation(tmp_path: Path) -> None:
    out = run_protocol(_protocol(tmp_path, ROOT / "protocols" / "rigs" / "sim16.toml"), session_dir=tmp_path / "s",
                       progress=False)
    ck = read_checkpoint(out.session)
    assert ck is not None and ck["format"] == 2
    st = ck["state"]
    assert set(st) == {"rig", "drivers", "simulator"}
    assert set(st["drivers"]) == {"digipots", "meter", "sources"}
    assert set(st["simulator"]) == {"model", "faults", "board", "instruments"}
    from simulator.bench import get_bench

    now = get_bench(out.rig.extra["sim_bench"]).faults.counts()  # the safe state and closing came after
    saved = st["simulator"]["faults"]["counts"]
    assert set(saved) == set(now) and all(0 < saved[k] <= now[k] for k in ("drop", "reset", "scpi_error"))
    assert st["simulator"]["model"]["codes"] == [int(c) for c in sim_model(out.rig).codes]
    assert all(isinstance(n, int) for n in st["simulator"]["faults"]["counts"].values())
    assert st["rig"]["codes"] == ck["engine"]["codes"]
    layout = layout_of(state_parts(out.rig))
    check_checkpoint(ck, layout, Engine, "ck.json")  # fits
    from labnet.core.errors import ConfigError

    bad = json.loads(json.dumps(ck))
    del bad["state"]["simulator"]["faults"]["counts"]
    with pytest.raises(ConfigError, match=r"ck.json: state.simulator.faults.counts: missing entry"):
        check_checkpoint(bad, layout, Engine, "ck.json")
    bad = json.loads(json.dumps(ck))
    bad["state"]["drivers"]["psu9"] = {}
    with pytest.raises(ConfigError, match=r"ck.json: state.drivers.psu9: unknown entry"):
        check_checkpoint(bad, layout, Engine, "ck.json")
    bad = json.loads(json.dumps(ck))
    bad["state"]["simulator"]["model"]["clock"]["t"] = "soon"
    with pytest.raises(ConfigError, match=r"ck.json: state.simulator.model.clock.t: expected number, got str"):
        check_checkpoint(bad, layout, Engine, "ck.json")
