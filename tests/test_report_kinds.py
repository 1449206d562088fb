"""`labnet report` on every kind of folder: calibrate, probe, classification, sessions that failed
(at step 0, mid-run, before any row), and folders that are no session (exit 2, one line);
the step axis and legend helpers; atomic figure writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from labnet.app.build import build_rig
from labnet.app.cli import main
from labnet.app.report import CLASSIFICATION_FIGURES, FIGURES
from labnet.app.runner import run_protocol
from labnet.config.protocol import load_protocol
from labnet.core.errors import InstrumentError
from labnet.experiments.engine import StateMeasured

ROOT = Path(__file__).resolve().parent.parent
RIG = ROOT / "protocols" / "rigs" / "sim16.toml"


def _copy(tmp_path: Path, name: str, extra: str = "", **replace: str) -> Path:
    text = (ROOT / "protocols" / name).read_text().replace('rig = "rigs/sim16.toml"', f'rig = "{RIG}"')
    for old, new in replace.items():
        text = text.replace(old, new)
    p = tmp_path / name
    p.write_text(text + extra)
    return p


def not_blank(path: Path) -> None:
    """A real figure: big enough, not mostly background, many colours."""
    import matplotlib.image as mpimg

    img = mpimg.imread(path)[..., :3]
    assert img.shape[0] > 200 and img.shape[1] > 300
    background = np.all(img > 0.97, axis=-1)
    assert 0.01 < 1 - background.mean() < 0.95, f"{path.name}: looks blank"
    assert len(np.unique((img * 255).astype(int).reshape(-1, 3), axis=0)) > 20, f"{path.name}: too few colours"


def _report(folder: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["report", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"labnet report: {folder / 'report.md'} (and report.html)"
    assert (folder / "report.html").is_file()
    assert not list(folder.glob(".*.tmp")), "a temporary figure file was left behind"
    return (folder / "report.md").read_text()


def test_report_on_calibration_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proto = _copy(tmp_path, "calibrate.toml", **{"codes = [10, 28, 46, 63, 81, 99]": "codes = [20, 60, 99]",
                                                  "scans = 2 ": "scans = 1 "})
    assert main(["calibrate", str(proto), "--out", str(tmp_path / "s")]) == 0
    session = next((tmp_path / "s").iterdir())
    page = _report(session, capsys)
    not_blank(session / "calibration_rd.png")
    assert "(calibration_rd.png)" in page and "| R_AB (Ω) |" in page
    assert len([ln for ln in page.splitlines() if ln.startswith("| ") and ln[2:].split(" |")[0].isdigit()]) == 16
    html = (session / "report.html").read_text()
    assert "data:image/png;base64," in html and 'src="calibration_rd.png"' not in html


def test_report_on_probe_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proto = _copy(tmp_path, "probe.toml")
    assert main(["probe", str(proto), "--samples", "30", "--out", str(tmp_path / "s")]) == 0
    session = next((tmp_path / "s").iterdir())
    page = _report(session, capsys)
    not_blank(session / "probe_spectrum.png")
    stats = (session / "probe.csv").read_text().splitlines()[-1].split(",")
    assert re.search(r"\| D_eff\(probe\) \(drives [^|]+\) \| " + re.escape(f"{float(stats[2]):.4f} ± {float(stats[3]):.4f}"), page)
    assert "(probe_spectrum.png)" in page


def test_report_on_classification_has_confusion_and_accuracy(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    proto = _copy(tmp_path, "classification.toml")
    assert main(["run", str(proto), "--steps", "10", "--out", str(tmp_path / "s"), "--quiet"]) == 0
    session = next((tmp_path / "s").iterdir())
    page = _report(session, capsys)
    for name in (*FIGURES, *CLASSIFICATION_FIGURES):
        not_blank(session / name)
        assert f"({name})" in page
    evals = [json.loads(ln) for ln in (session / "evaluations.jsonl").read_text().splitlines()]
    a, b = evals[0]["test"]["accuracy"], evals[-1]["test"]["accuracy"]
    assert f"| test accuracy | {a:.1%} | {b:.1%} |" in page  # the CSV's predictions agree with the engine's score


class _Fail:
    """Raise ``exc`` at the n-th measured state (after its row was written)."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def __call__(self, ev: object) -> None:
        if isinstance(ev, StateMeasured):
            self.seen += 1
            if self.seen == self.n:
                raise InstrumentError("meter: no response (test)")


def _failed_run(tmp_path: Path, *, fail_at: int | None = None, measure_fails: bool = False,
                open_fails: bool = False) -> Path:
    proto = load_protocol(_copy(tmp_path, "allostery.toml"), steps=30)
    rig = build_rig(proto.rig, sim_seed=proto.seed, network=proto.network)

    def boom(*a: object, **k: object) -> None:
        raise InstrumentError("meter: no response (test)")

    if measure_fails:
        rig.measure = boom  # type: ignore[method-assign]
    if open_fails:
        rig.open = boom  # type: ignore[method-assign]
    with pytest.raises(InstrumentError):
        run_protocol(proto, session_dir=tmp_path / "s", rig=rig, progress=False,
                     subscribers=[_Fail(fail_at)] if fail_at else ())
    return tmp_path / "s"


def test_report_on_run_failed_at_step_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: ``ValueError: cannot convert float NaN to integer``. Now a partial page, exit 0."""
    session = _failed_run(tmp_path, measure_fails=True)
    page = _report(session, capsys)
    assert "**Partial report**: the run is failed (InstrumentError: meter: no response (test))" in page
    assert "no complete state recorded" in page and not list(session.glob("*.png"))


def test_report_on_run_failed_before_any_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session = _failed_run(tmp_path, open_fails=True)
    assert not (session / "session.csv").exists()
    page = _report(session, capsys)
    assert "**Partial report**" in page and "session.csv is missing" in page


def test_report_on_run_failed_mid_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session = _failed_run(tmp_path, fail_at=60)
    page = _report(session, capsys)
    assert "**Partial report**: the run is failed" in page and "rows up to step" in page
    for name in ("error.png", "trajectories.png", "network.png", "histograms.png", "outputs_vs_targets.png"):
        not_blank(session / name)


@pytest.mark.parametrize("setup", ["empty", "other_files", "missing", "not_labnet_csv"])
def test_report_on_non_session_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  setup: str) -> None:
    f = tmp_path / "x"
    if setup != "missing":
        f.mkdir()
    if setup == "other_files":
        (f / "notes.txt").write_text("hello")
    if setup == "not_labnet_csv":
        (f / "session.csv").write_text("a,b\n1,2\n")
    assert main(["report", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"labnet: error: {f}"), err


def test_long_run_gets_a_log_step_axis() -> None:
    from labnet.app.report_page import plt, step_axis

    fig, (a, b) = plt().subplots(1, 2)
    step_axis(a, 20000)
    step_axis(b, 300)
    assert a.get_xscale() == "symlog" and b.get_xscale() == "linear"
    assert "log" in a.get_xlabel() and b.get_xlabel() == "training step"
    plt().close(fig)


@pytest.mark.parametrize("n", [16, 24, 64])
def test_edge_legend_scales_and_stays_inside_the_figure(tmp_path: Path, n: int) -> None:
    """With 24 edges the old legend vanished (drawn only up to 20); now every entry is drawn, in
    more columns, inside the saved figure, with distinct colours."""
    from labnet.app.report_page import edge_colors, plt, save_figure, scaled_legend

    colors = edge_colors(n)
    assert len({tuple(np.round(c, 3)) for c in colors}) == n
    ncol = max(1, -(-n // 16))
    fig, ax = plt().subplots(figsize=(6 + 0.9 * ncol, 4))
    for j in range(n):
        ax.plot([0, 1], [j, j + 1], color=colors[j], label=f"e{j}")
    leg = scaled_legend(ax, n)
    assert leg is not None and len(leg.get_texts()) == n and leg._ncols == ncol
    fig.tight_layout()
    fig.canvas.draw()
    fbox = fig.bbox
    for t in leg.get_texts():
        bb = t.get_window_extent()
        assert fbox.x0 <= bb.x0 and bb.x1 <= fbox.x1 and fbox.y0 <= bb.y0 and bb.y1 <= fbox.y1, t.get_text()
    save_figure(fig, tmp_path / "legend.png", tight=False)
    assert (tmp_path / "legend.png").stat().st_size > 5000 and not list(tmp_path.glob(".*.tmp"))


def test_report_on_resumed_session_uses_the_surviving_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run stopped mid-step and resumed: the report reads rows through read_session (superseded
    rows of the unfinished step dropped) and is complete, not partial."""
    proto = load_protocol(_copy(tmp_path, "allostery.toml"), steps=20)
    rig = build_rig(proto.rig, sim_seed=proto.seed, network=proto.network)

    class _Stop(_Fail):
        def __call__(self, ev: object) -> None:
            if isinstance(ev, StateMeasured):
                self.seen += 1
                if self.seen == self.n:
                    raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_protocol(proto, session_dir=tmp_path / "s", rig=rig, progress=False, subscribers=[_Stop(45)])
    assert main(["resume", str(tmp_path / "s"), "--quiet"]) == 0
    page = _report(tmp_path / "s", capsys)
    assert "Partial report" not in page and "steps 0–20" in page
    evals = [json.loads(ln) for ln in (tmp_path / "s" / "evaluations.jsonl").read_text().splitlines()]
    assert f"| train error (V²) | {evals[0]['train']['mse']:.4g} | {evals[-1]['train']['mse']:.4g} |" in page
