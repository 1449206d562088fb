"""Measurement planning (issue 17 item 5): the planner, the driver message, planned runs.

The NPLC choices are the DAQ970A's (Keysight DAQ970A/DAQ973A Programming Guide,
[SENSe:]VOLTage[:DC]:NPLC {0.02|0.2|1|2|10|20|100|200}; ``labnet.bench.catalog.METERS``,
row ``VOLT:DC:NPLC`` of drivers/SCPI.md); the noise falls as 1/√NPLC as the simulated meter
models it (``[simulator] meter_noise_v`` at 1 NPLC).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from labnet.app.measurement import measurement_plan, plan_text
from labnet.app.runner import run_protocol
from labnet.bench.catalog import METERS
from labnet.config.protocol import load_protocol
from labnet.core.errors import ConfigError
from labnet.experiments.measureplan import marginal_edges, plan_measurement
from labnet.session.reader import read_header

ROOT = Path(__file__).resolve().parent.parent
NPLC = METERS["DAQ970A"].nplc
SCAN = tuple(f"n{i}" for i in range(10))


def _plan(**kw: float):
    args = dict(alpha=1e-3, deadband_s=1e-7, sigma1_v=2e-5, v_scale=1.0, nplc_choices=NPLC, nplc_reread=1.0,
                plc_s=1 / 60, scan=SCAN)
    args.update(kw)
    return plan_measurement(**args)  # type: ignore[arg-type]


def test_tighter_tolerance_never_fewer_nplc_and_the_bound_holds():
    tols = [8.0, 4.0, 2.0, 1.0, 0.5, 0.3]
    nplcs = [_plan(tolerance=t, nplc_reread=200.0).nplc_train for t in tols]
    assert nplcs == sorted(nplcs)  # tighter -> more (or equal) NPLC
    assert nplcs[0] < nplcs[-1]
    for t in tols:
        p = _plan(tolerance=t, nplc_reread=200.0)
        assert p.sigma_d_v2 <= t * p.threshold_v2 + 1e-18  # the bound it was chosen by
        cheaper = [n for n in NPLC if n < p.nplc_train]
        if cheaper:  # the next cheaper NPLC would not meet it
            assert 4 * 2e-5 / math.sqrt(cheaper[-1]) > t * p.threshold_v2
    # the default tolerance on sim16's numbers: 0.2 NPLC (σ_D ≤ 1.79e-4 V² ≤ 2 × 1e-4 V²)
    p = _plan()
    assert p.nplc_train == 0.2 and p.nplc_reread == 1.0
    assert p.step_s == pytest.approx(2 * 10 * 0.2 / 60)
    # never above the rig's own NPLC
    assert _plan(tolerance=1e-6).nplc_train == 1.0


def test_marginal_triggers_exactly_for_marginal_edges():
    p = replace(_plan(), k_sigma=1.0)
    dvc = np.full(6, 0.3)
    sig = p.sigma_d(np.full(6, 0.3), dvc)[0]  # ≈ σ_D at |ΔV| ≈ 0.3 V (D small against ΔV²)
    # D = dvf² − dvc² at chosen distances from the threshold, in units of σ_D
    dist = np.array([-1.5, -0.8, -0.2, 0.2, 0.8, 3.0])
    d = p.threshold_v2 + dist * sig
    sign = np.array([1, -1, 1, -1, 1, -1])
    dvf = np.sqrt(dvc ** 2 + sign * d)
    m = marginal_edges(p, dvf, dvc)
    assert m.tolist() == (np.abs(dist) < p.k_sigma).tolist()  # k = 1: the middle four
    assert m.tolist() == [False, True, True, True, True, False]
    assert not marginal_edges(replace(p, k_sigma=0.0), dvf, dvc).any()


def test_planner_refuses_rules_without_a_dead_band():
    with pytest.raises(ValueError, match="dead band"):
        _plan(deadband_s=0.0)
    with pytest.raises(ValueError, match="on_marginal"):
        plan_measurement(alpha=1e-3, deadband_s=1e-7, sigma1_v=2e-5, v_scale=1.0, nplc_choices=NPLC,
                         nplc_reread=1.0, plc_s=1 / 60, scan=SCAN, on_marginal="guess")


def _protocol(tmp_path: Path, measurement: str, rule: str = 'kind = "sign"', extra: str = "") -> Path:
    text = (ROOT / "protocols" / "allostery.toml").read_text()
    text = text.replace('rig = "rigs/sim16.toml"', f'rig = "{ROOT / "protocols" / "rigs" / "sim16.toml"}"')
    text = text.replace('kind = "sign"          #', f'{rule}  #')
    text = text.replace("settle_s = 0.01", f'settle_s = 0.01\nmeasurement = "{measurement}"{extra}')
    f = tmp_path / f"p_{measurement}.toml"
    f.write_text(text)
    return f


def test_bad_measurement_values_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"measurement.*fixed.*planned"):
        load_protocol(_protocol(tmp_path, "guess"))
    with pytest.raises(ConfigError, match=r'measurement.*needs \[rule\] kind = "sign"'):
        load_protocol(_protocol(tmp_path, "planned", rule='kind = "coupled"'))


def test_planned_run_halves_bench_time_at_no_worse_error(tmp_path):
    """The issue's run, 300 steps, seeds 1–2 (all five: benchmarks/bench_plan.py): the default
    ("auto", planned here) takes at most half the modelled bench time of "fixed" and ends at an
    error no worse than 1.1 × fixed's."""
    out = {}
    for m in ("fixed", "auto"):
        times, errs = [], []
        for seed in (1, 2):
            proto = load_protocol(_protocol(tmp_path, m), seed=seed)
            o = run_protocol(proto, tmp_path / m, progress=False)
            times.append(o.result.bench_s)
            errs.append(o.result.final.train["mse"])
            header = read_header(next((tmp_path / m).glob("*")) / "session.csv") if seed == 1 else None
            if header is not None:
                assert ("measurement_plan" in header) == (m == "auto")
        out[m] = (np.mean(times), np.mean(errs))
    assert out["auto"][0] <= 0.5 * out["fixed"][0]
    assert out["auto"][1] <= 1.1 * out["fixed"][1]


def test_the_threshold_is_the_rules_dead_band_in_d():
    """|Δk| = (α/η)|D| for coupled learning and (α/β)|D| for EP: the plan's threshold in D is
    d·η/α (d·β/α), the value at which the sign rule's own decision flips."""
    from labnet.core.rules import Rule, sign_step

    for rule in (Rule(alpha=1e-3, eta=0.5, deadband_siemens=1e-7),
                 Rule(alpha=4e-7, formula="ep", beta_siemens=2e-4, deadband_siemens=1e-7)):
        thr = _plan(alpha=rule.dk_scale).threshold_v2
        dvc = np.full(2, 0.3)
        dvf = np.sqrt(dvc**2 + thr * np.array([0.999, 1.001]))
        assert sign_step(rule.dk(dvf, dvc), np.ones(2), deadband=1e-7).tolist() == [0, 1]


def test_auto_is_fixed_where_planning_cannot_help(tmp_path):
    """"auto" plans a sign rule on a wired rig; it is fixed for the stochastic rule, on the direct
    transport, and when the plan would not read faster than the rig's NPLC."""
    assert measurement_plan(load_protocol(_protocol(tmp_path, "auto"))) is not None
    assert measurement_plan(load_protocol(_protocol(tmp_path, "auto", rule='kind = "stochastic"'))) is None
    p = load_protocol(_protocol(tmp_path, "auto"))
    assert measurement_plan(replace(p, rig=replace(p.rig, transport="direct"))) is None
    slow = replace(p, rig=replace(p.rig, sim={**p.rig.sim, "mains_pickup_v": 3e-4}))
    assert measurement_plan(slow) is None  # pickup: whole PLCs, i.e. the rig's own 1 NPLC
    assert measurement_plan(replace(slow, train=replace(slow.train, measurement="planned"))).nplc_train == 1.0


def test_dry_run_text_names_the_plan_and_its_time(tmp_path):
    proto = load_protocol(_protocol(tmp_path, "planned"))
    plan = measurement_plan(proto)
    assert plan is not None and plan.record()["nplc_train"] == 0.2
    text = plan_text(proto, 43.0, 300)
    assert "training states at 0.2 NPLC" in text and "43.0 s, 143.3 ms per step" in text
    assert "fixed, every state at 1 NPLC" in plan_text(load_protocol(_protocol(tmp_path, "fixed")), 124.2, 300)


def test_daq_integration_change_is_the_manual_nplc_message():
    """DAQ970A Programming Guide, [SENSe:]VOLTage[:DC]:NPLC {0.02|0.2|1|...}, (@ch_list): the row
    ``VOLT:DC:NPLC`` of drivers/SCPI.md; the same message the scan set-up sends, with 0.2."""
    from drivers.daq970a import DAQ970A
    from drivers.testing import expected_protocol
    from tests.test_scpi_manual import DAQ_SCRIPT, LST

    script = [*DAQ_SCRIPT[:-1], (f"VOLT:DC:NPLC 0.2,{LST}", None)]
    with expected_protocol(DAQ970A, script) as m:
        m.configure(["101", "102", "103"])
        m.integration(1.0)  # already 1 NPLC: nothing sent
        m.integration(0.2)
        assert m.nplc == 0.2 and m.scan_time_s() == pytest.approx(3 * 0.2 / 60)
        with pytest.raises(ValueError):
            m.integration(0.5)  # not a DAQ970A value: refused before sending
