"""``report.json`` and one name per quantity (issue 15, item 7).

The numbers behind report.md's table are in report.json (``quantities.<name>.before/after``),
each with its symbol, unit, what it is computed over and its definition; they are the table's
numbers and can be recomputed from the session's recorded codes with plain numpy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labnet.app.report import write_report
from labnet.app.report_data import load_session_data
from labnet.app.runner import run_protocol
from labnet.config.protocol import load_protocol
from labnet.core.quantities import QUANTITIES
from labnet.session.folder import read_session

ROOT = Path(__file__).resolve().parent.parent
RIG = ROOT / "protocols" / "rigs" / "sim16.toml"

ALLOSTERY = f"""
[protocol]
name = "json"
rig = "{RIG}"
seed = 2

[task]
kind = "allostery"
inputs_v = [1.0, 0.3]
targets_v = [0.25, 0.15]

[rule]
kind = "sign"
deadband_siemens = 1e-7

[train]
steps = 20
eval_every = 10
settle_s = 0.01

[analysis]
track_every = 10
probe_every = 10
probe_samples = 12
"""

REQUIRED = ("lambda_min", "softest_share", "deff_model", "deff_probe", "gbar")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("json")
    p = d / "p.toml"
    p.write_text(ALLOSTERY)
    out = run_protocol(load_protocol(p), session_dir=d / "s", progress=False)
    write_report(out.session)
    return out.session


def _table(md: str) -> dict[str, list[str]]:
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith("| quantity")]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in ln.strip("|").split("|")] for ln in rows)}


def test_report_json_holds_the_tables_numbers(session: Path) -> None:
    doc = json.loads((session / "report.json").read_text(encoding="utf-8"))
    q = doc["quantities"]
    for name in REQUIRED:
        assert isinstance(q[name]["before"], float) and isinstance(q[name]["after"], float), name
        assert q[name]["definition"] and q[name]["over"] and q[name]["symbol"] == QUANTITIES[name].symbol
    table = _table((session / "report.md").read_text(encoding="utf-8"))
    shown = 0
    for entry in q.values():
        label = f"{entry['symbol']} ({entry['unit']})" if entry["unit"] else entry["symbol"]
        before, after, over = table[label]
        assert over == entry["over"]
        for cell, key in ((before, "before"), (after, "after")):
            number = float(re.split(r" ± ", cell)[0])  # the table's rounding of the JSON number
            assert number == pytest.approx(entry[key], rel=1e-3, abs=6e-4), (label, key)  # 4 digits or 3 decimals
        shown += 1
    assert shown == len(table) >= 9  # every table row is in report.json, and the other way round


def test_numbers_recomputed_from_the_recorded_codes(session: Path) -> None:
    """λ_min(H_F), D_eff(H_F), ḡ(H_F) after training from the last recorded codes, by hand."""
    doc = json.loads((session / "report.json").read_text(encoding="utf-8"))
    d = load_session_data(session)  # only for the network and the rig's code -> conductance model
    codes = read_session(session).iloc[-1][[f"code_e{j}" for j in range(d.network.n_edges)]].to_numpy(dtype=np.int64)
    k = d.model.conductance(codes)
    net = d.network
    lap = np.zeros((net.n_nodes, net.n_nodes))
    idx = {n: i for i, n in enumerate(net.nodes)}
    for (a, b), g in zip(net.edges, k):
        i, j = idx[a], idx[b]
        lap[i, i] += g
        lap[j, j] += g
        lap[i, j] -= g
        lap[j, i] -= g
    free = [idx[n] for n in net.nodes if n != net.ground and n not in net.inputs]
    lam = np.linalg.eigvalsh(lap[np.ix_(free, free)])
    q = doc["quantities"]
    assert q["lambda_min"]["after"] == pytest.approx(lam[0], rel=1e-9)
    w = lam**-2.0
    assert q["deff_model"]["after"] == pytest.approx(w.sum() ** 2 / np.sum(w**2), rel=1e-9)
    assert q["gbar"]["after"] == pytest.approx(np.sqrt(w.sum()), rel=1e-9)
    ev = read_session(session)
    ev = ev[(ev["phase"] == "eval") & (ev["split"] == "train")]
    assert q["train_mse"]["before"] == pytest.approx(ev["error"].iloc[0])
    assert q["train_mse"]["after"] == pytest.approx(ev["error"].iloc[-1])


def test_probe_numbers_say_what_they_are_over(session: Path) -> None:
    doc = json.loads((session / "report.json").read_text(encoding="utf-8"))
    t = pd.read_csv(session / "tracking.csv", comment="#")
    p = t[t["probe_deff"].notna()]
    assert doc["quantities"]["deff_probe"]["after"] == pytest.approx(p["probe_deff"].iloc[-1])
    assert doc["quantities"]["deff_probe_model"]["after"] == pytest.approx(p["probe_model_deff"].iloc[-1])
    assert "probe" in doc["quantities"]["deff_probe"]["over"] and "H_F" in doc["quantities"]["deff_model"]["over"]
    md = (session / "report.md").read_text(encoding="utf-8")
    for entry in doc["quantities"].values():  # every quantity in the table is defined under it
        assert f"{entry['symbol']}: {entry['definition']}" in md


def test_one_symbol_per_definition() -> None:
    symbols = [q.symbol for q in QUANTITIES.values()]
    assert len(set(symbols)) == len(symbols)
    assert len({q.definition for q in QUANTITIES.values()}) == len(QUANTITIES)
    assert all("|" not in q.symbol for q in QUANTITIES.values())  # a markdown table cell


def test_no_probe_is_said_not_invented(tmp_path: Path) -> None:
    p = tmp_path / "p.toml"
    p.write_text(ALLOSTERY.replace("probe_every = 10", "probe_every = 0").replace("steps = 20", "steps = 5"))
    out = run_protocol(load_protocol(p), session_dir=tmp_path / "s", progress=False)
    write_report(out.session)
    q = json.loads((out.session / "report.json").read_text(encoding="utf-8"))["quantities"]
    assert q["deff_probe"]["before"] is None and q["deff_probe"]["after"] is None and "no probe" in q["deff_probe"]["reason"]


def test_classification_accuracy_and_confusion(tmp_path: Path) -> None:
    proto = load_protocol(ROOT / "protocols" / "classification.toml", steps=4)
    out = run_protocol(proto, session_dir=tmp_path / "c", progress=False)
    write_report(out.session)
    doc = json.loads((out.session / "report.json").read_text(encoding="utf-8"))
    c = doc["classification"]
    test = c["confusion"]["test"]
    counts = np.array(test["counts"])
    assert counts.shape == (3, 3) and counts.sum() == len(proto.build_task().test)
    assert c["accuracy"]["test"]["after"] == pytest.approx(np.trace(counts) / counts.sum())
    assert c["accuracy"]["test"]["after"] == pytest.approx(out.result.final.test["accuracy"])
    assert doc["quantities"]["test_accuracy"]["after"] == c["accuracy"]["test"]["after"]
