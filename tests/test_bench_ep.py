"""Equilibrium propagation on the bench (issue 15 item 2): outputs nudged by currents β(V_T − V^F)
from Keithley 2450s (rig sim16-ep.toml), Δk = (α/β)[(ΔV^F)² − (ΔV^N)²] (Scellier & Bengio 2017),
quantised by the sign rule — checked row by row against the session's own measurements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_bad_input import Spy, _check, _run, spy  # noqa: F401 - the spy fixture

from labnet.app.cli import main
from labnet.config.rigfile import load_rig
from labnet.core.conductance import PartModel
from labnet.core.rules import Rule, coupled_learning, equilibrium_propagation, sign_step
from labnet.session.reader import read_session

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "protocols" / "allostery-ep.toml"
RIG = ROOT / "protocols" / "rigs" / "sim16-ep.toml"


def test_ep_formula_and_nudge() -> None:
    rng = np.random.default_rng(0)
    dvf, dvn = rng.normal(size=16), rng.normal(size=16)
    rule = Rule(formula="ep", alpha=4e-7, beta_siemens=2e-4)
    assert np.allclose(rule.dk(dvf, dvn), (4e-7 / 2e-4) * (dvf**2 - dvn**2), rtol=1e-15, atol=0)
    assert np.allclose(rule.nudge(np.array([0.4, 0.5]), np.array([0.25, 0.15])), [-3e-5, -7e-5], rtol=1e-12)
    cl = Rule(eta=0.5)
    assert np.allclose(cl.nudge(np.array([0.4]), np.array([0.2])), [0.3])
    # the same Δk as coupled learning when α/β = α_CL/η
    assert np.allclose(equilibrium_propagation(dvf, dvn, alpha=4e-7, beta=2e-4),
                       coupled_learning(dvf, dvn, alpha=1e-3, eta=0.5), rtol=1e-12)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ep")  # every state at 1 NPLC: the formula, not the plan's holds, decides
    text = PROTO.read_text().replace('rig = "rigs/', f'rig = "{ROOT}/protocols/rigs/').replace(
        "settle_s = 0.01", 'settle_s = 0.01\nmeasurement = "fixed"')
    (out / "p.toml").write_text(text)
    assert main(["run", str(out / "p.toml"), "--steps", "150", "--quiet", "--out", str(out / "s")]) == 0
    return next((out / "s").iterdir())


def test_ep_on_the_bench_learns_and_records_its_nudges(session: Path) -> None:
    """150 steps: the error falls ≥ 100×; every nudged row injects β(V_T − V^F) measured in the
    free row before it, the outputs are at 0 A in the free state, the rows say ``nudged``."""
    df = read_session(session / "session.csv")
    ev = df[df.phase == "eval"]
    assert ev.error.iloc[0] / ev.error.iloc[-1] > 100
    free, nudged = df[df.phase == "free"], df[df.phase == "nudged"]
    assert len(free) == len(nudged) == 150 and "clamped" not in set(df.phase)
    assert (free.iset_n3 == 0).all() and (free.iset_n4 == 0).all()
    for o, t in (("n3", 0.25), ("n4", 0.15)):
        assert np.allclose(nudged[f"iset_{o}"].to_numpy(), 2e-4 * (t - free[f"v_{o}"].to_numpy()), rtol=1e-9, atol=1e-15)
    assert "set_n3" not in df.columns


def test_ep_updates_follow_the_formula_on_the_measured_states(session: Path) -> None:
    """Each step's code change is the sign rule on (α/β)[(ΔV^F)² − (ΔV^N)²] from that step's
    measured free and nudged rows (nominal model slope, dead band 1e-7 S), clipped to the limits."""
    spec = load_rig(RIG)
    net = spec.network
    df = read_session(session / "session.csv")
    code_cols = [f"code_e{j}" for j in range(net.n_edges)]
    v_cols = [f"v_{n}" for n in net.nodes]
    model = PartModel(spec.part, net.n_edges)
    checked = 0
    for step in range(1, 40):
        f = df[(df.step == step) & (df.phase == "free")].iloc[0]
        n = df[(df.step == step) & (df.phase == "nudged")].iloc[0]
        nxt = df[(df.step == step + 1) & (df.phase == "free")]
        if nxt.empty:
            break
        codes = f[code_cols].to_numpy(dtype=np.int64)
        dk = equilibrium_propagation(net.delta_v(f[v_cols].to_numpy(float)), net.delta_v(n[v_cols].to_numpy(float)),
                                     alpha=4e-7, beta=2e-4)
        want = np.clip(codes + sign_step(dk, model.slope(codes), deadband=1e-7), spec.limits.code_min,
                       spec.limits.code_max)
        assert np.array_equal(nxt.iloc[0][code_cols].to_numpy(dtype=np.int64), want), f"step {step}"
        checked += 1
    assert checked >= 30


R_EP = RIG.read_text()
P_EP = PROTO.read_text().replace('rig = "rigs/sim16-ep.toml"', 'rig = "rig.toml"')
BAD = [
    ("ep-on-voltage-outputs", (ROOT / "protocols" / "rigs" / "sim16.toml").read_text(), P_EP,
     ("rule.formula", "no current source")),
    ("coupled-on-current-outputs", R_EP, P_EP.replace('formula = "ep"', 'formula = "coupled"')
     .replace("beta_siemens = 2e-4", ""), ("rule.formula", "use formula = \"ep\"")),
    ("ep-without-beta", R_EP, P_EP.replace("beta_siemens = 2e-4", ""), ("rule.beta_siemens", "β > 0")),
    ("beta-negative", R_EP, P_EP.replace("beta_siemens = 2e-4", "beta_siemens = -1e-4"), ("rule.beta_siemens",)),
    ("beta-without-ep", (ROOT / "protocols" / "rigs" / "sim16.toml").read_text(),
     P_EP.replace('formula = "ep"', 'formula = "coupled"'), ("rule.beta_siemens", 'only used with formula = "ep"')),
]


@pytest.mark.parametrize(("name", "rig_text", "proto_text", "expect"), BAD, ids=[b[0] for b in BAD])
def test_bad_ep_protocol_is_one_line(name: str, rig_text: str, proto_text: str, expect: tuple[str, ...],
                                     tmp_path: Path, spy: Spy, capsys: pytest.CaptureFixture) -> None:  # noqa: F811
    (tmp_path / "rig.toml").write_text(rig_text)
    (tmp_path / "p.toml").write_text(proto_text)
    code, err = _run(["run", str(tmp_path / "p.toml"), "--quiet", "--out", str(tmp_path / "s")], capsys)
    _check(code, err, expect, spy)


def test_a_unit_injection_carries_at_most_its_current_through_any_edge() -> None:
    """The superposition bound's lemma (labnet/bench/current_drive.py): one current source alone,
    the held nodes at 0 V — no edge carries more than the injected current (300 random networks)."""
    from labnet import random_network
    from labnet.core.currents import solve_injected

    for seed in range(300):
        rng = np.random.default_rng([seed, 7])
        n = int(rng.integers(6, 25))
        net = random_network(n, int(rng.integers(n + 1, min(60, n * (n - 1) // 2) + 1)), seed=rng, n_inputs=2,
                             n_outputs=1)
        k = 10 ** rng.uniform(-6, -2, net.n_edges)
        v = solve_injected(net, k, {net.inputs[0]: 0.0}, {net.outputs[0]: 1.0})
        assert np.max(np.abs(k * net.delta_v(v))) <= 1.0 + 1e-9


@pytest.mark.parametrize(("proto_name", "crash_at"), [("allostery-ep.toml", 13), ("allostery-ep.toml", 6),
                                                     ("allostery-current.toml", 13), ("allostery-current.toml", 6)])
def test_current_sessions_crash_and_resume_exactly(proto_name: str, crash_at: int, tmp_path: Path) -> None:
    """A crash mid-step (the current sources on), then ``resume``: the safe state holds (current
    sources off first), the checkpoint's held pattern may hold negative nudge currents (refused as
    "a count or a time" before: found by the fault campaign on sim16-ep), and the resumed rows
    equal the uninterrupted run's."""
    import pandas as pd
    from test_resume import Crash, CrashAt

    from labnet.app.runner import resume_session, run_protocol
    from labnet.config.protocol import load_protocol
    from labnet.session.status import read_status

    text = (ROOT / "protocols" / proto_name).read_text().replace('rig = "rigs/', f'rig = "{ROOT}/protocols/rigs/')
    text = text.replace("steps = 300", "steps = 12").replace("eval_every = 10", "eval_every = 4")
    p = tmp_path / "p.toml"
    p.write_text(text)
    ref = run_protocol(load_protocol(p), session_dir=tmp_path / "ref", progress=False)
    folder = tmp_path / "s"
    with pytest.raises(Crash):
        run_protocol(load_protocol(p), session_dir=folder, progress=False, subscribers=[CrashAt(crash_at)])
    st = read_status(folder)
    assert st["status"] == "failed" and st["safe_state"] is True
    out = resume_session(folder, progress=False)
    assert out.result.status == "completed"
    np.testing.assert_array_equal(out.result.final_codes, ref.result.final_codes)
    pd.testing.assert_frame_equal(read_session(folder).drop(columns=["time_s", "attempt"]),
                                  read_session(ref.session).drop(columns=["time_s", "attempt"]))
