"""End-to-end dry runs of the shipped protocols on the default simulated rig."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labnet.app.runner import run_protocol
from labnet.app.summary import summary
from labnet.config.protocol import load_protocol
from labnet.session.folder import read_header

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ROOT / "protocols"


def _run(name: str, tmp_path: Path, **kw: int):
    proto = load_protocol(PROTOCOLS / f"{name}.toml", **kw)
    return run_protocol(proto, tmp_path, progress=False)


def test_allostery_error_falls_100x(tmp_path: Path) -> None:
    out = _run("allostery", tmp_path)
    r = out.result
    assert r.status == "completed"
    assert r.initial.train["mse"] / r.final.train["mse"] >= 100
    text = summary(out)
    assert "train error" in text and str(out.session) in text
    # The session CSV holds every measured state and reads with pandas.
    df = pd.read_csv(out.session / "session.csv", comment="#")
    steps = out.result.steps
    assert (df.phase == "free").sum() == steps and (df.phase == "clamped").sum() == steps
    assert {"time_s", "step", "phase", "sample", "set_n1", "v_n9", "code_e15", "error"} <= set(df.columns)
    clamped = df[df.phase == "clamped"]
    assert clamped["set_n3"].notna().all() and df[df.phase == "free"]["set_n3"].isna().all()
    hdr = read_header(out.session / "session.csv")
    assert hdr["protocol"]["seed"] == 1 and hdr["rig"]["simulated"] is True
    assert len(hdr["rig"]["simulator"]["r_ab_ohm"]) == 16
    assert (out.session / "protocol.toml").exists() and (out.session / "rig.toml").exists()


def test_regression_test_mse_falls_10x(tmp_path: Path) -> None:
    r = _run("regression", tmp_path).result
    assert r.initial.test["mse"] / r.final.test["mse"] >= 10


def test_classification_iris_accuracy(tmp_path: Path) -> None:
    r = _run("classification", tmp_path).result
    assert r.final.test["accuracy"] >= 0.9
    assert r.final.test["accuracy"] > r.initial.test["accuracy"]


def test_same_seed_same_csv_apart_from_timestamps(tmp_path: Path) -> None:
    a = _run("allostery", tmp_path / "a", steps=25)
    b = _run("allostery", tmp_path / "b", steps=25)
    da = pd.read_csv(a.session / "session.csv", comment="#").drop(columns=["time_s"])
    db = pd.read_csv(b.session / "session.csv", comment="#").drop(columns=["time_s"])
    pd.testing.assert_frame_equal(da, db)
    ha, hb = read_header(a.session / "session.csv"), read_header(b.session / "session.csv")
    assert ha.pop("started_utc") <= hb.pop("started_utc")  # the one timestamp in the header
    assert ha == hb
    c = _run("allostery", tmp_path / "c", steps=25, seed=99)
    dc = pd.read_csv(c.session / "session.csv", comment="#").drop(columns=["time_s"])
    assert not np.allclose(dc.filter(like="v_").to_numpy(), da.filter(like="v_").to_numpy())


@pytest.mark.parametrize("steps", [0, 3])
def test_short_runs_evaluate_start_and_end(tmp_path: Path, steps: int) -> None:
    r = _run("allostery", tmp_path, steps=steps).result
    assert r.steps == steps and r.evaluations[0].step == 0 and r.evaluations[-1].step == steps
