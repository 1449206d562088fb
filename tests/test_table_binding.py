"""Calibration tables bound to their rig (issue 13): another rig's or a damaged table is refused.

``labnet calibrate`` writes the table with a ``binding`` header (rig, kind, part, R_AB, taps,
edges, edge channels, the simulated part draw; the rig file name and the board's identity)
and a content hash. A training protocol's ``[calibration] table`` and a probe protocol's are
checked when the protocol is validated: exit code 2, one line naming the table file and what
is wrong, and nothing built or opened (the spy of tests/test_bad_input.py). Before, only the
edge count was compared: an X9C303 rig's table on the X9C103 rig was accepted (a 20 V probe
then drove 291 % of an edge's rating), a table cut off mid-row was accepted, and empty,
header-only, zero/NaN-conductance or partial-code tables raised tracebacks (IndexError mid-run).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_bad_input import Spy, _check, _run, spy  # noqa: F401 - spy is a fixture

from labnet.app.calibrate import run_calibration
from labnet.config.calibrate_file import load_calibrate_protocol
from labnet.config.rigfile import load_rig
from labnet.config.tables import BINDING_KEY, binding_problem, load_bound_table, rig_binding, table_binding
from labnet.core.errors import ConfigError
from labnet.experiments.calibration.table import HASH_KEY, CalibrationTable, hash_line

ROOT = Path(__file__).resolve().parent.parent
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"
CALIBRATE = """[protocol]
name = "cal"
kind = "calibrate"
rig = "{rig}"
seed = 1

[calibration]
codes = [10, 40, 69, 99]
scans = 1
settle_s = 0.001
"""
TRAIN = """[protocol]
name = "t"
kind = "train"
rig = "{rig}"
seed = 1

[task]
kind = "allostery"
inputs_v = [1.0, 0.3]
targets_v = [0.25, 0.15]

[rule]
kind = "sign"

[train]
steps = 2
settle_s = 0.001

[calibration]
table = "{table}"
"""
PROBE = """[protocol]
name = "pr"
kind = "probe"
rig = "{rig}"
seed = 1

[probe]
samples = 5

[calibration]
table = "{table}"
"""


def _rig_variant(d: Path, name: str, change: Callable[[str], str]) -> Path:
    p = d / f"{name}.toml"
    p.write_text(change(SIM16.read_text()))
    return p


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real `labnet calibrate` tables: the default rig, and the same rig built from X9C303 parts."""
    d = tmp_path_factory.mktemp("tables")
    rigs = {"x9c103": SIM16,
            "x9c303": _rig_variant(d, "sim16-x9c303", lambda t: t.replace('model = "X9C103"', 'model = "X9C303"'))}
    out = {}
    for name, rig in rigs.items():
        (d / f"{name}-cal.toml").write_text(CALIBRATE.format(rig=rig))
        _, folder, _ = run_calibration(load_calibrate_protocol(d / f"{name}-cal.toml"), d / "sessions" / name)
        out[name] = folder / "calibration.csv"
    return out


def test_calibrate_writes_binding_and_hash(tables: dict[str, Path]) -> None:
    t = load_bound_table(tables["x9c103"], load_rig(SIM16))
    b = t.meta[BINDING_KEY]
    assert b["rig"] == "sim16" and b["part"] == "X9C103" and b["r_ab_ohm"] == 10e3 and b["positions"] == 100
    assert b["kind"] == "simulator" and b["simulator"]["seed"] == 17
    assert b["edge_channels"] == list(range(16)) and b["edges"][0] == ["n0", "n4"]
    assert b["rig_file"] == "sim16.toml"
    assert b["board"]["model"] == "LNDP digipot board" and b["board"]["firmware"] == "1.0"  # the ready line's
    assert re.fullmatch(r"[0-9a-f]{64}", t.meta[HASH_KEY])
    assert t.k.shape == (16, 100)


def _rehash(text: str) -> str:
    """A table file's text with its hash line recomputed (a table consistent with its hash)."""
    lines = [ln for ln in text.splitlines(keepends=True) if not ln.startswith(f"# {HASH_KEY}: ")]
    head = [ln for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if not ln.startswith("#")]
    return "".join(head) + hash_line("".join(head + body)) + "".join(body)


def _rows(edit: Callable[[list[str]], list[str]]) -> Callable[[str], str]:
    """Edit the data rows (list of lines after the column row), then rehash."""

    def f(text: str) -> str:
        lines = text.splitlines(keepends=True)
        i = next(i for i, ln in enumerate(lines) if ln.startswith("edge,"))
        return _rehash("".join(lines[: i + 1] + edit(lines[i + 1:])))

    return f


def _cell(row: int, col: int, value: str) -> Callable[[list[str]], list[str]]:
    def f(rows: list[str]) -> list[str]:
        cells = rows[row].rstrip("\n").split(",")
        cells[col] = value
        rows[row] = ",".join(cells) + "\n"
        return rows

    return f


def _binding(change: Callable[[dict], None]) -> Callable[[str], str]:
    """Another rig's table: the binding entry changed, the hash consistent (as that rig's
    `labnet calibrate` would have written it)."""
    import json

    def f(text: str) -> str:
        out = []
        for ln in text.splitlines(keepends=True):
            if ln.startswith(f"# {BINDING_KEY}: "):
                b = json.loads(ln.split(": ", 1)[1])
                change(b)
                ln = f"# {BINDING_KEY}: {json.dumps(b, sort_keys=True)}\n"
            out.append(ln)
        return _rehash("".join(out))

    return f


T = "calibration.csv"
DAMAGE: dict[str, tuple[Callable[[str], str], tuple[str, ...]]] = {
    "truncated-mid-row": (lambda t: t[: len(t) - 9], (T, "cut off mid-row")),
    "empty": (lambda t: "", (T, "empty calibration table")),
    "header-only": (lambda t: "".join(ln for ln in t.splitlines(keepends=True) if ln.startswith("#")),
                    (T, "header only")),
    "column-row-only": (_rows(lambda r: []), (T, "header only: a column row and no rows")),
    "hash-mismatch": (lambda t: t.replace(",1,", ",1,9", 1), (T, HASH_KEY, "does not match its content hash")),
    "binding-edited-without-hash": (lambda t: t.replace('"part": "X9C103"', '"part": "X9C104"'), (T, HASH_KEY)),
    "zero-conductance": (_rows(_cell(5, 2, "0.0")), (T, "conductance_siemens", "row 6 (edge 0, code 5)", "> 0 S")),
    "negative-conductance": (_rows(_cell(7, 2, "-1e-4")), (T, "conductance_siemens", "> 0 S")),
    "nan-conductance": (_rows(_cell(3, 2, "nan")), (T, "conductance_siemens", "row 4", "finite number")),
    "inf-conductance": (_rows(_cell(3, 2, "inf")), (T, "conductance_siemens", "finite number")),
    "text-conductance": (_rows(_cell(3, 2, "high")), (T, "conductance_siemens", "'high'")),
    "negative-sigma": (_rows(_cell(9, 3, "-1e-9")), (T, "sigma_siemens", ">= 0 S")),
    "empty-cell": (_rows(_cell(9, 3, "")), (T, "sigma_siemens", "finite number")),
    "fractional-code": (_rows(_cell(2, 1, "2.5")), (T, "code", "integer >= 0")),
    "negative-edge": (_rows(_cell(2, 0, "-1")), (T, "edge", "integer >= 0")),
    "partial-codes": (_rows(lambda r: [ln for ln in r if int(ln.split(",")[1]) < 50]),
                      (T, "code", "codes 0..49, the part has 100")),
    "missing-row": (_rows(lambda r: r[:-1]), (T, "expected 16x100 rows", "got 1599")),
    "duplicate-row": (_rows(lambda r: r[:-1] + [r[-2]]), (T, "edge 15 at code 98 appears twice")),
    "fewer-edges": (_rows(lambda r: [ln for ln in r if int(ln.split(",")[0]) < 15]), (T, "15 edges", "has 16")),
    "no-binding": (lambda t: _rehash("".join(ln for ln in t.splitlines(keepends=True)
                                             if not ln.startswith(f"# {BINDING_KEY}: "))),
                   (T, "binding: missing", "re-calibrate with `labnet calibrate")),
    "old-table-no-binding-no-hash": (lambda t: "".join(ln for ln in t.splitlines(keepends=True)
                                                       if not ln.startswith((f"# {BINDING_KEY}: ", f"# {HASH_KEY}: "))),
                                     (T, "binding: missing", "labnet calibrate")),
    "no-hash": (lambda t: "".join(ln for ln in t.splitlines(keepends=True) if not ln.startswith(f"# {HASH_KEY}: ")),
                (T, f"{HASH_KEY}: missing")),
    "binding-not-object": (_binding(lambda b: b.clear()), (T, "binding.rig")),
    # another rig's table (binding consistent with its hash)
    "other-rig-name": (_binding(lambda b: b.update(rig="bench7")), (T, "binding.rig", '"bench7"', '"sim16"')),
    "other-kind-bench": (_binding(lambda b: b.update(kind="bench")), (T, "binding.kind", "another rig's table")),
    "other-r-ab": (_binding(lambda b: b.update(r_ab_ohm=50e3)), (T, "binding.r_ab_ohm", "50000.0", "10000.0")),
    "other-edge-channels": (_binding(lambda b: b["edge_channels"].reverse()), (T, "binding.edge_channels")),
    "other-edges": (_binding(lambda b: b["edges"].reverse()), (T, "binding.edges")),
    "other-sim-seed": (_binding(lambda b: b["simulator"].update(seed=18)), (T, "binding.simulator")),
}


def _write(tmp_path: Path, table: Path, damage: Callable[[str], str] | None) -> Path:
    dst = tmp_path / T
    text = table.read_text(encoding="utf-8")
    dst.write_text(text if damage is None else damage(text), encoding="utf-8")
    return dst


@pytest.mark.parametrize("command", ["run", "probe"])
@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_damaged_or_foreign_table_is_refused(name: str, command: str, tables: dict[str, Path], tmp_path: Path,
                                             spy: Spy, capsys: pytest.CaptureFixture) -> None:  # noqa: F811
    damage, expect = DAMAGE[name]
    _write(tmp_path, tables["x9c103"], damage)
    proto = tmp_path / "p.toml"
    proto.write_text((TRAIN if command == "run" else PROBE).format(rig=SIM16, table=T))
    code, err = _run([command, str(proto), "--out", str(tmp_path / "s")], capsys)
    _check(code, err, expect, spy)


@pytest.mark.parametrize("command", ["run", "probe", "validate"])
def test_x9c303_rigs_table_on_the_x9c103_rig(command: str, tables: dict[str, Path], tmp_path: Path, spy: Spy,  # noqa: F811
                                             capsys: pytest.CaptureFixture) -> None:
    """The issue's attack: a real calibration of an X9C303 rig (same name, network and wiring)
    used on the X9C103 rig."""
    _write(tmp_path, tables["x9c303"], None)
    proto = tmp_path / "p.toml"
    proto.write_text((PROBE if command == "probe" else TRAIN).format(rig=SIM16, table=T))
    argv = [command, str(proto)] + ([] if command == "validate" else ["--out", str(tmp_path / "s")])
    code, err = _run(argv, capsys)
    _check(code, err, (T, "binding.part", '"X9C303"', '"X9C103"', "another rig's table"), spy)


def test_own_table_is_accepted(tables: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The control: each rig's own table validates (also copied verbatim, e.g. into a session)."""
    x303 = tables["x9c303"].parent / "rig.toml"  # the calibration session's copy of its rig file
    for table, rig in ((tables["x9c103"], SIM16), (tables["x9c303"], x303)):
        dst = _write(tmp_path, table, None)
        proto = tmp_path / "p.toml"
        proto.write_text(TRAIN.format(rig=rig, table=T))
        assert _run(["validate", str(proto)], capsys)[0] == 0
        assert load_bound_table(dst, load_rig(rig)).n_edges == 16


def test_table_values_are_checked_without_a_hash_too(tables: dict[str, Path], tmp_path: Path) -> None:
    """from_csv (also the report's reader) checks the values whether or not a hash line is there."""
    text = tables["x9c103"].read_text(encoding="utf-8")
    bare = "".join(ln for ln in text.splitlines(keepends=True) if not ln.startswith(f"# {HASH_KEY}: "))
    (tmp_path / "t.csv").write_text(bare.replace("\n0,0,", "\n0,0,-", 1))
    with pytest.raises(ConfigError, match=r"t.csv: conductance_siemens: row 1 \(edge 0, code 0\): expected > 0 S"):
        CalibrationTable.from_csv(tmp_path / "t.csv")


def test_binding_of_a_bench_rig_and_of_an_unseeded_simulator() -> None:
    bench = load_rig(ROOT / "protocols" / "rigs" / "breadboard16.toml")
    b = rig_binding(bench)
    assert b["kind"] == "bench" and "simulator" not in b
    found = binding_problem(rig_binding(load_rig(SIM16)), bench)  # the simulator's table on the bench
    assert found is not None and found[0] == "binding.rig" and "another rig's table" in found[1]
    direct = load_rig(ROOT / "protocols" / "rigs" / "sim16-direct.toml")
    seeded = table_binding(direct, None, 4)
    if "seed" not in direct.sim:  # the protocol's seed draws the parts: a table is bound to it
        assert seeded["simulator"]["seed"] == 4
        assert binding_problem(seeded, direct, 5) is not None and binding_problem(seeded, direct, 4) is None


def test_table_write_leaves_no_temp_file_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    import labnet.session.files as files

    k = np.full((2, 100), 1e-4)

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files, "write_all", full)
    with pytest.raises(OSError):
        CalibrationTable(k, k * 1e-3, {}).to_csv(tmp_path / "calibration.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_at_least_25_table_cases() -> None:
    assert len(DAMAGE) >= 25
