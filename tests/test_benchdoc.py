"""BENCH.md is generated from the rig file and the firmware pin table and cannot drift."""

from __future__ import annotations

import re

from labnet.app.benchdoc import DEFAULT_RIG, OUT, pin_table, render
from labnet.config.rigfile import load_rig


def test_bench_doc_is_up_to_date() -> None:
    assert OUT.read_text(encoding="utf-8") == render(DEFAULT_RIG), "BENCH.md is stale: python -m labnet.app.benchdoc"


def test_wiring_table_matches_rig_and_firmware() -> None:
    spec = load_rig(DEFAULT_RIG)
    pins = pin_table()
    doc = OUT.read_text(encoding="utf-8")
    rows = re.findall(r"^\| e(\d+) \| (\S+) – (\S+) \| U(\d+) \S+ \(channel (\d+)\) \| (\S+) \|", doc, re.M)
    assert len(rows) == spec.network.n_edges
    for e, a, b, u, ch, cs in rows:
        assert spec.network.edges[int(e)] == (a, b)
        assert spec.network.edge_channels[int(e)] == int(ch) == int(u) - 1
        assert cs == pins[f"CS{ch}"]["X9C"] and cs != "?"
    for node, ch in spec.network.meter_channels.items():
        assert re.search(rf"^\| {node} \| [^|]+ \| {ch} \|", doc, re.M)
    assert "INC → A4, U/D → A5" in doc  # the firmware's shared X9C lines
