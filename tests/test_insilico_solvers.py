"""The linear-algebra back ends: reduced-Laplacian assembly, factorisations, block PCG, Solver back ends."""

from __future__ import annotations

import numpy as np
import pytest

from labnet import solve
from labnet.core.generators import delaunay_network, square_lattice
from labnet.core.physics import Solver
from labnet.core.solvers import HAVE_CHOLMOD, HAVE_QDLDL, DenseCholesky, ReducedLaplacian, SparseCholesky, block_pcg

BACKENDS = ["splu"] + (["cholmod"] if HAVE_CHOLMOD else []) + (["qdldl"] if HAVE_QDLDL else [])


@pytest.fixture(scope="module")
def net_k() -> tuple:
    net = delaunay_network(400, seed=3, n_inputs=3, n_outputs=2)
    k = 10 ** np.random.default_rng(3).uniform(-6, -3, net.n_edges)
    return net, k


def test_reduced_laplacian_matches_slices(net_k: tuple) -> None:
    net, k = net_k
    held = net.indices([net.ground, *net.inputs])
    red = ReducedLaplacian(net, held)
    lap = net.laplacian(k).toarray()
    f = red.free_idx
    np.testing.assert_allclose(red.matrix(k).toarray(), lap[np.ix_(f, f)], rtol=1e-15, atol=0)
    np.testing.assert_allclose(red.dense(k), lap[np.ix_(f, f)], rtol=1e-14, atol=1e-20)
    np.testing.assert_allclose(red.coupling(k), lap[np.ix_(f, held)], rtol=1e-15, atol=0)
    # the pattern is fixed: new conductances give the new matrix
    k2 = k[::-1].copy()
    np.testing.assert_allclose(red.matrix(k2).toarray(), net.laplacian(k2).toarray()[np.ix_(f, f)], rtol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sparse_cholesky_refactor(net_k: tuple, backend: str) -> None:
    net, k = net_k
    red = ReducedLaplacian(net, net.indices([net.ground, *net.inputs]))
    fac = SparseCholesky(red.matrix(k), backend)
    rng = np.random.default_rng(0)
    b = rng.random((red.n_free, 3))
    for kk in (k, k * rng.uniform(0.5, 2.0, k.size)):
        fac.refactor(red.matrix(kk))
        a = red.dense(kk)
        np.testing.assert_allclose(fac.solve(b), np.linalg.solve(a, b), rtol=1e-9)
    assert fac.n_factorisations == 3


@pytest.mark.skipif(not HAVE_QDLDL, reason="qdldl not installed")
def test_qdldl_refactor_from_upper_data(net_k: tuple) -> None:
    """The direct strategy's fast path: the upper triangle's data mapped straight from k."""
    net, k = net_k
    red = ReducedLaplacian(net, net.indices([net.ground, *net.inputs]))
    fac = SparseCholesky(red.matrix(k), "qdldl")
    up_map = red.data_map[np.flatnonzero(fac.upper_mask)]
    b = np.random.default_rng(1).random((red.n_free, 3))
    k2 = k * np.random.default_rng(2).uniform(0.5, 2.0, k.size)
    fac.refactor_upper(up_map @ k2)
    np.testing.assert_allclose(fac.solve(b), np.linalg.solve(red.dense(k2), b), rtol=1e-9)
    assert fac.n_factorisations == 2
    with pytest.raises(ValueError, match="qdldl"):
        SparseCholesky(red.matrix(k), "splu").refactor_upper(up_map @ k2)
    assert SparseCholesky(red.matrix(k), "splu").upper_mask is None


@pytest.mark.skipif(not HAVE_CHOLMOD, reason="scikit-sparse not installed (optional 'fast' extra)")
@pytest.mark.parametrize("mode", ["simplicial", "supernodal", "auto"])
def test_cholmod_modes_agree(net_k: tuple, mode: str) -> None:
    net, k = net_k
    red = ReducedLaplacian(net, net.indices([net.ground, *net.inputs]))
    fac = SparseCholesky(red.matrix(k), "cholmod", mode=mode)
    b = np.ones(red.n_free)
    np.testing.assert_allclose(fac.solve(b), np.linalg.solve(red.dense(k), b), rtol=1e-10)


def test_unknown_backend_rejected(net_k: tuple) -> None:
    net, k = net_k
    red = ReducedLaplacian(net, net.indices([net.ground]))
    with pytest.raises(ValueError):
        SparseCholesky(red.matrix(k), "umfpack")


def test_block_pcg_stale_preconditioner() -> None:
    net = square_lattice(30, 30, seed=1)
    red = ReducedLaplacian(net, net.indices([net.ground, *net.inputs]))
    rng = np.random.default_rng(1)
    k = 10 ** rng.uniform(-4, -3, net.n_edges)
    fac = SparseCholesky(red.matrix(k), "splu")
    k2 = k * rng.uniform(0.9, 1.1, k.size)  # 10% drift since the factorisation
    a2 = red.matrix(k2)
    b = rng.random((red.n_free, 4))
    res = block_pcg(a2.__matmul__, fac.solve, b, rtol=1e-12, maxiter=60)
    assert res.converged and 0 < res.iterations < 30
    np.testing.assert_allclose(res.x, np.linalg.solve(a2.toarray(), b), rtol=1e-8)
    # a warm start at the answer needs no iteration
    again = block_pcg(a2.__matmul__, fac.solve, b, res.x, rtol=1e-6)
    assert again.iterations == 0
    # a preconditioner far off needs more iterations than one close by
    far = block_pcg(a2.__matmul__, lambda r: r, b, rtol=1e-12, maxiter=5)
    assert not far.converged


def test_dense_cholesky_wrapper() -> None:
    a = np.array([[4.0, 1.0], [1.0, 3.0]])
    d = DenseCholesky(a)
    np.testing.assert_allclose(d.solve(np.array([1.0, 2.0])), np.linalg.solve(a, [1.0, 2.0]), rtol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_solver_backends_agree(backend: str) -> None:
    net = square_lattice(30, 30, seed=5, n_outputs=2)
    k = 10 ** np.random.default_rng(5).uniform(-6, -3, net.n_edges)
    held = {n: 0.7 for n in net.inputs}
    s = Solver(net, k, list(held), backend=backend)
    assert not s.dense and s.backend == backend
    ref = Solver(net, k, list(held), backend="splu").solve(held)
    np.testing.assert_allclose(s.solve(held), ref, rtol=1e-10, atol=1e-14)
    clamp = {n: 0.2 for n in net.outputs}
    np.testing.assert_allclose(s.clamped(held, clamp), solve(net, k, {**held, **clamp}), rtol=1e-10, atol=1e-13)
