"""Desynchronous updates in silico (issue 15, item 2): ``update_probability`` of a sweep point.

Definition (Wycoff, Tam, Rocks, Liu, Durian 2022, "Desynchronous learning in a physics-driven
learning network"; labnet.core.rules.desynchronise): every step each edge applies the tap change
its rule asks for with probability p, independently of the others and of earlier steps.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from labnet.config.sweep_file import load_sweep
from labnet.core.errors import ConfigError
from labnet.insilico.effects import PointSpec, _voltage_point, build_network, run_point, train_voltage

BASE = PointSpec(nodes=20, edges=40, part="X9C103", rule="sign", deadband_siemens=0.0, steps=1, block=1,
                 tol=0.0, alpha=5e-3, demand=0.9)


def _moved(p: PointSpec) -> tuple[int, int]:
    """Edges whose tap moved in one step, and edges whose rule asked for a move (the p = 1 run)."""
    rng = np.random.default_rng([p.sweep_seed, p.seed])
    net = build_network(p, rng)
    k0 = rng.uniform(p.k0_min_siemens, p.k0_max_siemens, net.n_edges)
    vp = _voltage_point(p, rng, net, k0)
    assert vp.taps is not None
    k1, _, _ = train_voltage(vp.net, vp.k0, vp.x, vp.t, p, vp.taps)
    moved = np.flatnonzero(~np.isclose(k1, vp.k0, rtol=1e-12, atol=0.0))
    return len(moved), net.n_edges


def test_each_edge_moves_with_probability_p() -> None:
    """Over 40 networks, the sign rule (dead band 0: every edge wants one tap) moves a fraction p of
    the edges that move synchronously — within 4 binomial standard deviations — and p = 1 moves them all."""
    for prob in (0.25, 0.6):
        moved = wanted = 0
        for seed in range(40):
            sync, _ = _moved(dataclasses.replace(BASE, seed=seed))
            desync, _ = _moved(dataclasses.replace(BASE, seed=seed, update_probability=prob))
            moved, wanted = moved + desync, wanted + sync
        sd = np.sqrt(wanted * prob * (1 - prob))
        assert wanted > 1000 and abs(moved - prob * wanted) < 4 * sd, (prob, moved, wanted)


def test_a_point_is_reproducible_and_p_changes_it() -> None:
    p = dataclasses.replace(BASE, steps=50, block=10, update_probability=0.5, seed=3)
    a, b = run_point(p), run_point(p)
    assert a.keys() == b.keys() and all(a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]) for k in a)  # NaN == NaN
    c = run_point(dataclasses.replace(p, update_probability=1.0))
    assert c["err_after"] != a["err_after"]


@pytest.mark.parametrize("extra,needles", [
    ('update_probability = 0.5', ("base.update_probability", "below 1 only with a tap rule")),
    ('update_probability = 0.0\npart = "X9C103"\nrule = "sign"',
     ("base.update_probability", "expected 0 < update_probability <= 1")),
    ('update_probability = 1.5\npart = "X9C103"\nrule = "sign"', ("update_probability",)),
    ('formula = "power_efficient"', ("base.formula",)),  # the power-efficient rule (tests/test_insilico_rules.py)
    ('power_lambda = 0.3\npart = "X9C103"\nrule = "sign"', ("base.power_lambda",)),
    ('formula = "hebbian"', ("base.formula",)),
])
def test_bad_rule_keys_of_a_point_are_one_line(tmp_path: Path, extra: str, needles: tuple[str, ...]) -> None:
    f = tmp_path / "s.toml"
    f.write_text(f'[sweep]\nname = "d"\n[base]\nnodes = 10\nedges = 20\n{extra}\n[[axis]]\nseeds = 2\n')
    with pytest.raises(ConfigError) as e:
        load_sweep(f)
    msg = str(e.value)
    assert "\n" not in msg and str(f) in msg and all(n in msg for n in needles), msg


def test_sweep_file_takes_it_as_an_axis(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('[sweep]\nname = "d"\n[base]\nnodes = 10\nedges = 20\npart = "X9C103"\nrule = "sign"\n'
                 '[[axis]]\ngrid = { update_probability = [0.25, 1.0] }\n')
    sw = load_sweep(f)
    assert [p.update_probability for p in sw.points] == [0.25, 1.0] and sw.varied == ("update_probability",)
