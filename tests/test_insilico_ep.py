"""Equilibrium propagation in silico (issue 15, item 2; labnet.insilico.ep), against its formula.

Free state: inputs held, outputs free (L_ff V^F = −L_fh V_h); nudged state: a current
I_o = β(t_o − V^F_o) injected at each output, outputs not clamped (L_ff V^N = −L_fh V_h + I);
Δk = (α/β)[(ΔV^F)² − (ΔV^N)²] → −2α ∂C/∂k as β → 0, C = ½ mean_s Σ_o (V^F_o − t_o)²
(Scellier & Bengio 2017). The references here are explicit dense numpy solves of the Laplacian.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from labnet.config.sweep_file import load_sweep
from labnet.core.errors import ConfigError
from labnet.core.generators import random_network
from labnet.core.network import Network
from labnet.core.physics import laplacian_dense
from labnet.core.rules import Rule
from labnet.insilico.effects import PointSpec, prepare_voltage, run_chunk, run_point
from labnet.insilico.ep import EquilibriumPropagation, equilibrium_propagation
from labnet.insilico.trainer import CoupledLearning


def _states(net: Network, k: np.ndarray, x: np.ndarray, t: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Free and nudged node voltages (N,) for one sample, by two np.linalg.solve of the dense Laplacian."""
    lap = laplacian_dense(net, k)
    held = net.indices([net.ground, *net.inputs])
    free = np.setdiff1d(np.arange(net.n_nodes), held)
    vh = np.concatenate([[0.0], x])
    rhs = -lap[np.ix_(free, held)] @ vh
    vf = np.zeros(net.n_nodes)
    vf[held] = vh
    vf[free] = np.linalg.solve(lap[np.ix_(free, free)], rhs)
    out = net.indices(net.outputs)
    current = np.zeros(net.n_nodes)
    current[out] = beta * (t - vf[out])  # A, into each output node
    vn = vf.copy()
    vn[free] = np.linalg.solve(lap[np.ix_(free, free)], rhs + current[free])
    return vf, vn


def _explicit_dk(net: Network, k: np.ndarray, xs: np.ndarray, ts: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    dv = [tuple(net.delta_v(v) for v in _states(net, k, x, t, beta)) for x, t in zip(xs, ts)]
    return equilibrium_propagation(np.stack([f for f, _ in dv], 1), np.stack([n for _, n in dv], 1), alpha=alpha, beta=beta)


def _cost(net: Network, k: np.ndarray, xs: np.ndarray, ts: np.ndarray) -> float:
    """C = ½ mean_s Σ_o (V^F_o − t_o)² (V²)."""
    out = net.indices(net.outputs)
    return 0.5 * float(np.mean([np.sum((_states(net, k, x, t, 1.0)[0][out] - t) ** 2) for x, t in zip(xs, ts)]))


def _network(seed: int, n_out: int = 1) -> tuple[Network, np.ndarray]:
    rng = np.random.default_rng(seed)
    net = random_network(20, 40, seed=rng, n_inputs=2, n_outputs=n_out)
    return net, rng.uniform(2e-4, 1e-3, net.n_edges)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dk_is_the_ep_formula_on_explicit_solves(seed: int) -> None:
    """One sample (allostery: the samples' own solves), many samples with two outputs (the batch
    moments), a subset of them, and the tap-quantised trainer — all to 1e-9 of the explicit formula."""
    rng = np.random.default_rng(100 + seed)
    alpha, beta = 4e-6, 3e-4
    net, k = _network(seed)
    x, t = np.array([[1.0, 0.3]]), np.array([[0.8]])
    ep = EquilibriumPropagation(net, k, x, t, alpha=alpha, beta=beta)
    dk, err = ep.gradient()
    want = _explicit_dk(net, k, x, t, alpha, beta)
    np.testing.assert_allclose(dk, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())
    assert err == pytest.approx(2 * _cost(net, k, x, t), rel=1e-12)
    vf, vn = ep.states()
    np.testing.assert_allclose(np.stack(_states(net, k, x[0], t[0], beta), 1), np.hstack([vf, vn]), rtol=1e-10)

    net2, k2 = _network(10 + seed, n_out=2)
    xs, ts = rng.uniform(0, 1, (7, 2)), rng.uniform(0, 1, (7, 2))
    ep2 = EquilibriumPropagation(net2, k2, xs, ts, alpha=alpha, beta=beta, method=("dense", "direct", "pcg")[seed])
    for idx in (None, np.array([4, 1, 1, 6]), np.array([3])):  # all, a batch (moments), one sample (own solves)
        sel = slice(None) if idx is None else idx
        dk2, _ = ep2.gradient(idx)
        want2 = _explicit_dk(net2, k2, xs[sel], ts[sel], alpha, beta)
        np.testing.assert_allclose(dk2, want2, rtol=1e-9, atol=1e-12 * np.abs(want2).max())

    p = PointSpec(nodes=20, edges=40, part="MCP4151-103", rule="stochastic", tolerance=0.1, seed=seed,
                  formula="ep", alpha=alpha, beta_siemens=beta)
    vp = prepare_voltage(p)
    assert vp.taps is not None
    q = EquilibriumPropagation(vp.net, None, vp.x[None, :], np.array([[vp.t]]), alpha=alpha, beta=beta,
                               rule=Rule(kind="stochastic"), model=vp.taps.model, codes=vp.taps.codes,
                               code_range=(0, vp.taps.max_code))
    want_q = _explicit_dk(vp.net, q.k, vp.x[None, :], np.array([[vp.t]]), alpha, beta)
    np.testing.assert_allclose(q.gradient()[0], want_q, rtol=1e-9, atol=1e-12 * np.abs(want_q).max())


def test_ep_is_coupled_learning_when_the_nudge_matches_the_clamp() -> None:
    """One output: β = η / Z_oo puts the nudged output where coupled learning clamps it, so with
    α_EP = α_CL β/η both rules give the same Δk (the trainer's coupled learning is tested separately)."""
    net, k = _network(5)
    x, t = np.array([[1.0, 0.2]]), np.array([[0.7]])
    cl = CoupledLearning(net, k, x, t, alpha=5e-3, eta=0.4, use_kernel=False)
    _, z = cl.responses()
    beta = 0.4 / float(z[cl.out_pos][0, 0])
    ep = EquilibriumPropagation(net, k, x, t, alpha=5e-3 * beta / 0.4, beta=beta)
    want = cl.gradient()[0]
    np.testing.assert_allclose(ep.gradient()[0], want, rtol=1e-9, atol=1e-12 * np.abs(want).max())


def _fd_gradient(net: Network, k: np.ndarray, xs: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """∂C/∂k (V²/S) by central differences, step 1e-6 k_e."""
    g = np.empty(net.n_edges)
    for e in range(net.n_edges):
        h = 1e-6 * k[e]
        kp, km = k.copy(), k.copy()
        kp[e] += h
        km[e] -= h
        g[e] = (_cost(net, kp, xs, ts) - _cost(net, km, xs, ts)) / (2 * h)
    return g


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dk_approaches_the_cost_gradient_linearly_in_beta(seed: int) -> None:
    """Δk/(−2α) → ∂C/∂k (finite differences of C) with a relative error O(β): it falls about 10×
    per decade of β from 1e-4 to 1e-7 S. A sign error would leave a relative error of 2."""
    net, k = _network(20 + seed, n_out=1 + seed % 2)
    rng = np.random.default_rng(seed)
    xs, ts = rng.uniform(0, 1, (3, 2)), rng.uniform(0, 1, (3, len(net.outputs)))
    grad = _fd_gradient(net, k, xs, ts)
    alpha = 1e-6
    errs = []
    for beta in (1e-4, 1e-5, 1e-6, 1e-7):
        dk = EquilibriumPropagation(net, k, xs, ts, alpha=alpha, beta=beta).gradient()[0]
        errs.append(float(np.linalg.norm(dk / (-2 * alpha) - grad) / np.linalg.norm(grad)))
    ratios = np.array(errs[:-1]) / np.array(errs[1:])
    print("relative error at beta = 1e-4 ... 1e-7 S:", errs)
    assert errs[0] < 0.5 and errs[-1] < 1e-3, errs
    assert np.all((ratios > 9) & (ratios < 11)), (errs, ratios)


@pytest.mark.parametrize("taps", [False, True])
def test_ep_training_reduces_the_allostery_error(taps: bool) -> None:
    """run_point with formula = "ep" on 4 networks, continuous and on MCP4151-103 taps (R_AB ±10 %,
    stochastic rounding): the final error is at least 1000× below the initial one in every network."""
    base = PointSpec(nodes=30, edges=60, steps=400, demand=0.6, formula="ep", alpha=5e-6, beta_siemens=1e-5)
    if taps:
        base = dataclasses.replace(base, part="MCP4151-103", rule="stochastic", tolerance=0.1)
    for seed in range(4):
        r = run_point(dataclasses.replace(base, seed=seed))
        assert r["err_after"] < 1e-3 * r["err_before"], (seed, r["err_before"], r["err_after"])
        assert r["dk_rel"] > 0


def _sweep(tmp_path: Path, extra: str) -> Path:
    f = tmp_path / "s.toml"
    f.write_text(f'[sweep]\nname = "e"\n[base]\nnodes = 10\nedges = 20\n{extra}\n[[axis]]\nseeds = 2\n')
    return f


@pytest.mark.parametrize("extra,needles", [
    ('formula = "ep"', ("base.beta_siemens", "needs beta_siemens > 0")),
    ('formula = "ep"\nbeta_siemens = 0.0', ("base.beta_siemens", "needs beta_siemens > 0")),
    ('formula = "ep"\nbeta_siemens = -1e-4', ("base.beta_siemens",)),
    ('formula = "ep"\nbeta_siemens = inf', ("base.beta_siemens", "finite")),
    ('formula = "ep"\nbeta_siemens = nan', ("base.beta_siemens", "finite")),
    ('formula = "ep"\nbeta_siemens = "1e-4"', ("base.beta_siemens", "number")),
    ('beta_siemens = 1e-4', ("base.beta_siemens", "only applies")),
    ('formula = "ep"\nbeta_siemens = 1e-4\ninputs = "force"', ("base.formula", "voltage inputs")),
])
def test_bad_beta_is_one_line(tmp_path: Path, extra: str, needles: tuple[str, ...]) -> None:
    f = _sweep(tmp_path, extra)
    with pytest.raises(ConfigError) as e:
        load_sweep(f)
    msg = str(e.value)
    assert "\n" not in msg and str(f) in msg and all(n in msg for n in needles), msg


@pytest.mark.parametrize("beta", [0.0, -1.0, float("inf"), float("nan")])
def test_trainer_refuses_bad_beta(beta: float) -> None:
    net, k = _network(0)
    with pytest.raises(ConfigError, match="beta") as e:
        EquilibriumPropagation(net, k, np.array([[1.0, 0.0]]), np.array([[0.5]]), alpha=1e-6, beta=beta)
    assert "\n" not in str(e.value)


def test_sweep_points_take_ep_and_record_beta(tmp_path: Path) -> None:
    f = _sweep(tmp_path, 'formula = "ep"\nbeta_siemens = 2e-5\nalpha = 5e-6\nsteps = 20')
    sw = load_sweep(f)
    assert [(p.formula, p.beta_siemens) for p in sw.points] == [("ep", 2e-5)] * 2
    rows = run_chunk([(0, dataclasses.asdict(sw.points[0]))])
    assert rows[0]["formula"] == "ep" and rows[0]["beta_siemens"] == 2e-5
    assert rows[0]["err_after"] < rows[0]["err_before"]
    alone = run_point(sw.points[0])  # the chunk ran EP (not the packed coupled-learning trainer)
    assert all(rows[0][m] == alone[m] for m in ("err_after", "dk_rel", "lam_min_after"))
    cl = run_point(dataclasses.replace(sw.points[0], formula="coupled", beta_siemens=0.0))
    assert cl["err_after"] != alone["err_after"]
