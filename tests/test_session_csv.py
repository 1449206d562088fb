"""The session CSV reads back with pandas, column for column, whatever the names: rig names are
restricted to ``[A-Za-z0-9_.-]`` and the writer quotes the header row like the data rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from labnet.app.runner import run_protocol
from labnet.config.protocol import load_protocol
from labnet.session.writer import SessionWriter

ROOT = Path(__file__).resolve().parent.parent
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"
ODD = "n.9-x_Y"  # every punctuation character the rig-file name set allows


def test_session_csv_of_a_run_reads_back_with_the_right_columns(tmp_path: Path) -> None:
    rig = SIM16.read_text().replace('"n9"', f'"{ODD}"').replace('n9 = "110"', f'"{ODD}" = "110"')
    (tmp_path / "rig.toml").write_text(rig)
    proto = load_protocol(ROOT / "protocols" / "allostery.toml", rig=tmp_path / "rig.toml", steps=2)
    out = run_protocol(proto, tmp_path / "sessions", progress=False)
    df = pd.read_csv(out.session / "session.csv", comment="#")
    assert f"v_{ODD}" in df.columns and "v_n9" not in df.columns
    assert {"time_s", "step", "phase", "sample", "set_n1", "code_e15", "error"} <= set(df.columns)
    assert len(df) > 0 and not df.columns.duplicated().any()
    assert df["phase"].isin(["eval", "free", "clamped"]).all()  # no column shifted
    assert df["step"].dtype.kind == "i" and df[f"v_{ODD}"].notna().all()
    nodes = [f"n{i}" for i in range(9)] + [ODD]
    assert sorted(c for c in df.columns if c.startswith("v_")) == sorted(f"v_{n}" for n in nodes)


def test_header_row_is_quoted_so_any_column_name_reads_back(tmp_path: Path) -> None:
    cols = ["step", "v_n,9", 'v_n"9', "v_n\n9"]
    w = SessionWriter(tmp_path, {"kind": "test"}, cols)
    w.write({"step": 0, "v_n,9": 1.5, 'v_n"9': 2.5, "v_n\n9": 3.5})
    w.close()
    df = pd.read_csv(tmp_path / "session.csv", comment="#")
    assert list(df.columns) == cols
    assert df.iloc[0].tolist() == [0, 1.5, 2.5, 3.5]
