"""Tests of labnet.core.analysis against direct solves and independent formulas."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from labnet import delaunay_network, random_network, solve
from labnet.core.analysis import (
    eigenmodes,
    empirical_covariance,
    model_deff,
    model_gbar,
    participation_ratio,
    probe_covariance_model,
    reduced_hessian,
    talk_deff,
    task_modes,
    transfer_matrix,
)


def _k(net, seed=0):
    return np.random.default_rng(seed).uniform(1e-4, 1e-3, net.n_edges)


def test_mode_shares_sum_to_the_solved_output_response():
    net = random_network(20, 45, seed=3, n_inputs=2, n_outputs=1)
    k = _k(net)
    vin = {net.inputs[0]: 1.0, net.inputs[1]: 0.3}
    tm = task_modes(net, k, vin)
    v = solve(net, k, vin)
    assert tm.response == pytest.approx(v[net.index[net.outputs[0]]], rel=1e-10)
    assert np.sum(tm.c) == pytest.approx(tm.response, rel=1e-10)
    assert np.all(np.diff(tm.lam) >= 0) and tm.lam[0] > 0
    assert tm.share_soft == pytest.approx(tm.c[0] / tm.response)
    assert tm.share(len(tm.c)) == pytest.approx(1.0)


def test_reduced_hessian_is_laplacian_block_and_deff_matches_covariance():
    net = random_network(12, 25, seed=1)
    k = _k(net, 1)
    red = reduced_hessian(net, k, list(net.inputs))
    full = net.laplacian(k).toarray()
    assert np.allclose(red.h, full[np.ix_(red.free_idx, red.free_idx)])
    lam = np.linalg.eigvalsh(red.h)
    hinv = np.linalg.inv(red.h)
    # isotropic random forces: response covariance H^-2
    assert model_deff(lam) == pytest.approx(participation_ratio(hinv @ hinv), rel=1e-9)
    assert model_gbar(lam) == pytest.approx(np.sqrt(np.trace(hinv @ hinv)), rel=1e-9)
    assert talk_deff(lam) == pytest.approx(model_deff(lam) / 3)
    assert 1.0 <= model_deff(lam) <= red.h.shape[0]


def test_participation_ratio_limits():
    assert participation_ratio(np.diag([1.0, 0, 0])) == pytest.approx(1.0)
    assert participation_ratio(np.eye(5)) == pytest.approx(5.0)
    assert model_deff(np.array([1.0, 1e3, 1e3])) == pytest.approx(1.0, abs=1e-5)


def test_sparse_shift_invert_matches_dense_lowest_modes():
    net = delaunay_network(300, seed=2)
    k = _k(net, 2)
    red = reduced_hessian(net, k, list(net.inputs), dense=False)
    assert sp.issparse(red.h)
    lam_s, v_s = eigenmodes(red.h, 6)
    lam_d, v_d = eigenmodes(red.h.toarray())
    assert np.allclose(lam_s, lam_d[:6], rtol=1e-8)
    assert np.allclose(np.abs(np.sum(v_s * v_d[:, :6], axis=0)), 1.0, atol=1e-6)


def test_transfer_matrix_and_probe_covariance_match_sampled_solves():
    net = random_network(15, 30, seed=4, n_inputs=3)
    k = _k(net, 4)
    drive = list(net.inputs)
    t, free_idx = transfer_matrix(net, k, drive)
    rng = np.random.default_rng(0)
    vd = rng.uniform(0, 1, (4000, 3))
    v = solve(net, k, {n: vd[:, i] for i, n in enumerate(drive)})
    assert np.allclose(v[free_idx].T, vd @ t.T)
    cov_model, _ = probe_covariance_model(net, k, drive, 1 / 12)
    cov_emp = empirical_covariance(v[free_idx].T)
    assert participation_ratio(cov_emp) == pytest.approx(participation_ratio(cov_model), rel=0.05)


def test_task_modes_sparse_path_for_large_networks():
    from labnet.core.analysis import DENSE_EIG_MAX

    net = delaunay_network(DENSE_EIG_MAX + 300, seed=5)
    k = _k(net, 5)
    vin = {net.inputs[0]: 1.0, net.inputs[1]: 0.2}
    tm = task_modes(net, k, vin)
    assert tm.lam.size == 50 and np.all(np.diff(tm.lam) >= 0)
    v = solve(net, k, vin)
    assert tm.response == pytest.approx(v[net.index[net.outputs[0]]], rel=1e-9)
    red = reduced_hessian(net, k, list(net.inputs), dense=True)
    lam_all = np.linalg.eigvalsh(red.h)
    assert np.allclose(tm.lam, lam_all[:50], rtol=1e-8)
    # the 50 softest modes carry D_eff and gbar of the full spectrum closely
    assert tm.deff == pytest.approx(model_deff(lam_all), rel=0.05)
    assert tm.gbar == pytest.approx(model_gbar(lam_all), rel=0.05)
