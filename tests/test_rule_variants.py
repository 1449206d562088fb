"""Rules from the field, tap-quantised like the others: power-efficient coupled learning
(Stern et al., APL Mach. Learn. 2, 016114, 2024) and desynchronous updates (Wycoff et al.,
J. Chem. Phys. 156, 144903, 2022), each against its formula."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labnet.core.errors import ConfigError
from labnet.core.rules import Rule, coupled_learning, desynchronise, power_efficient

ROOT = Path(__file__).resolve().parent.parent


def test_power_efficient_formula() -> None:
    rng = np.random.default_rng(1)
    vf, vc = rng.normal(size=50), rng.normal(size=50)
    alpha, eta, lam = 2e-3, 0.4, 0.3
    expect = (alpha / eta) * ((1 - lam) * vf**2 - vc**2)  # Δk = −(α/η)[(ΔV^C)² − (1−λ)(ΔV^F)²]
    np.testing.assert_allclose(power_efficient(vf, vc, alpha=alpha, eta=eta, lam=lam), expect, rtol=1e-15)
    # λ = 0 is coupled learning, bit for bit; a batch axis is averaged
    assert np.array_equal(power_efficient(vf, vc, alpha=alpha, eta=eta, lam=0.0),
                          coupled_learning(vf, vc, alpha=alpha, eta=eta))
    b = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    np.testing.assert_allclose(power_efficient(*b, alpha=alpha, eta=eta, lam=lam),
                               np.mean((alpha / eta) * ((1 - lam) * b[0] ** 2 - b[1] ** 2), axis=1))
    # the penalty: with no nudge (ΔV^C = ΔV^F) every conductance falls, by λ·(α/η)·(ΔV^F)²
    np.testing.assert_allclose(power_efficient(vf, vf, alpha=alpha, eta=eta, lam=lam), -(alpha / eta) * lam * vf**2)
    assert Rule(formula="power_efficient", power_lambda=lam, alpha=alpha, eta=eta).dk(vf, vc) == pytest.approx(expect)


def test_desynchronous_updates_keep_each_edge_with_probability_p() -> None:
    step = np.ones(200_000, dtype=np.int64)
    rng = np.random.default_rng(7)
    kept = desynchronise(step, 0.3, rng)
    assert set(np.unique(kept)) == {0, 1} and kept.dtype == step.dtype
    assert kept.mean() == pytest.approx(0.3, abs=0.005)  # binomial: sd 0.001
    state = rng.bit_generator.state
    assert desynchronise(step, 1.0, rng) is step and rng.bit_generator.state == state  # p = 1 draws nothing
    signed = np.array([-3, 2, 0, 1, -1] * 1000)
    out = desynchronise(signed, 0.5, np.random.default_rng(2))
    assert np.all((out == 0) | (out == signed))  # an edge moves as the rule says, or not at all


def test_rule_step_applies_desynchrony_after_quantising() -> None:
    dk = np.full(1000, 1e-5)
    slope = np.full(1000, -1e-6)  # 10 taps wanted, in the −code direction
    r = Rule(kind="coupled", max_taps=4, update_probability=0.25)
    taps = r.step(dk, slope, np.random.default_rng(3))
    assert set(np.unique(taps)) == {-4, 0} and 0.2 < np.mean(taps != 0) < 0.3
    assert np.array_equal(Rule(kind="coupled", max_taps=4).step(dk, slope, np.random.default_rng(3)), np.full(1000, -4))


def _protocol(tmp: Path, rule_lines: str) -> Path:
    text = (ROOT / "protocols" / "allostery.toml").read_text().replace(
        'rig = "rigs/sim16.toml"', f'rig = "{(ROOT / "protocols" / "rigs" / "sim16.toml").as_posix()}"')
    text = text.replace("deadband_siemens = 1e-7    # S\n", "deadband_siemens = 1e-7    # S\n" + rule_lines)
    p = tmp / "p.toml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("lines, key", [
    ('formula = "power"\n', "rule.formula"), ('formula = "power_efficient"\npower_lambda = 1.5\n', "rule.power_lambda"),
    ("power_lambda = 0.2\n", "rule.power_lambda"), ("update_probability = 0\n", "rule.update_probability"),
    ("update_probability = 1.2\n", "rule.update_probability"),
])
def test_bad_rule_keys(lines: str, key: str, tmp_path: Path) -> None:
    from labnet.config.protocol import load_protocol

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_protocol(_protocol(tmp_path, lines))


def test_variants_learn_on_the_simulated_bench(tmp_path: Path) -> None:
    """Allostery, 300 steps, sign rule on sim16: the power-efficient rule ends at lower free-state
    dissipation than coupled learning; desynchronous updates (p = 0.5) still learn."""
    from labnet.app.runner import run_protocol
    from labnet.config.protocol import load_protocol

    def run(lines: str) -> tuple[float, float, float]:
        out = run_protocol(load_protocol(_protocol(tmp_path, lines)), tmp_path / "s", progress=False)
        df = out.frame()
        free = df[df.phase == "free"]
        net, model = out.rig.network, out.rig.model
        last = free.iloc[-1]
        v = np.array([last[f"v_{n}"] for n in net.nodes])
        k = model.conductance(np.array([last[f"code_e{e}"] for e in range(net.n_edges)]))
        return out.result.initial.train["mse"], out.result.final.train["mse"], float(np.sum(k * net.delta_v(v) ** 2))

    e0, e_cl, p_cl = run("")
    _, e_pe, p_pe = run('formula = "power_efficient"\npower_lambda = 0.3\n')
    _, e_ds, _ = run("update_probability = 0.5\n")
    assert e_cl < e0 / 1000 and e_ds < e0 / 1000  # both learn (measured: 8.4e-6 and 3.2e-5 V² from 0.076)
    assert p_pe < 0.8 * p_cl  # measured 0.23 vs 0.34 mW
    assert e_pe < e0 / 10  # at a cost in error (measured 4.7e-3 V²)
