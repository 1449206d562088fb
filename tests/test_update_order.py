"""Random-order desynchronous updates (Wycoff et al., J. Chem. Phys. 156, 144903, 2022):
which edges move when, over many steps, and a bench run that learns and resumes the same order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_rule_variants import _protocol  # the allostery protocol with extra [rule] lines

from labnet.core.errors import ConfigError
from labnet.core.rules import Rule
from labnet.core.update_order import moving_edges, order_step


def test_each_edge_moves_exactly_once_per_sweep_in_random_order() -> None:
    e, groups = 16, 4
    masks = np.array([moving_edges(e, s, groups, seed=5) for s in range(1, 4 * 200 + 1)])  # 200 sweeps
    per_sweep = masks.reshape(200, groups, e)
    assert np.all(per_sweep.sum(axis=1) == 1)  # every edge once per sweep
    assert np.all(masks.sum(axis=1) == e // groups)  # a quarter of the edges per step
    when = per_sweep.argmax(axis=1)  # (sweeps, E): the step of its sweep an edge moves in
    counts = np.array([(when == t).sum(axis=0) for t in range(groups)])  # (groups, E)
    # uniform over the sweep's 4 steps: 50 expected each, binomial sd ≈ 6.1 → bounds of ±5 sd
    assert counts.min() > 20 and counts.max() < 80
    assert len({tuple(w) for w in when}) > 150  # orders differ from sweep to sweep
    assert np.array_equal(masks[17], moving_edges(e, 18, groups, seed=5))  # pure function of (seed, step)
    assert not np.array_equal(masks[:8], [moving_edges(e, s, groups, seed=6) for s in range(1, 9)])


def test_uneven_groups_and_simultaneous() -> None:
    m = np.array([moving_edges(10, s, 3, seed=0) for s in (1, 2, 3)])
    assert sorted(m.sum(axis=1)) == [3, 3, 4] and np.all(m.sum(axis=0) == 1)
    taps = np.arange(1, 11)
    assert order_step(taps, "simultaneous", 2, 3, 0) is taps
    assert np.all(moving_edges(10, 7, 1, 0))
    out = order_step(taps, "random", 2, 3, 0)
    assert np.array_equal(out != 0, m[1]) and np.array_equal(out[m[1]], taps[m[1]])


def test_rule_step_uses_the_order() -> None:
    dk, slope = np.full(12, 1e-5), np.full(12, 1e-6)
    r = Rule(kind="coupled", max_taps=4, update_order="random", update_groups=3, order_seed=2)
    moved = np.array([r.step(dk, slope, np.random.default_rng(0), s) != 0 for s in (1, 2, 3)])
    assert np.all(moved.sum(axis=0) == 1) and np.all(moved.sum(axis=1) == 4)


@pytest.mark.parametrize("lines, key", [('update_order = "shuffled"\n', "rule.update_order"),
                                        ("update_groups = 0\n", "rule.update_groups"),
                                        ("update_groups = 17\n", "rule.update_groups")])
def test_bad_order_keys(lines: str, key: str, tmp_path: Path) -> None:
    from labnet.config.protocol import load_protocol

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_protocol(_protocol(tmp_path, lines))


def test_random_order_learns_on_the_simulated_bench(tmp_path: Path) -> None:
    """Allostery on sim16, sign rule, 4 groups of 4 edges: learns; the header records the order;
    only the scheduled edges change code at each step."""
    from labnet.app.runner import run_protocol
    from labnet.config.protocol import load_protocol
    from labnet.session.reader import read_header

    proto = load_protocol(_protocol(tmp_path, 'update_order = "random"\nupdate_groups = 4\n'))
    assert proto.rule.order_seed == proto.seed
    out = run_protocol(proto, tmp_path / "s", progress=False)
    e0, e1 = out.result.initial.train["mse"], out.result.final.train["mse"]
    assert e1 < e0 / 100, (e0, e1)
    header = read_header(next((tmp_path / "s").rglob("session.csv")))
    assert header["rule"]["update_order"] == "random" and header["rule"]["update_groups"] == 4
    df = out.frame()
    free = df[df.phase == "free"].drop_duplicates("step").set_index("step").sort_index()
    codes = free[[f"code_e{e}" for e in range(16)]].to_numpy()  # codes during step s (before its update)
    steps = free.index.to_numpy()
    for i in range(len(steps) - 1):
        if steps[i + 1] == steps[i] + 1:
            changed = codes[i + 1] != codes[i]
            assert not np.any(changed & ~moving_edges(16, int(steps[i]), 4, proto.seed))
