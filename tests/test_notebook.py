"""The notebook API: your own samples with a session written, a live figure, DataFrames, and a real
Jupyter kernel running it (nbclient)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labnet.app.notebook import LivePlot, run_samples
from labnet.core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
ALLOSTERY = ROOT / "protocols" / "allostery.toml"
X = np.array([[1.0, 0.3], [0.6, 0.9], [0.2, 0.5]])
Y = np.array([[0.25, 0.15], [0.30, 0.25], [0.15, 0.12]])


def test_run_samples_writes_a_session_and_learns(tmp_path: Path) -> None:
    plot = LivePlot(every=10, path=tmp_path / "live.png")
    out = run_samples(ALLOSTERY, X[:2], Y[:2], test_inputs=X[2:], test_targets=Y[2:], out=tmp_path, steps=60,
                      progress=False, subscribers=[plot])
    folder = Path(out.session)
    assert (folder / "dataset.csv").exists() and "kind = \"samples\"" in (folder / "protocol.toml").read_text()
    df = out.frame()
    assert set(df["phase"]) == {"free", "clamped", "eval"} and df["step"].max() == 60
    ev = out.evaluations()
    assert list(ev.columns[:3]) == ["step", "train_mse", "test_mse"]
    assert ev["train_mse"].iloc[-1] < ev["train_mse"].iloc[0] / 5  # it learns the two samples
    train_rows = df[(df.phase == "free") & (df.split == "train")]
    np.testing.assert_allclose(sorted(set(train_rows["set_n1"].round(9))), [0.6, 1.0])  # the given inputs
    assert "labnet run:" in repr(out) and out._repr_html_().startswith("<pre>")
    assert plot.frames >= 6 and (tmp_path / "live.png").stat().st_size > 5000


def test_samples_session_resumes_from_its_own_copy(tmp_path: Path) -> None:
    from labnet.app.runner import resume_session
    from labnet.experiments.events import StepDone

    def stop_at_20(ev: object) -> None:
        if isinstance(ev, StepDone) and ev.step == 20:
            raise KeyboardInterrupt("test stop")

    with pytest.raises(KeyboardInterrupt):
        run_samples(ALLOSTERY, X, Y, out=tmp_path, steps=40, progress=False, subscribers=[stop_at_20])
    folder = next(tmp_path.iterdir())
    done = resume_session(folder, progress=False)  # the temporary samples file is gone: dataset.csv
    assert done.result.status == "completed" and done.result.steps == 40


@pytest.mark.parametrize("kw, key", [
    ({"inputs": X[:, :1]}, "inputs"), ({"targets": Y[:2]}, "targets"),
    ({"inputs": np.array([[np.nan, 0.1], [0.2, 0.2], [0.1, 0.1]])}, "inputs"),
])
def test_run_samples_bad_shapes(kw: dict, key: str, tmp_path: Path) -> None:
    args = {"inputs": X, "targets": Y, **kw}
    with pytest.raises(ConfigError, match=key):
        run_samples(ALLOSTERY, args["inputs"], args["targets"], out=tmp_path, progress=False)
    assert not list(tmp_path.iterdir())  # nothing started


def test_in_a_real_jupyter_kernel(tmp_path: Path) -> None:
    """A notebook executed by a Jupyter kernel: the live plot is one display output updated in
    place, the outcome renders as its summary, the session is a DataFrame."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    cells = [
        "import numpy as np, labnet\n"
        f"plot = labnet.LivePlot(every=5)\n"
        f"out = labnet.run_samples({str(ALLOSTERY)!r}, np.array([[1.0, 0.3]]), np.array([[0.25, 0.15]]),"
        f" out={str(tmp_path)!r}, steps=30, subscribers=[plot])",
        "out",
        "print('frames', plot.frames, 'rows', len(out.frame()))",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    first = nb.cells[0].outputs
    images = [o for o in first if o.get("output_type") == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) == 1  # one figure, updated in place (update_display), not 7 new ones
    widget = [o for o in first if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    text = [o for o in first if o.get("output_type") == "stream" and "30/30" in o.get("text", "")]
    assert widget or text, first  # tqdm's progress: a widget (ipywidgets installed) or the text bar
    shown = nb.cells[1].outputs[0]["data"]
    assert "labnet run:" in shown["text/plain"] and shown["text/html"].startswith("<pre>")
    frames = int(nb.cells[2].outputs[0]["text"].split()[1])
    assert frames >= 6  # redrawn while it ran (30 steps, every 5, plus the end)
