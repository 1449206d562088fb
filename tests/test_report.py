"""`labnet report` on sessions from `labnet run`: every figure exists and is not blank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labnet.app.cli import main
from labnet.app.report import FIGURES

ROOT = Path(__file__).resolve().parent.parent


def _protocol(tmp_path: Path, analysis: str) -> Path:
    text = (ROOT / "protocols" / "allostery.toml").read_text()
    text = text.replace('rig = "rigs/sim16.toml"', f'rig = "{ROOT / "protocols" / "rigs" / "sim16.toml"}"')
    p = tmp_path / "allostery.toml"
    p.write_text(text + analysis)
    return p


def _not_blank(path: Path) -> None:
    import matplotlib.image as mpimg

    img = mpimg.imread(path)[..., :3]
    assert img.shape[0] > 200 and img.shape[1] > 300
    background = np.all(img > 0.97, axis=-1)
    assert 0.01 < 1 - background.mean() < 0.95, f"{path.name}: looks blank"
    assert len(np.unique((img * 255).astype(int).reshape(-1, 3), axis=0)) > 20, f"{path.name}: too few colours"


@pytest.mark.parametrize("analysis", ["", "\n[analysis]\ntrack_every = 10\nprobe_every = 15\nprobe_samples = 20\n"])
def test_report_writes_every_figure(tmp_path, analysis, capsys):
    proto = _protocol(tmp_path, analysis)
    assert main(["run", str(proto), "--steps", "30", "--out", str(tmp_path / "s"), "--quiet"]) == 0
    session = next((tmp_path / "s").iterdir())
    assert main(["report", str(session)]) == 0
    for name in FIGURES:
        assert (session / name).exists(), name
        _not_blank(session / name)
    page = (session / "report.md").read_text()
    assert all(f"({name})" in page for name in FIGURES)
    assert "λ_min" in page
    if analysis:
        t = pd.read_csv(session / "tracking.csv", comment="#")
        assert list(t["step"]) == [0, 10, 15, 20, 30]
        assert list(t.loc[t["probe_deff"].notna(), "step"]) == [0, 15, 30]
        modes = pd.read_csv(session / "tracking_modes.csv", comment="#")
        assert set(modes["step"]) == {0, 10, 15, 20, 30}
        # Σ c_n over all modes is the tracked output response
        for s, g in modes.groupby("step"):
            assert g["c"].sum() == pytest.approx(float(t.loc[t["step"] == s, "response_v"].iloc[0]), rel=1e-9)
        assert "D_eff(probe)" in page and "D_eff(probe model)" in page


def test_report_rejects_non_session(tmp_path):
    assert main(["report", str(tmp_path)]) == 2


@pytest.mark.parametrize("table, key", [("track_every = 0", "analysis.track_every"),
                                        ("probe_drive = [\"n9\"]", "analysis.probe_drive"),
                                        ("trak_every = 5", "analysis.trak_every"),
                                        ("probe_v_max = 5.0", "analysis.probe_v_max")])
def test_analysis_table_is_validated(tmp_path, table, key):
    from labnet.config.protocol import load_protocol
    from labnet.core.errors import ConfigError

    proto = _protocol(tmp_path, f"\n[analysis]\n{table}\n")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_protocol(proto)
