"""``[train] keep`` / ``labnet run --keep best|final``: which state a run ends in (issue 16, item 5).

With ``keep = "best"`` the run writes back the codes of the evaluation with the lowest train
error once training ends, re-measures them (rows ``phase = "kept"``), records what it did in a
``# kept`` line and the checkpoint, and its summary reports the kept state. The best-so-far is
part of the checkpoint, so a resumed run keeps the true best of all its attempts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labnet.app.runner import resume_session, run_protocol
from labnet.app.summary import summary
from labnet.config.protocol import load_protocol
from labnet.core.errors import ConfigError
from labnet.experiments.engine import StateMeasured
from labnet.session.folder import read_markers, read_session

ROOT = Path(__file__).resolve().parent.parent
RIG = ROOT / "protocols" / "rigs" / "sim16.toml"

# the default allostery task: the sign rule overshoots after step 50 (train mse 1.00e-6 at step 50,
# 1.20e-6 at step 60; measured), so the best evaluation is not the last one
TEXT = f"""
[protocol]
name = "keep"
rig = "{RIG}"
seed = 1

[task]
kind = "allostery"
inputs_v = [1.0, 0.3]
targets_v = [0.25, 0.15]

[rule]
kind = "sign"
deadband_siemens = 1e-7

[train]
steps = 60
eval_every = 10
settle_s = 0.01
measurement = "fixed"  # this run overshoots (its best evaluation is not its last), which keep = "best" needs
"""


class Crash(Exception):
    pass


class CrashAt:
    """Raise :class:`Crash` at the ``n``-th measured state (0-based)."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def __call__(self, ev: object) -> None:
        if isinstance(ev, StateMeasured):
            if self.seen == self.n:
                raise Crash(f"crash at state {self.n}")
            self.seen += 1


def _protocol(tmp_path: Path, keep: str | None = None, text: str = TEXT):
    p = tmp_path / "keep.toml"
    p.write_text(text)
    return load_protocol(p, keep=keep)


def _codes(df: pd.DataFrame) -> np.ndarray:
    return df[[c for c in df.columns if c.startswith("code_e")]].to_numpy()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    d = tmp_path_factory.mktemp("keep")
    return {keep: run_protocol(_protocol(d, keep), session_dir=d / keep, progress=False)
            for keep in ("best", "final")}


def test_keep_best_writes_back_the_best_evaluation(runs) -> None:
    out = runs["best"]
    r = out.result
    assert r.status == "completed" and r.kept is not None
    evs = {e.step: e.train["mse"] for e in r.evaluations}
    best_step = min(evs, key=lambda s: (evs[s], s))
    assert r.kept.from_step == best_step != r.final.step  # the run overshot: the last evaluation is worse
    assert r.kept.best_train_mse == evs[best_step] < r.kept.final_train_mse == evs[r.final.step]
    df = read_session(out.session)
    best_rows = df[(df["phase"] == "eval") & (df["step"] == best_step)]
    kept_rows = df[df["phase"] == "kept"]
    assert len(kept_rows) == len(best_rows) == 2  # train and test sample, re-measured
    assert (df.tail(2)["phase"] == "kept").all()  # the session's last rows describe the state left in
    np.testing.assert_array_equal(_codes(kept_rows), _codes(best_rows))
    np.testing.assert_array_equal(r.final_codes, _codes(best_rows)[0])
    np.testing.assert_array_equal(r.kept.codes, _codes(best_rows)[0])
    # re-measured with fresh meter noise (2e-5 V per reading): close to the best, below the final
    again = r.kept.evaluation.train["mse"]
    assert abs(again - r.kept.best_train_mse) < 0.5 * r.kept.best_train_mse
    assert again < r.kept.final_train_mse
    assert kept_rows[kept_rows["split"] == "train"]["error"].iloc[0] == pytest.approx(again)
    marker = read_markers(out.session / "session.csv", "kept")
    assert len(marker) == 1 and marker[0]["from_step"] == best_step and marker[0]["keep"] == "best"
    text = summary(out)
    assert f"codes of step {best_step}" in text and "re-measured" in text
    assert f"-> {again:.4g} V²" in text  # the error line reports the state the network is left in
    from labnet.app.report import write_report

    md = write_report(out.session).read_text(encoding="utf-8")
    assert f"`keep = best` wrote back the codes of step {best_step}" in md


def test_keep_final_is_the_default_and_unchanged(tmp_path: Path, runs) -> None:
    plain = run_protocol(_protocol(tmp_path), session_dir=tmp_path / "plain", progress=False)
    assert plain.protocol.train.keep == "final" and plain.result.kept is None
    fin = read_session(runs["final"].session).drop(columns=["time_s"])
    pd.testing.assert_frame_equal(read_session(plain.session).drop(columns=["time_s"]), fin)
    assert "kept" not in set(fin["phase"])
    assert not read_markers(runs["final"].session / "session.csv", "kept")
    np.testing.assert_array_equal(runs["final"].result.final_codes, _codes(fin.tail(1))[0])
    # keep = "best" changes nothing before the end of training
    best = read_session(runs["best"].session).drop(columns=["time_s"])
    pd.testing.assert_frame_equal(best[best["phase"] != "kept"].reset_index(drop=True), fin)


def test_resume_keeps_the_best_of_every_attempt(tmp_path: Path, runs) -> None:
    proto = _protocol(tmp_path, "best")
    folder = tmp_path / "s"
    # state 121 is step 55's clamped state: after the best evaluation (step 50), before the last (60)
    with pytest.raises(Crash):
        run_protocol(proto, session_dir=folder, progress=False, subscribers=[CrashAt(121)])
    out = resume_session(folder, progress=False)
    ref = runs["best"].result
    assert out.result.kept is not None and out.result.kept.from_step == ref.kept.from_step
    np.testing.assert_array_equal(out.result.final_codes, ref.final_codes)
    assert out.result.kept.evaluation == ref.kept.evaluation  # exact resume, down to the meter noise


class CrashAfterKept:
    """Raise at the :class:`Kept` event (``at="kept"``: its rows and marker written, no checkpoint
    yet) or at the checkpoint that follows it (``at="checkpoint"``: checkpoint.json holds it)."""

    def __init__(self, at: str) -> None:
        self.at = at

    def __call__(self, ev: object) -> None:
        from labnet.experiments.events import Checkpoint, Kept

        if self.at == "kept" and isinstance(ev, Kept):
            raise Crash("at the write-back")
        if self.at == "checkpoint" and isinstance(ev, Checkpoint) and ev.state["kept"] is not None:
            raise Crash("after the write-back's checkpoint")


@pytest.mark.parametrize("at", ["kept", "checkpoint"])
def test_crash_at_the_write_back_then_resume(tmp_path: Path, runs, at: str) -> None:
    folder = tmp_path / "s"
    with pytest.raises(Crash):
        run_protocol(_protocol(tmp_path, "best"), session_dir=folder, progress=False,
                     subscribers=[CrashAfterKept(at)])
    out = resume_session(folder, progress=False)
    ref = runs["best"].result
    assert out.result.kept is not None and out.result.kept.from_step == ref.kept.from_step
    np.testing.assert_array_equal(out.result.final_codes, ref.final_codes)
    df = read_session(out.session, keep_superseded=True)
    kept = df[df["phase"] == "kept"]
    if at == "checkpoint":  # the checkpoint had it: the resume does not write back or re-measure again
        assert set(kept["attempt"]) == {0} and len(kept) == 2
        assert out.result.kept.evaluation == ref.kept.evaluation
    else:  # no checkpoint after it: the resumed attempt keeps the same best state again
        assert set(kept["attempt"]) == {0, 1} and len(kept) == 4
    assert read_markers(folder / "session.csv", "kept")[-1]["from_step"] == ref.kept.from_step


def test_bad_keep_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--keep: keep: expected one of final, best, got 'bestest'"):
        _protocol(tmp_path, "bestest")
    with pytest.raises(ConfigError, match=r"train.keep.*final.*best"):
        _protocol(tmp_path, text=TEXT + 'keep = "last"\n')
    p = tmp_path / "keep.toml"
    p.write_text(TEXT)
    cli = subprocess.run([sys.executable, "-m", "labnet.app.cli", "run", str(p), "--keep", "bestest",
                          "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2, cli.stderr
    lines = cli.stderr.strip().splitlines()
    assert len(lines) == 1 and "--keep" in lines[0] and "final, best" in lines[0]
    assert not (tmp_path / "out").exists()  # refused before any session folder or instrument
