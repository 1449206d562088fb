"""Local learning rules: values, quantisation, clipping, locality."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labnet.core.conductance import PartModel
from labnet.core.parts import CATALOG
from labnet.core.rules import (
    Rule,
    apply_step,
    coupled_learning,
    nearest_step,
    sign_step,
    stochastic_round,
    stochastic_step,
)

X9C = CATALOG["X9C103"]


def test_coupled_learning_formula_and_batch_mean() -> None:
    dvf = np.array([0.5, 0.1, -0.3])
    dvc = np.array([0.4, 0.2, -0.3])
    dk = coupled_learning(dvf, dvc, alpha=2.0, eta=0.5)
    np.testing.assert_allclose(dk, 4.0 * (dvf**2 - dvc**2))
    batch = coupled_learning(np.stack([dvf, 2 * dvf], 1), np.stack([dvc, 2 * dvc], 1), alpha=2.0, eta=0.5)
    np.testing.assert_allclose(batch, 4.0 * 2.5 * (dvf**2 - dvc**2))


def test_sign_step_moves_one_tap_against_slope_with_deadband() -> None:
    slope = PartModel(X9C, 4).slope(np.array([50, 50, 50, 50]))
    assert np.all(slope < 0)  # conductance falls as the code rises
    step = sign_step(np.array([1e-5, -1e-5, 1e-9, 0.0]), slope, deadband=1e-7)
    np.testing.assert_array_equal(step, [-1, 1, 0, 0])


def test_stochastic_round_is_unbiased() -> None:
    rng = np.random.default_rng(0)
    x = np.full(200_000, 0.3)
    r = stochastic_round(x, rng)
    assert set(np.unique(r)) == {0, 1}
    assert abs(r.mean() - 0.3) < 0.005
    neg = stochastic_round(np.full(200_000, -1.75), rng)
    assert set(np.unique(neg)) == {-2, -1} and abs(neg.mean() + 1.75) < 0.005


def test_stochastic_and_nearest_steps_clip_to_max_taps() -> None:
    rng = np.random.default_rng(1)
    slope = np.full(3, -1e-6)
    dk = np.array([-1e-4, 1e-4, -2.4e-6])  # wants +100, -100, +2.4 taps
    s = stochastic_step(dk, slope, rng, max_taps=3)
    assert s[0] == 3 and s[1] == -3 and s[2] in (2, 3)
    np.testing.assert_array_equal(nearest_step(dk, slope, max_taps=3), [3, -3, 2])


def test_apply_step_clips_to_code_range() -> None:
    np.testing.assert_array_equal(apply_step(np.array([10, 50, 99]), np.array([-3, 2, 4]), 10, 99), [10, 52, 99])


@settings(max_examples=60, deadline=None)
@given(
    arrays(float, 12, elements=st.floats(-1, 1)),
    arrays(float, 12, elements=st.floats(-1, 1)),
    st.integers(0, 11),
    st.floats(-1, 1),
)
def test_rules_are_local(dvf: np.ndarray, dvc: np.ndarray, j: int, new: float) -> None:
    """Changing one edge's drops changes only that edge's update."""
    codes = np.full(12, 40)
    slope = PartModel(X9C, 12).slope(codes)
    for kind in ("sign", "stochastic", "coupled"):
        rule = Rule(kind=kind, eta=0.5, alpha=1e-3, deadband_siemens=1e-6, max_taps=3)
        a = rule.step(rule.dk(dvf, dvc), slope, np.random.default_rng(5))
        dvf2 = dvf.copy()
        dvf2[j] = new
        b = rule.step(rule.dk(dvf2, dvc), slope, np.random.default_rng(5))
        others = np.arange(12) != j
        np.testing.assert_array_equal(a[others], b[others])
