"""`labnet validate` on broken rig and protocol files: exit 2, one line naming file and key."""

from __future__ import annotations

import copy
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from labnet.app.cli import main

ROOT = Path(__file__).resolve().parent.parent
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"


def _rig() -> dict[str, Any]:
    return tomllib.loads(SIM16.read_text())


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def f(d: dict[str, Any]) -> None:
        *head, last = path.split(".")
        for h in head:
            d = d[h]
        d[last] = value

    return f


def _del(path: str) -> Callable[[dict[str, Any]], None]:
    def f(d: dict[str, Any]) -> None:
        *head, last = path.split(".")
        for h in head:
            d = d[h]
        del d[last]

    return f


def _edges(fn: Callable[[list[list[str]]], list[list[str]]]) -> Callable[[dict[str, Any]], None]:
    def f(d: dict[str, Any]) -> None:
        d["network"]["edges"] = fn(copy.deepcopy(d["network"]["edges"]))

    return f


RIG_CASES = {
    "disconnected": (
        _edges(lambda e: [x for x in e if "n9" not in x] + [["n1", "n2"], ["n1", "n3"]]),
        "network.edges",
        "disconnected",
    ),
    "unknown node in edge": (_edges(lambda e: e[:3] + [["n1", "n42"]] + e[4:]), "network.edges[3]", "unknown node"),
    "unknown node in role": (_set("network.outputs", ["n3", "n77"]), "network.outputs", "unknown node"),
    "self-loop": (_edges(lambda e: e[:2] + [["n5", "n5"]] + e[3:]), "network.edges[2]", "self-loop"),
    "duplicate edge": (_edges(lambda e: e[:5] + [list(reversed(e[0]))] + e[6:]), "network.edges[5]", "duplicate edge"),
    "roles overlapping": (_set("network.outputs", ["n3", "n1"]), "network.outputs", "both inputs and outputs"),
    "digipot channel used twice": (
        _set("network.edge_channels", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 3]),
        "network.edge_channels",
        "used twice",
    ),
    "meter channel used twice": (_set("network.meter_channels.n5", "101"), "network.meter_channels", "used twice"),
    "missing ground": (_del("network.ground"), "network.ground", "missing"),
    "missing required key": (_del("parts.model"), "parts.model", "missing required key"),
    "unknown part": (_set("parts.model", "X9C999"), "parts.model", "unknown part"),
    "current above rating": (_set("limits.max_edge_current_a", 0.5), "limits.max_edge_current_a", "exceeds"),
    "code range inverted": (_set("limits.code_min", 99), "limits.code_max", "code_max > code_min"),
    "wrong type": (_set("limits.max_source_v", "one volt"), "limits.max_source_v", "expected a number"),
    "typo key": (_set("simulator.meter_nosie_v", 1e-5), "simulator.meter_nosie_v", "unknown key"),
}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", sorted(RIG_CASES))
def test_broken_rig_exits_2_with_one_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mutate, key, words = RIG_CASES[case]
    d = _rig()
    mutate(d)
    f = tmp_path / "broken.toml"
    f.write_text(tomli_w.dumps(d))
    code, _, err = _run(["validate", str(f)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"{f}: {key}: " in lines[0] and words in lines[0], lines[0]


def test_malformed_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.toml"
    f.write_text('[rig]\nname = "x"\n[network\nnodes = []\n')
    code, _, err = _run(["validate", str(f)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{f}: -: malformed TOML" in err and "line 3" in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["validate", str(tmp_path / "nope.toml")], capsys)
    assert code == 2 and "nope.toml: -: file not found" in err


PROTO = """[protocol]
name = "p"
rig = "{rig}"
[task]
kind = "allostery"
inputs_v = [1.0, 0.3]
targets_v = [0.4, 0.1]
[rule]
kind = "sign"
[train]
steps = 10
"""


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ('kind = "sign"', 'kind = "magic"', "rule.kind", "expected one of"),
        ("inputs_v = [1.0, 0.3]", "inputs_v = [1.0]", "task.inputs_v", "expected 2 values"),
        ("steps = 10", "steps = -1", "train.steps", ">= 0"),
        ('kind = "allostery"', 'kind = "allostery"\nextra = 1', "task.extra", "unknown key"),
        ('name = "p"', 'name = "p"\nseed = "x"', "protocol.seed", "expected an integer"),
        ("[rule]", "[roles]\noutputs = [\"n1\"]\n[rule]", "roles.outputs", "both inputs and outputs"),
    ],
)
def test_broken_protocol(old: str, new: str, key: str, words: str, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.toml"
    f.write_text(PROTO.format(rig=SIM16).replace(old, new, 1))
    code, _, err = _run(["validate", str(f)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{f}: {key}: " in err and words in err, err


def test_good_files_validate(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(SIM16)] + [str(ROOT / "protocols" / f"{p}.toml") for p in ("allostery", "regression", "classification")]
    code, out, _ = _run(["validate", *files], capsys)
    assert code == 0 and out.count(": ok") == 4


def test_console_entry_points() -> None:
    r = subprocess.run([sys.executable, "-m", "labnet", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("labnet ")
    r = subprocess.run([sys.executable, "-m", "labnet", "run", "--steps", "x", "p.toml"], capture_output=True, text=True)
    assert r.returncode == 2 and "--steps" in r.stderr and len(r.stderr.strip().splitlines()) == 1
