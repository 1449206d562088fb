"""In-silico training fast paths agree with the plain physics (two fresh direct solves per sample).

Stated tolerances: dense and direct sparse paths agree with the reference to 1e-10 relative;
PCG (relative residual 1e-12) to 1e-8 relative in Δk and node voltages; the compiled numba
kernel, the vectorised NumPy batch and the single-network trainer agree to 1e-12 relative.
"""

from __future__ import annotations

import numpy as np
import pytest

import labnet.core.solvers as solvers
import labnet.insilico.direct as direct
import labnet.insilico.trainer as ins
from labnet import Network
from labnet.core.conductance import PartModel
from labnet.core.generators import breadboard16, delaunay_network, random_network, square_lattice
from labnet.core.parts import get_part
from labnet.core.rules import Rule, apply_step, coupled_learning
from labnet.insilico.batched import HAVE_NUMBA, _train_small_py, train_small, train_small_parallel
from labnet.insilico.dense import DenseSolve
from labnet.insilico.trainer import BatchedCoupledLearning, CoupledLearning, direct_states

ALPHA, ETA = 1e-3, 0.5


def reference_dk(net: Network, k: np.ndarray, x: np.ndarray, t: np.ndarray, eta: float = ETA) -> tuple[np.ndarray, float]:
    """Δk averaged over samples and the mean free error, each sample from two fresh direct solves."""
    dks, errs = [], []
    out = net.indices(net.outputs)
    for xs, ts in zip(np.atleast_2d(x), np.atleast_2d(t)):
        vf, vc = direct_states(net, k, xs, ts, eta)
        dks.append(coupled_learning(net.delta_v(vf), net.delta_v(vc), alpha=ALPHA, eta=eta))
        errs.append(np.mean((vf[out] - ts) ** 2))
    return np.mean(dks, axis=0), float(np.mean(errs))


def _setup(net: Network, n_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = 10 ** rng.uniform(-4, -3, net.n_edges)
    x = rng.uniform(0, 1, (n_samples, len(net.inputs)))
    t = rng.uniform(0.1, 0.4, (n_samples, len(net.outputs)))
    return k, x, t


NETS = {
    "breadboard16": lambda: breadboard16(),
    "random60": lambda: random_network(30, 60, seed=3, n_inputs=3, n_outputs=2),
    "delaunay-sparse": lambda: delaunay_network(600, seed=1, n_inputs=2, n_outputs=2),
}


@pytest.mark.parametrize("name", list(NETS))
@pytest.mark.parametrize("method", ["dense", "direct", "pcg"])
@pytest.mark.parametrize("n_samples", [1, 3, 40])  # fixed-input columns, explicit per sample, moments
def test_gradient_matches_direct_solves(name: str, method: str, n_samples: int) -> None:
    net = NETS[name]()
    k, x, t = _setup(net, n_samples)
    cl = CoupledLearning(net, k, x, t, alpha=ALPHA, eta=ETA, method=method, k_min=1e-5, k_max=1e-2, use_kernel=False)
    for _ in range(3):  # move the conductances (and, for PCG, let the factor go stale)
        cl.step()
    dk, err = cl.gradient()
    ref, ref_err = reference_dk(net, cl.k, x, t)
    tol = 1e-8 if method == "pcg" else 1e-10
    np.testing.assert_allclose(dk, ref, rtol=0, atol=tol * np.abs(ref).max())
    assert err == pytest.approx(ref_err, rel=tol)
    # a subset of samples (minibatch)
    dk2, _ = cl.gradient([0])
    np.testing.assert_allclose(dk2, reference_dk(net, cl.k, x[:1], t[:1])[0], rtol=0, atol=tol * np.abs(ref).max())


def test_states_match_direct_solves() -> None:
    net = delaunay_network(500, seed=4, n_inputs=2, n_outputs=2)
    k, x, t = _setup(net, 4)
    cl = CoupledLearning(net, k, x, t, alpha=ALPHA, eta=ETA, method="pcg")
    cl.train(5)
    vf, vc = cl.states()
    for s in range(4):
        rf, rc = direct_states(net, cl.k, x[s], t[s], ETA)
        np.testing.assert_allclose(vf[:, s], rf, rtol=0, atol=1e-9)
        np.testing.assert_allclose(vc[:, s], rc, rtol=0, atol=1e-9)


def test_pcg_goes_below_one_factorisation_per_step_and_tracks_direct() -> None:
    net = square_lattice(40, 40, seed=2)
    k, x, t = _setup(net, 1)
    kw = dict(alpha=ALPHA, eta=ETA, k_min=1e-5, k_max=1e-2)
    a = CoupledLearning(net, k, x, t, method="pcg", **kw)
    b = CoupledLearning(net, k, x, t, method="direct", **kw)
    ea, eb = a.train(30), b.train(30)
    np.testing.assert_allclose(ea, eb, rtol=1e-8)
    np.testing.assert_allclose(a.k, b.k, rtol=1e-8)
    assert a.stats.factorisations < 0.5 * a.stats.steps
    assert b.stats.factorisations == b.stats.steps
    assert ea[-1] < 0.8 * ea[0]  # it learns


def test_pcg_history_warm_start_cuts_iterations_and_stays_exact() -> None:
    net = square_lattice(40, 40, seed=2)
    k, x, t = _setup(net, 1)
    kw = dict(alpha=ALPHA, eta=ETA, k_min=1e-5, k_max=1e-2, method="pcg")
    runs = {h: CoupledLearning(net, k, x, t, history=h, refresh_cost=1e9, **kw) for h in (1, 8)}
    errs = {h: cl.train(25) for h, cl in runs.items()}
    np.testing.assert_allclose(errs[8], errs[1], rtol=1e-8)
    np.testing.assert_allclose(runs[8].k, runs[1].k, rtol=1e-8)
    assert runs[8].stats.factorisations == runs[1].stats.factorisations == 1  # same (first) factor throughout
    assert runs[8].stats.pcg_iterations < 0.6 * runs[1].stats.pcg_iterations
    dk, _ = runs[8].gradient()
    np.testing.assert_allclose(dk, reference_dk(net, runs[8].k, x, t)[0], rtol=0, atol=1e-8 * np.abs(dk).max())
    with pytest.raises(Exception, match="history"):
        CoupledLearning(net, k, x, t, history=0, **kw)


def test_pcg_history_auto_keeps_the_fastest_and_stays_exact() -> None:
    from labnet.insilico.pcg import HISTORY_CHOICES, TUNE_STEPS, TUNE_WARMUP

    net = square_lattice(30, 30, seed=3)
    k, x, t = _setup(net, 1)
    kw = dict(alpha=ALPHA, eta=ETA, k_min=1e-5, k_max=1e-2, method="pcg")
    auto, one = CoupledLearning(net, k, x, t, **kw), CoupledLearning(net, k, x, t, history=1, **kw)
    n = TUNE_WARMUP + len(HISTORY_CHOICES) * TUNE_STEPS + 5
    np.testing.assert_allclose(auto.train(n), one.train(n), rtol=1e-8)
    np.testing.assert_allclose(auto.k, one.k, rtol=1e-8)
    trials = auto.solver.history_trials
    assert sorted(trials) == sorted(HISTORY_CHOICES) and all(v > 0 for v in trials.values())
    assert auto.solver.history == min(trials, key=trials.__getitem__)
    with pytest.raises(Exception, match="history"):
        CoupledLearning(net, k, x, t, history="fast", **kw)


def test_pcg_warm_start_with_a_degenerate_history() -> None:
    # conductances that do not move: every difference of the history is zero
    net = square_lattice(20, 20, seed=4)
    k, x, t = _setup(net, 1)
    cl = CoupledLearning(net, k, x, t, alpha=ALPHA, eta=ETA, method="pcg")
    for _ in range(5):
        dk, _ = cl.gradient()
    assert cl.stats.factorisations == 1
    np.testing.assert_allclose(dk, reference_dk(net, k, x, t)[0], rtol=0, atol=1e-8 * np.abs(dk).max())
    # a jump after a still history: the guess is never worse than the previous solution alone
    cl.k = k * np.random.default_rng(1).uniform(0.9, 1.1, k.size)
    dk, _ = cl.gradient()
    np.testing.assert_allclose(dk, reference_dk(net, cl.k, x, t)[0], rtol=0, atol=1e-8 * np.abs(dk).max())


def test_pcg_recovers_from_a_large_change() -> None:
    net = delaunay_network(700, seed=5)
    k, x, t = _setup(net, 1)
    cl = CoupledLearning(net, k, x, t, alpha=ALPHA, eta=ETA, method="pcg")
    cl.train(2)
    nf = cl.stats.factorisations
    cl.k = cl.k * np.random.default_rng(0).uniform(0.2, 5.0, net.n_edges)  # far from the factor
    dk, _ = cl.gradient()
    np.testing.assert_allclose(dk, reference_dk(net, cl.k, x, t)[0], rtol=0, atol=1e-8 * np.abs(dk).max())
    # many iterations (or no convergence) -> the factor is refreshed, at once or at the next step
    cl.gradient()
    assert cl.stats.factorisations > nf
    it = cl.stats.pcg_iterations
    cl.gradient()
    assert cl.stats.pcg_iterations - it <= 3  # fresh factor: (nearly) no iterations


def test_epoch_of_many_samples_equals_mean_of_single_samples() -> None:
    net = delaunay_network(200, seed=6, n_inputs=3, n_outputs=2)
    k, x, t = _setup(net, 60)
    cl = CoupledLearning(net, k, x, t, alpha=ALPHA, eta=ETA, use_kernel=False)
    dk_epoch, err = cl.gradient()
    singles = [cl.gradient([s]) for s in range(60)]
    np.testing.assert_allclose(dk_epoch, np.mean([d for d, _ in singles], axis=0), rtol=0,
                               atol=1e-11 * np.abs(dk_epoch).max())
    assert err == pytest.approx(np.mean([e for _, e in singles]), rel=1e-11)


def test_single_sample_fast_path_equals_general_path() -> None:
    net = random_network(40, 90, seed=7, n_inputs=2, n_outputs=2)
    k, x, t = _setup(net, 3)
    kw = dict(alpha=ALPHA, eta=ETA, k_min=1e-5, k_max=1e-2, use_kernel=False)
    a = CoupledLearning(net, k, x, t, **kw)
    b = CoupledLearning(net, k, x, t, **kw)
    for i in range(10):
        ea = a.step([i % 3])
        dk, eb = b.gradient([i % 3])
        b.apply(dk)
        assert ea == pytest.approx(eb, rel=1e-12)
    np.testing.assert_allclose(a.k, b.k, rtol=1e-12)


@pytest.mark.parametrize("net", [square_lattice(10, 14, seed=3), delaunay_network(90, seed=0, n_inputs=2, n_outputs=2)])
def test_banded_single_sample_path_equals_general_path(net: Network) -> None:
    k, x, t = _setup(net, 3)
    kw = dict(alpha=ALPHA, eta=ETA, k_min=1e-5, k_max=1e-2, use_kernel=False, method="dense")
    a = CoupledLearning(net, k, x, t, **kw)
    b = CoupledLearning(net, k, x, t, **kw)
    # the reverse Cuthill–McKee band is used
    assert a.method == "dense" and isinstance(a.solver, DenseSolve) and a.solver.band is not None
    for i in range(10):
        ea = a.step([i % 3])
        dk, eb = b.gradient([i % 3])
        b.apply(dk)
        assert ea == pytest.approx(eb, rel=1e-12)
    np.testing.assert_allclose(a.k, b.k, rtol=1e-12)
    ref, _ = reference_dk(net, a.k, x[:1], t[:1])
    dk, _ = a.gradient([0])
    np.testing.assert_allclose(dk, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("method", ["direct", "pcg"])
@pytest.mark.parametrize("n_samples", [1, 3])
def test_sparse_single_sample_path_equals_general_path(method: str, n_samples: int) -> None:
    """The sparse strategies' lean one-sample step (SolveStrategy.single) against gradient + apply
    and against fresh direct solves (PCG: only with one training sample)."""
    net = delaunay_network(348, seed=0, n_inputs=2, n_outputs=2)
    k, x, t = _setup(net, n_samples)
    kw = dict(alpha=ALPHA, eta=ETA, k_min=1e-5, k_max=1e-2, method=method)
    a = CoupledLearning(net, k, x, t, **kw)
    b = CoupledLearning(net, k, x, t, **kw)
    for i in range(30):
        s = None if n_samples == 1 else [i % n_samples]
        ea = a.step(s)
        dk, eb = b.gradient(s)
        b.apply(dk)
        assert ea == pytest.approx(eb, rel=1e-9)
    np.testing.assert_allclose(a.k, b.k, rtol=1e-9)
    assert a.stats.steps == 30 and a.stats.factorisations + a.stats.pcg_solves >= 30
    ref, _ = reference_dk(net, a.k, x[:1], t[:1])
    a.k, k_before = a.k.copy(), a.k.copy()
    a.step(None if n_samples == 1 else [0])
    np.testing.assert_allclose(a.k - k_before, np.clip(k_before + ref, 1e-5, 1e-2) - k_before, rtol=0,
                               atol=1e-9 * np.abs(ref).max())


def test_training_reduces_error_allostery() -> None:
    net = breadboard16()
    k, _, _ = _setup(net, 1)
    x = np.array([[1.0, 0.3]])
    t = np.array([[0.25, 0.15]])
    cl = CoupledLearning(net, k, x, t, alpha=1e-3, eta=0.5, k_min=1e-5, k_max=1e-2)
    errs = cl.train(500)
    assert errs[-1] < 1e-3 * errs[0]
    assert np.all(cl.k >= 1e-5) and np.all(cl.k <= 1e-2)


def test_conductances_are_clipped() -> None:
    net = breadboard16()
    k, x, t = _setup(net, 1)
    cl = CoupledLearning(net, k, x, t, alpha=10.0, eta=0.5, k_min=2e-4, k_max=5e-4, use_kernel=False)
    cl.train(5)
    assert cl.k.min() >= 2e-4 and cl.k.max() <= 5e-4
    assert np.isclose(cl.k.min(), 2e-4) or np.isclose(cl.k.max(), 5e-4)


# ------------------------------------------------------------------ tap-quantised rules
@pytest.mark.parametrize("kind", ["sign", "stochastic", "coupled"])
def test_quantised_rules_follow_labnet_rules(kind: str) -> None:
    net = breadboard16()
    part = get_part("X9C103")
    model = PartModel(part, net.n_edges)
    codes = np.full(net.n_edges, 50)
    x, t = np.array([[1.0, 0.3]]), np.array([[0.25, 0.15]])
    rule = Rule(kind=kind, eta=ETA, alpha=ALPHA, deadband_siemens=1e-9, max_taps=3)
    cl = CoupledLearning(net, None, x, t, alpha=ALPHA, eta=ETA, rule=rule, model=model, codes=codes,
                         code_range=(1, part.max_code), seed=5)
    rng = np.random.default_rng(5)  # the same stream the trainer uses
    ref_codes = codes.copy()
    for _ in range(15):
        k = model.conductance(ref_codes)
        dk, _ = reference_dk(net, k, x, t)
        ref_codes = apply_step(ref_codes, rule.step(dk, model.slope(ref_codes), rng), 1, part.max_code)
        cl.step()
        np.testing.assert_array_equal(cl.codes, ref_codes)
        np.testing.assert_allclose(cl.k, model.conductance(ref_codes))
    assert np.any(cl.codes != codes)


def test_quantised_training_learns() -> None:
    net = breadboard16()
    part = get_part("X9C103")
    model = PartModel(part, net.n_edges)
    x, t = np.array([[1.0, 0.3]]), np.array([[0.25, 0.15]])
    rule = Rule(kind="sign", eta=ETA, alpha=ALPHA, deadband_siemens=1e-8)
    cl = CoupledLearning(net, None, x, t, alpha=ALPHA, eta=ETA, rule=rule, model=model,
                         codes=np.full(net.n_edges, 49), code_range=(10, 99))
    errs = cl.train(300)
    assert errs[-1] < 0.05 * errs[0]


# ------------------------------------------------------------------ batched small networks
def _batch_case(shared: bool, n_samples: int, b: int = 6) -> tuple[list[Network] | Network, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    nets: list[Network] | Network = (
        breadboard16() if shared else [random_network(10, 16, seed=i, n_inputs=2, n_outputs=2) for i in range(b)]
    )
    k = 10 ** rng.uniform(-4, -3, (b, 16))
    x = rng.uniform(0, 1, (b, n_samples, 2))
    t = rng.uniform(0.1, 0.3, (b, n_samples, 2))
    return nets, k, x, t


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("n_samples", [1, 7])
def test_batched_numpy_matches_single_trainers(shared: bool, n_samples: int) -> None:
    nets, k, x, t = _batch_case(shared, n_samples)
    alpha = np.geomspace(1e-4, 1e-2, len(k))
    bt = BatchedCoupledLearning(nets, k, x, t, alpha=alpha, eta=ETA, k_min=1e-5, k_max=1e-2, engine="numpy")
    errs = bt.train(4)
    for i in range(len(k)):
        net = nets if isinstance(nets, Network) else nets[i]
        cl = CoupledLearning(net, k[i], x[i], t[i], alpha=alpha[i], eta=ETA, k_min=1e-5, k_max=1e-2, use_kernel=False)
        e = cl.train(4)
        np.testing.assert_allclose(bt.k[i], cl.k, rtol=1e-12)
        np.testing.assert_allclose(errs[:, i], e, rtol=1e-12)


@pytest.mark.parametrize("shared", [True, False])
def test_kernel_reference_matches_numpy_engine(shared: bool) -> None:
    """The kernel's Python source (what numba compiles) computes what the NumPy engine computes."""
    nets, k, x, t = _batch_case(shared, 3, b=3)
    bt = BatchedCoupledLearning(nets, k, x, t, alpha=ALPHA, eta=ETA, k_min=1e-5, k_max=1e-2, engine="numpy")
    kb = k.copy()
    errs = np.empty((2, 3))
    _train_small_py(kb, bt.ends, bt.out_pos, bt._xb, bt._tb, bt.alpha, bt.eta, bt._kmin_b, bt._kmax_b, bt.f, 2, errs, bt.bw)
    e_np = bt.train(2)
    np.testing.assert_allclose(kb, bt.k, rtol=1e-12)
    np.testing.assert_allclose(errs, e_np, rtol=1e-12)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed (optional 'fast' extra); NumPy engine tested above")
@pytest.mark.parametrize("shared", [True, False])
def test_compiled_kernel_matches_numpy_engine(shared: bool) -> None:
    nets, k, x, t = _batch_case(shared, 2)
    kw = dict(alpha=np.geomspace(1e-4, 1e-2, len(k)), eta=ETA, k_min=1e-5, k_max=1e-2)
    a = BatchedCoupledLearning(nets, k, x, t, engine="numba", **kw)
    b = BatchedCoupledLearning(nets, k, x, t, engine="numpy", **kw)
    np.testing.assert_allclose(a.train(5), b.train(5), rtol=1e-12)
    np.testing.assert_allclose(a.k, b.k, rtol=1e-12)
    assert train_small is not None
    # split across threads in chunks: the same numbers
    p = BatchedCoupledLearning(nets, k, x, t, engine="numba", threads=2, **kw)
    errs = np.empty((5, len(k)))
    train_small_parallel(p._kb, p.ends, p.out_pos, p._xb, p._tb, p.alpha, p.eta, p._kmin_b, p._kmax_b, p.f, 5, errs, p.bw, 3)
    np.testing.assert_allclose(p.k, b.k, rtol=1e-12)
    # the single-network trainer uses the same kernel for full-batch steps of small networks
    net = nets if isinstance(nets, Network) else nets[0]
    c = CoupledLearning(net, k[0], x[0], t[0], alpha=1e-4, eta=ETA, k_min=1e-5, k_max=1e-2)
    assert c._kernel is not None
    d = CoupledLearning(net, k[0], x[0], t[0], alpha=1e-4, eta=ETA, k_min=1e-5, k_max=1e-2, use_kernel=False)
    np.testing.assert_allclose(c.train(5), d.train(5), rtol=1e-12)
    np.testing.assert_allclose(c.k, d.k, rtol=1e-12)


def test_batched_rejects_mismatched_networks() -> None:
    from labnet.core.errors import ConfigError

    nets = [random_network(10, 16, seed=0), random_network(11, 16, seed=1)]
    with pytest.raises(ConfigError):
        BatchedCoupledLearning(nets, np.ones((2, 16)) * 1e-4, np.ones((1, 2)), np.ones((1, 1)), alpha=1e-3, eta=0.5)


def test_batched_256_edges_lapack_branch() -> None:
    net = delaunay_network(90, seed=0, n_inputs=2, n_outputs=1)
    rng = np.random.default_rng(3)
    k = 10 ** rng.uniform(-4, -3, (3, net.n_edges))
    x, t = np.array([[1.0, 0.0]]), np.array([[0.3]])
    bt = BatchedCoupledLearning(net, k, x, t, alpha=ALPHA, eta=ETA, k_min=1e-5, k_max=1e-2, engine="numpy")
    assert bt.f > 24
    bt.train(3)
    for i in range(3):
        cl = CoupledLearning(net, k[i], x, t, alpha=ALPHA, eta=ETA, k_min=1e-5, k_max=1e-2, use_kernel=False)
        cl.train(3)
        np.testing.assert_allclose(bt.k[i], cl.k, rtol=1e-11)


# ------------------------------------------------------------------ without the optional extras
def test_scipy_fallback_without_cholmod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solvers, "DEFAULT_BACKEND", "splu")
    monkeypatch.setattr(direct, "DEFAULT_BACKEND", "splu")
    net = delaunay_network(600, seed=8, n_inputs=2, n_outputs=1)
    k, x, t = _setup(net, 1)
    for method in ("direct", "pcg"):
        cl = CoupledLearning(net, k, x, t, alpha=ALPHA, eta=ETA, method=method)
        assert cl.backend == "splu"
        cl.train(4)
        dk, _ = cl.gradient()
        np.testing.assert_allclose(dk, reference_dk(net, cl.k, x, t)[0], rtol=0, atol=1e-8 * np.abs(dk).max())
        factor = getattr(cl.solver, "factor", None)
        assert factor is not None and factor.backend == "splu"


def test_without_numba_single_trainer_uses_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ins._kernels, "HAVE_NUMBA", False)
    net = breadboard16()
    k, x, t = _setup(net, 1)
    cl = CoupledLearning(net, k, x, t, alpha=ALPHA, eta=ETA)
    assert cl._kernel is None
    bt = BatchedCoupledLearning(net, k[None], x, t, alpha=ALPHA, eta=ETA)
    assert bt.engine == "numpy"
    np.testing.assert_allclose(bt.train(3)[:, 0], cl.train(3), rtol=1e-12)
