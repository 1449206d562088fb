"""Durability: ``kill -9`` at random moments of a real ``labnet run`` process.

For every kill: the session CSV parses with ``pandas.read_csv(path, comment="#")`` and holds
only complete rows (at least as many as the last checkpoint says were written), and
``resume`` then ends exactly where the uninterrupted run ends — same final codes, same
evaluations, same rows apart from wall-clock time.

``LABNET_KILLS`` sets the number of mid-run kills (default 20); each moment is drawn from a
seeded generator: after a random number of rows (0 to all) plus a random 0-20 ms. The rig is
sim16 without the wire (fast); ``LABNET_KILL_WIRE=1`` runs it through the real drivers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labnet.app.runner import resume_session, run_protocol
from labnet.config.protocol import load_protocol
from labnet.session.checkpoint import read_checkpoint
from labnet.session.folder import read_session, read_status

ROOT = Path(__file__).resolve().parent.parent
RIG = ROOT / "protocols" / "rigs" / "sim16.toml"
KILLS = int(os.environ.get("LABNET_KILLS", "20"))
WIRE = os.environ.get("LABNET_KILL_WIRE", "") == "1"  # 1: the emulated wire and real drivers (slower)

PROTOCOL = """
[protocol]
name = "kill9"
rig = "RIG"
seed = 3

[task]
kind = "regression"
n_train = 20
n_test = 4

[rule]
kind = "stochastic"
alpha = 2e-3
max_taps = 3

[train]
steps = 30
batch = 2
eval_every = 5
settle_s = 0.001
eval_train_max = 4
"""


def direct_rig(folder: Path) -> Path:
    """sim16 without the emulated wire (the same model; several times faster per step)."""
    text = RIG.read_text()
    if "[instruments" in text:
        text = text[:text.index("[instruments")]
    text = "\n".join(ln for ln in text.splitlines() if not ln.replace(" ", "").startswith("transport="))
    out = folder / "sim16-direct.toml"
    out.write_text(text + "\n")
    return out


def _launch(proto: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "labnet", "run", str(proto), "--out", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)


def _session(out: Path) -> Path | None:
    found = [d for d in out.iterdir() if d.is_dir()] if out.exists() else []
    return found[0] if found else None


def _complete_rows(df: pd.DataFrame) -> bool:
    must = ["step", "phase", "split", "sample", "attempt"] + [c for c in df.columns
                                                             if c.startswith(("v_", "code_e", "bench_s"))]
    return bool(df[must].notna().all().all())


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("kill9")
    proto_path = d / "p.toml"
    proto_path.write_text(PROTOCOL.replace('"RIG"', f'"{RIG if WIRE else direct_rig(d)}"'))
    ref = run_protocol(load_protocol(proto_path), session_dir=d / "reference", progress=False)
    return proto_path, ref, None


def _rows_written(out: Path, header_lines: int) -> int:
    folder = _session(out)
    if folder is None or not (folder / "session.csv").exists():
        return -1 if folder is None or not (folder / "run.json").exists() else 0
    return max(0, (folder / "session.csv").read_bytes().count(b"\n") - header_lines)


def _kill_at(launched: list[tuple[subprocess.Popen, Path, int, float]], header_lines: int) -> None:
    """SIGKILL each process ``delay`` s after it has written ``rows`` rows (unless it ended first)."""
    due: dict[int, float] = {}
    while any(p.poll() is None for p, *_ in launched):
        now = time.monotonic()
        for i, (proc, out, rows, delay) in enumerate(launched):
            if proc.poll() is not None:
                continue
            if i not in due and _rows_written(out, header_lines) >= rows:
                due[i] = now + delay
            if i in due and now >= due[i]:
                proc.send_signal(signal.SIGKILL)
        time.sleep(0.0005)
    for proc, *_ in launched:
        proc.wait()


def test_kill9_at_random_moments_then_resume(setup, tmp_path: Path) -> None:
    """Kill until ``KILLS`` processes died mid-run (two at a time: two cores).

    Each moment is drawn uniformly over the run's progress: after a random number of rows
    (0 … all; 0 = as soon as its session folder exists) plus a random 0–20 ms, so kills land
    anywhere — between rows, mid-step, while a checkpoint is replaced, in the evaluation.
    """
    proto_path, ref, _ = setup
    ref_csv = (ref.session / "session.csv").read_text().splitlines()
    header_lines = next(i for i, ln in enumerate(ref_csv) if not ln.startswith("#")) + 1
    total = len(pd.read_csv(ref.session / "session.csv", comment="#"))
    rng = np.random.default_rng(2026)
    outcomes = {"killed_mid_run": 0, "finished_first": 0}
    ref_rows = read_session(ref.session).drop(columns=["time_s", "attempt"])
    i = 0
    while outcomes["killed_mid_run"] < KILLS and i < 3 * KILLS:
        batch = [(f"k{i + j}", int(rng.integers(0, total)), float(rng.uniform(0.0, 0.02))) for j in range(2)]
        i += 2
        _kill_at([(_launch(proto_path, tmp_path / n), tmp_path / n, r, d) for n, r, d in batch], header_lines)
        for name, _, _ in batch:
            folder = _session(tmp_path / name)
            assert folder is not None and (folder / "run.json").exists()
            csv = folder / "session.csv"
            if csv.exists():
                df = pd.read_csv(csv, comment="#")
                assert _complete_rows(df), f"{name}: incomplete row"
                assert csv.read_bytes().endswith(b"\n")
                ck = read_checkpoint(folder)
                if ck is not None:
                    assert len(df) >= ck["csv_rows"]
            st = read_status(folder)
            if st is not None and st["status"] == "completed":
                outcomes["finished_first"] += 1
                continue
            outcomes["killed_mid_run"] += 1
            assert st is None or st["status"] == "running"  # SIGKILL: no chance to say more
            res = resume_session(folder, progress=False)
            assert res.result.status == "completed"
            np.testing.assert_array_equal(res.result.final_codes, ref.result.final_codes)
            assert [(e.step, e.train, e.test) for e in res.result.evaluations] == \
                [(e.step, e.train, e.test) for e in ref.result.evaluations]
            pd.testing.assert_frame_equal(read_session(folder).drop(columns=["time_s", "attempt"]), ref_rows)
    print(f"\nkill -9: {i} processes killed after 0..{total} rows + 0-20 ms: {outcomes}")
    assert outcomes["killed_mid_run"] >= KILLS


@pytest.mark.parametrize("lands", ["before the write", "after the write"])
def test_row_counts_match_the_file_when_a_signal_lands_beside_a_write(tmp_path: Path, monkeypatch, lands) -> None:
    """A stop signal can raise between a row's write(2) and its bookkeeping; the writer's
    ``rows``/``bytes`` (what status.json and checkpoints record) still match the file."""
    import labnet.session.writer as session

    w = session.SessionWriter(tmp_path, {"k": 1}, ["a", "b"])
    w.write({"a": 1, "b": 2})
    real = session.write_all

    def interrupted(fd, data):
        if lands == "after the write":
            real(fd, data)
        raise KeyboardInterrupt

    monkeypatch.setattr(session, "write_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        w.write({"a": 3, "b": 4})
    monkeypatch.setattr(session, "write_all", real)
    on_disk = pd.read_csv(tmp_path / "session.csv", comment="#")
    assert w.rows == len(on_disk) == (2 if lands == "after the write" else 1)
    assert w.bytes == (tmp_path / "session.csv").stat().st_size
    w.comment("run_ended", {"rows": w.rows})
    w.write({"a": 5, "b": 6})
    w.close()
    assert w.rows == len(pd.read_csv(tmp_path / "session.csv", comment="#"))
    assert w.bytes == (tmp_path / "session.csv").stat().st_size
