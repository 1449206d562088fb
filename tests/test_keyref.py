"""The key reference (protocols/KEYS.md) is generated from the validators and cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

from labnet.config.keyref import collect, main, normalise, reference_path, render, unit_of
from labnet.config.schema import Table, recording

ROOT = Path(__file__).resolve().parents[1]
#: literal key names read by validators that the reference cannot reach from a generated file, with why
NOT_REACHED = {
    "table": "calibration.table needs a real calibration CSV of the rig (documented in protocol.py / probe_file.py)",
}
_READ = re.compile(r"\.(?:str|int|float|bool|floats|strs|get|table|raw|declare)\(\s*\"([A-Za-z_][A-Za-z0-9_]*)\"")


def test_reference_is_up_to_date() -> None:
    """Regenerating gives the committed file (run `python -m labnet.config.keyref` after changing a validator)."""
    assert reference_path().read_text(encoding="utf-8") == render(collect()), (
        "protocols/KEYS.md is stale: run python -m labnet.config.keyref")


def test_every_key_a_validator_reads_is_documented() -> None:
    doc = reference_path().read_text(encoding="utf-8")
    leaves = {m.group(1).rsplit(".", 1)[-1].replace("[]", "") for m in re.finditer(r"^\| `([^`]+)`", doc, re.M)}
    sources = [p for p in (ROOT / "labnet" / "config").glob("*.py") if p.name != "keyref.py"]
    names = {n for p in sources for n in _READ.findall(p.read_text(encoding="utf-8"))}
    assert len(names) > 60  # the scan sees the validators
    missing = sorted(names - leaves - set(NOT_REACHED))
    assert not missing, f"keys read by validators but not in protocols/KEYS.md: {missing}"


def test_recording_sees_reads_defaults_and_checks() -> None:
    t = Table({"a_v": 1.5}, "f.toml", "x")
    with recording() as reads:
        t.float("a_v", lo=0.0, hi=2.0)
        t.int("n", 3, lo=1)
    t.float("ignored", 1.0)  # outside the context: not recorded
    assert [(r.key, r.kind, r.given, r.required) for r in reads] == [("x.a_v", "number", True, True),
                                                                     ("x.n", "integer", False, False)]
    assert dict(reads[0].checks) == {"lo": 0.0, "hi": 2.0} and reads[1].default == 3


def test_units_and_normalised_keys() -> None:
    assert [unit_of(k) for k in ("a.max_source_v", "b.deadband_siemens", "c.timeout_s", "d.meter_input_ohm",
                                 "e.drift_kelvin", "f.nodes")] == ["V", "S", "s", "Ω", "K", ""]
    assert normalise("axis[2].grid.demand[0]") == "axis[].grid.demand[]"
    assert normalise("instruments.sources.psu1.address") == "instruments.sources.<name>.address"


def test_reference_covers_every_file_kind_with_defaults() -> None:
    doc = reference_path().read_text(encoding="utf-8")
    for row in ("| `limits.max_edge_current_a` | number | A | 0.001 or 0.0025 |", "| `rule.kind` | string |  | \"sign\" |",
                "| `calibration.scans` | integer |  | 2 |", "| `probe.samples` | integer |  | 200 |",
                "| `base.steps` | integer |  | 4000 |", "| `simulator.meter_noise_v` | number | V | 2e-05 |",
                "| `network.ground` | node name |  | required |"):
        assert row in doc, row


def test_check_mode(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out
