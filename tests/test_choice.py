"""``method="auto"`` from the cost model of labnet.insilico.choice (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest

from labnet.core.generators import delaunay_network, square_lattice
from labnet.core.solvers import HAVE_QDLDL, ReducedLaplacian
from labnet.insilico import choice
from labnet.insilico.trainer import CoupledLearning


def _allostery(net, **kw) -> CoupledLearning:  # type: ignore[no-untyped-def]
    k = 10 ** np.random.default_rng(1).uniform(-4, -3, net.n_edges)
    return CoupledLearning(net, k, [[1.0, 0.0]], [[0.3, 0.6]], alpha=1e-3, eta=0.5, **kw)


def test_small_networks_stay_dense_without_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(choice, "factor_counts", lambda lap: pytest.fail("no factor analysis for tiny networks"))
    cl = _allostery(delaunay_network(12, seed=0, n_inputs=2, n_outputs=2))
    assert cl.method == "dense" and cl.choice is not None and cl.choice.estimates == {}


def test_1024_edge_delaunay_gets_a_sparse_method() -> None:
    """The issue's case: 1,024 edges (345 free nodes) went dense although a sparse refactorisation is faster."""
    net = delaunay_network(348, seed=0, n_inputs=2, n_outputs=2)
    assert net.n_edges == 1024
    cl = _allostery(net)
    assert cl.choice is not None and cl.method == "direct"
    est = cl.choice.estimates
    assert min(est, key=est.__getitem__).startswith("direct") and any(k in est for k in ("band", "dense", "kernel"))
    s = cl.choice.structure
    assert s.n_free == cl.n_free and s.nnz_factor >= s.n_free and s.flops_factor >= s.nnz_factor and s.bandwidth > 0


def test_choice_is_the_cheapest_prediction_and_deterministic() -> None:
    for net in (square_lattice(12, 12, seed=0, n_inputs=2, n_outputs=2), delaunay_network(600, seed=2, n_inputs=2, n_outputs=2)):
        a, b = _allostery(net), _allostery(net)
        assert a.choice is not None and b.choice is not None
        assert a.method == b.method and a.choice.estimates == b.choice.estimates
        best = min(a.choice.estimates, key=a.choice.estimates.__getitem__)
        assert a.method == ("dense" if best in ("band", "dense", "kernel") else best.split("/")[0])


def test_cost_model_orders_work_sensibly() -> None:
    """More fill, more flops: the factor's work grows with the network; dense work grows as F³."""
    small = choice.structure(_red(delaunay_network(200, seed=0, n_inputs=2, n_outputs=2)))
    big = choice.structure(_red(delaunay_network(2000, seed=0, n_inputs=2, n_outputs=2)))
    for model in ("dense", "band", "direct/qdldl", "pcg/qdldl"):
        assert choice.work(model, big, 3, 2) > choice.work(model, small, 3, 2) > 0
    ratio = choice.work("dense", big, 3, 2) / choice.work("dense", small, 3, 2)
    assert ratio > (big.n_free / small.n_free) ** 2.5


def _red(net) -> ReducedLaplacian:  # type: ignore[no-untyped-def]
    return ReducedLaplacian(net, net.indices([net.ground, *net.inputs]))


@pytest.mark.skipif(not HAVE_QDLDL, reason="qdldl not installed")
def test_factor_counts_match_the_factor() -> None:
    """Σ column counts = nnz of L + diagonal (QDLDL's own factor), and SuperLU's fallback count is of the same order."""
    import qdldl
    import scipy.sparse as sp

    red = _red(delaunay_network(500, seed=1, n_inputs=2, n_outputs=2))
    lap = red.matrix(np.ones(red.network.n_edges))
    counts = choice.factor_counts(lap)
    low = qdldl.Solver(sp.triu(lap, format="csc"), upper=True).factors()[0]
    assert counts.sum() == low.nnz + red.n_free
    assert counts.min() >= 1
