"""Property-based tests of rig and protocol validation (issue 13, deliverable 6; hypothesis).

Valid rig files and training protocols are generated from the schema the validators enforce
(names from ``[A-Za-z0-9_.-]``, a connected network, instruments from the catalog, limits and
``[simulator]`` values inside their ranges, task voltages the sources can drive) and must load.
Then one change is made at a random place in the file:

* an unknown key added to any table, a value replaced by one of another type, a number made
  negative (every number in these files has a lower bound >= 0) or NaN/inf: must be a
  :class:`ConfigError`;
* a key removed or a number made huge: may be valid (optional keys, unbounded values) or a
  ConfigError;

and never any other exception. The runs are derandomized (the same examples every time) and
bounded (``max_examples``) so the module takes a few seconds.
"""

from __future__ import annotations

import math
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from labnet.bench.catalog import METERS, SOURCES
from labnet.config.protocol import load_protocol
from labnet.config.rigfile import load_rig
from labnet.core.errors import ConfigError
from labnet.core.nonideal import SimSettings, sim_ranges
from labnet.core.parts import CATALOG

ROOT = Path(__file__).resolve().parent.parent
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"
PROFILE = settings(max_examples=120, derandomize=True, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MUTANTS = settings(PROFILE, max_examples=50)  # per mutation kind: 7 x 50 per file type
NAME_ALPHABET = string.ascii_letters + string.digits + "_.-"
names = st.text(NAME_ALPHABET, min_size=1, max_size=12)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


# ---------------------------------------------------------------- valid files from the schema
@st.composite
def rig_files(draw: st.DrawFn) -> dict[str, Any]:
    """A valid rig file (as a dict) with emulated instruments."""
    n = draw(st.integers(3, 10))
    nodes = [f"{draw(names)}-{i}" for i in range(n)]  # unique: the text after the last "-" is i
    edges = [[nodes[draw(st.integers(0, i - 1))], nodes[i]] for i in range(1, n)]  # a spanning tree
    pairs = {frozenset(e) for e in edges}
    for a, b in draw(st.lists(st.tuples(st.sampled_from(nodes), st.sampled_from(nodes)), max_size=n)):
        if a != b and frozenset((a, b)) not in pairs:
            pairs.add(frozenset((a, b)))
            edges.append([a, b])
    ground = nodes[0]
    driven = nodes[1:draw(st.integers(3, n))]  # nodes with a source channel (>= 2)
    k = draw(st.integers(2, len(driven))) if len(driven) > 2 else 2
    inputs, outputs = driven[:1], driven[1:k][:max(1, len(driven[1:k]))]
    psus = [f"psu{i + 1}" for i in range((len(driven) + 2) // 3)]
    channels = [f"{p}.{c}" for p in psus for c in "123"]
    part_name = draw(st.sampled_from(sorted(CATALOG)))
    part = CATALOG[part_name]
    code_min = draw(st.integers(0, part.max_code - 1))
    code_max = draw(st.integers(code_min + 1, part.max_code))
    ranges = sim_ranges(part.max_code, part.tempco_ppm_per_k)
    sim: dict[str, Any] = {"seed": draw(st.integers(0, 2**31)), "tolerance": draw(st.booleans())}
    for f in SimSettings.__dataclass_fields__:
        r = ranges.get(f)
        if r is None or f == "seed" or not draw(st.booleans()):
            continue
        hi = r.hi if r.hi is not None else 1e9
        v = draw(st.floats(r.lo or 0.0, hi, allow_nan=False, allow_infinity=False,
                           exclude_min=r.lo_open, exclude_max=r.hi_open))
        sim[f] = v
    meter = draw(st.sampled_from(sorted(METERS)))
    mm = METERS[meter]
    slots = [f"{s}{c:02d}" for s in range(1, mm.slots + 1) for c in range(1, mm.channels_per_slot + 1)]
    rig: dict[str, Any] = {
        "rig": {"name": draw(names), "kind": "simulator", "transport": "wire"},
        "network": {
            "nodes": nodes, "edges": edges, "ground": ground, "inputs": inputs, "outputs": outputs,
            "edge_channels": draw(st.permutations(list(range(len(edges))))),
            "meter_channels": dict(zip(nodes, draw(st.permutations(slots))[:n])),
            "source_channels": dict(zip(driven, channels)),
        },
        "parts": {"model": part_name, "initial_code": draw(st.integers(code_min, code_max))},
        "limits": {"max_source_v": (max_v := draw(st.floats(0.01, 6.0))),
                   "max_edge_current_a": draw(st.floats(1e-6, part.max_current_a)),
                   "code_min": code_min, "code_max": code_max},
        "simulator": sim,
        "instruments": {
            "board": {"address": f"sim://{draw(names)}", "baud": draw(st.sampled_from([9600, 115200])),
                      "timeout_s": draw(st.floats(0.01, 60.0)), "retries": draw(st.integers(0, 20))},
            "meter": {"model": meter, "address": "TCPIP0::h::daq::INSTR@sim",
                      "nplc": draw(st.sampled_from(mm.nplc)),
                      "range_v": draw(st.sampled_from([r for r in mm.ranges_v if 1.2 * r >= max_v]))},  # holds max_v
            "sources": {p: {"model": "E36312A", "address": f"TCPIP0::h::{p}::INSTR@sim",
                            "current_limit_a": draw(st.floats(1e-4, SOURCES["E36312A"].max_current_limit_a))}
                        for p in psus},
        },
    }
    return rig


SIM16_SOURCES = ["n1", "n2", "n3", "n4", "n5", "n6", "n7"]


@st.composite
def protocol_files(draw: st.DrawFn) -> dict[str, Any]:
    """A valid training protocol (as a dict) on the default rig (1 V sources, E36312A and 2450)."""
    roles = draw(st.permutations(SIM16_SOURCES))
    n_in = draw(st.integers(1, 3))
    n_out = draw(st.integers(1, 3))
    inputs, outputs = roles[:n_in], roles[n_in:n_in + n_out]
    volts = st.floats(0.0, 1.0)
    kind = draw(st.sampled_from(["allostery", "regression"]))
    if kind == "allostery":
        task: dict[str, Any] = {"kind": kind, "inputs_v": draw(st.lists(volts, min_size=n_in, max_size=n_in)),
                                "targets_v": draw(st.lists(volts, min_size=n_out, max_size=n_out))}
    else:
        lo = draw(st.floats(0.0, 0.9))
        task = {"kind": kind, "n_train": draw(st.integers(1, 30)), "n_test": draw(st.integers(1, 30)),
                "input_range_v": [lo, draw(st.floats(lo + 0.01, 1.0))]}
    return {
        "protocol": {"name": draw(names), "kind": "train", "rig": "rig.toml", "seed": draw(st.integers(0, 2**31))},
        "roles": {"inputs": inputs, "outputs": outputs},
        "task": task,
        "rule": {"kind": draw(st.sampled_from(["sign", "stochastic", "coupled"])),
                 "eta": draw(st.floats(1e-6, 1.0)), "alpha": draw(st.floats(1e-9, 1.0)),
                 "deadband_siemens": draw(st.floats(0.0, 1e-3)), "max_taps": draw(st.integers(1, 99))},
        "train": {"steps": draw(st.integers(0, 10_000)), "batch": draw(st.integers(1, 100)),
                  "eval_every": draw(st.integers(1, 100)), "target_error": draw(st.floats(0.0, 1.0)),
                  "settle_s": draw(st.floats(0.0, 60.0))},
    }


# ---------------------------------------------------------------- mutations
def _paths(d: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path (tables and list items) of a nested dict."""
    out = []
    if isinstance(d, dict):
        for k, v in d.items():
            out.append(prefix + (k,))
            out.extend(_paths(v, prefix + (k,)))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out.append(prefix + (i,))
            out.extend(_paths(v, prefix + (i,)))
    return out


def _get(d: Any, path: tuple) -> Any:
    for k in path:
        d = d[k]
    return d


def _other_type(v: Any) -> Any:
    """A value of another TOML type than ``v`` (one no key of these files accepts instead)."""
    if isinstance(v, bool):
        return "yes"
    if isinstance(v, (int, float)):
        return "1"
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return {"x": 1}
    return 7  # a table


MUST_FAIL = ("unknown key", "wrong type", "negative", "nan", "inf")
MAY_PASS = ("remove", "huge")


@st.composite
def mutations(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]], kind: str) -> tuple[str, tuple, dict[str, Any]]:
    """``base``'s file with one change of ``kind`` (MUST_FAIL or MAY_PASS) at a drawn place."""
    import copy

    d = copy.deepcopy(draw(base))
    paths = _paths(d)
    if kind == "unknown key":
        tables = [()] + [p for p in paths if isinstance(_get(d, p), dict)]
        path = draw(st.sampled_from(tables))
        _get(d, path)["zz_unknown"] = 1
        return kind, path, d
    if kind in ("negative", "nan", "inf", "huge"):
        paths = [p for p in paths if isinstance(_get(d, p), (int, float)) and not isinstance(_get(d, p), bool)]
    elif kind == "remove":
        paths = [p for p in paths if isinstance(p[-1], str)]
    path = draw(st.sampled_from(paths))
    parent, leaf = _get(d, path[:-1]), path[-1]
    v = parent[leaf]
    if kind == "remove":
        del parent[leaf]
    elif kind == "wrong type":
        parent[leaf] = _other_type(v)
    elif kind == "negative":
        parent[leaf] = -abs(v) - (1 if isinstance(v, int) else 1.5)
    elif kind == "nan":
        parent[leaf] = math.nan
    elif kind == "inf":
        parent[leaf] = draw(st.sampled_from([math.inf, -math.inf]))
    else:  # huge
        parent[leaf] = 10**15 if isinstance(v, int) else 1e300
    return kind, path, d


def _write(folder: Path, name: str, d: dict[str, Any]) -> Path:
    p = folder / name
    p.write_text(tomli_w.dumps(d), encoding="utf-8")
    return p


def _expect(kind: str, path: tuple, load: Any) -> None:
    try:
        load()
    except ConfigError as exc:
        assert "\n" not in str(exc), str(exc)
        event(f"{kind}: ConfigError")
        return
    event(f"{kind}: valid")
    assert kind in MAY_PASS, f"{kind} at {'.'.join(map(str, path))} was accepted"


# ---------------------------------------------------------------- the properties
@PROFILE
@given(rig_files())
def test_generated_rigs_validate(folder: Path, rig: dict[str, Any]) -> None:
    spec = load_rig(_write(folder, "rig.toml", rig))
    assert spec.network.n_nodes == len(rig["network"]["nodes"])
    assert spec.network.n_edges == len(rig["network"]["edges"])
    assert spec.part.name == rig["parts"]["model"]


@pytest.mark.parametrize("kind", MUST_FAIL + MAY_PASS)
def test_mutated_rigs_give_config_errors_only(folder: Path, kind: str) -> None:
    @MUTANTS
    @given(mutations(rig_files(), kind))
    def check(m: tuple[str, tuple, dict[str, Any]]) -> None:
        _, path, rig = m
        _expect(kind, path, lambda: load_rig(_write(folder, "rig.toml", rig)))

    check()


@PROFILE
@given(protocol_files())
def test_generated_protocols_validate(folder: Path, proto: dict[str, Any]) -> None:
    (folder / "rig.toml").write_text(SIM16.read_text())
    p = load_protocol(_write(folder, "p.toml", proto))
    assert p.train.steps == proto["train"]["steps"]
    assert list(p.network.inputs) == proto["roles"]["inputs"]


@pytest.mark.parametrize("kind", MUST_FAIL + MAY_PASS)
def test_mutated_protocols_give_config_errors_only(folder: Path, kind: str) -> None:
    (folder / "rig.toml").write_text(SIM16.read_text())

    @MUTANTS
    @given(mutations(protocol_files(), kind))
    def check(m: tuple[str, tuple, dict[str, Any]]) -> None:
        _, path, proto = m
        _expect(kind, path, lambda: load_protocol(_write(folder, "p.toml", proto)))

    check()


@PROFILE
@given(rig_files(), st.data())
def test_damaged_rig_text_gives_config_errors_only(folder: Path, rig: dict[str, Any], data: st.DataObject) -> None:
    """A rig file cut short or with one character replaced (NUL, quote, bracket, newline, digit)."""
    text = tomli_w.dumps(rig)
    i = data.draw(st.integers(0, len(text) - 1))
    if data.draw(st.booleans()):
        text = text[:i]
    else:
        text = text[:i] + data.draw(st.sampled_from(["\x00", '"', "[", "]", "\n", "=", "9", "-", ","])) + text[i + 1:]
    p = folder / "rig.toml"
    p.write_text(text, encoding="utf-8")
    try:
        load_rig(p)
    except ConfigError as exc:
        assert "\n" not in str(exc), str(exc)
