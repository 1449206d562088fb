"""labnet infer: role ranking from probe responses (labnet/core/infer.py, app/infer_cmd.py, insilico/infer_ensemble.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labnet.app.cli import main
from labnet.core.infer import chance, fit_transfer, infer_roles, topk_hits
from labnet.insilico.infer_ensemble import EnsembleSpec, run_ensemble

ROOT = Path(__file__).resolve().parents[1]


def test_fit_transfer_recovers_a_linear_map_exactly():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(5, 3))
    v = rng.uniform(0, 0.5, (20, 3))
    np.testing.assert_allclose(fit_transfer(v, v @ t.T + 0.1), t, atol=1e-12)
    with pytest.raises(ValueError, match="at least D"):
        fit_transfer(v[:3], v[:3] @ t.T)


def test_change_of_a_rank_one_transfer_ranks_its_support_first():
    t0 = np.full((4, 3), 0.1)
    t1 = t0.copy()
    t1[2, 1] += 0.3  # training changed node m2's response to drive d1
    inf = infer_roles(t1, ["d0", "d1", "d2"], ["m0", "m1", "m2", "m3"], t0)
    assert inf.inputs[0] == "d1" and inf.outputs[0] == "m2" and inf.share == pytest.approx(1.0)
    assert topk_hits(inf.outputs, ["m2"], 1) == 1.0 and chance(2, 4) == 0.5


def test_ensemble_accuracy_beats_chance_by_three_binomial_sd():
    """24 trained networks: measured (seed 1) outputs top-1 0.75, inputs top-1 0.42 (chance 0.20, 0.25)."""
    rows = run_ensemble(EnsembleSpec(networks=24, seed=1))
    n = len(rows)
    for key, cand, true_n in (("change_out_top1", 5, 1), ("change_in_top1", 4, 2)):
        p = chance(1, cand)
        sd = np.sqrt(p * (1 - p) / (n * true_n))
        acc = float(np.mean([r[key] for r in rows]))
        assert acc > p + (3 if "out" in key else 2) * sd, (key, acc, p, sd)


def test_cli_ranks_a_real_probe_session_on_the_simulated_bench(tmp_path, capsys):
    probe = str(ROOT / "protocols" / "probe.toml")
    assert main(["probe", probe, "--samples", "12", "--out", str(tmp_path / "a")]) == 0
    assert main(["probe", probe, "--samples", "12", "--out", str(tmp_path / "b")]) == 0
    (a,), (b,) = (tmp_path / "a").iterdir(), (tmp_path / "b").iterdir()
    capsys.readouterr()
    assert main(["infer", str(b), "--before", str(a)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("inputs"))
    assert sorted(n.split(" ")[0] for n in line.split("inputs", 1)[1].strip().split(", ")) == ["n1", "n2", "n5", "n7"]
    assert "recorded outputs: n3, n4" in out
    assert main(["infer", str(b)]) == 0


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    assert main(["infer", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "probe session folder" in err
