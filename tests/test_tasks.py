"""Tasks: sample shapes, reachability, errors, Iris readout."""

from __future__ import annotations

import numpy as np

from labnet.core.tasks import allostery, classification_iris, load_iris, regression


def test_allostery_single_sample() -> None:
    t = allostery(np.array([1.0, 0.3]), np.array([0.42, 0.1]))
    assert t.train.inputs.shape == (1, 2) and t.test.targets.shape == (1, 2)
    np.testing.assert_allclose(t.sample_error(np.array([0.42, 0.2]), t.train.targets), [0.005])


def test_regression_is_seeded_and_passive() -> None:
    a, wa = regression(3, 2, n_train=40, n_test=10, rng=np.random.default_rng(4))
    b, wb = regression(3, 2, n_train=40, n_test=10, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(wa, wb)
    assert np.all(wa >= 0) and np.all(wa.sum(axis=1) <= 0.8 + 1e-12)
    np.testing.assert_allclose(a.train.targets, a.train.inputs @ wa.T)
    assert a.train.inputs.shape == (40, 3) and a.test.inputs.shape == (10, 3)
    np.testing.assert_array_equal(a.test.inputs, b.test.inputs)


def test_iris_data_and_readout() -> None:
    x, y, names = load_iris()
    assert x.shape == (150, 4) and np.bincount(y).tolist() == [50, 50, 50]
    assert names == ("setosa", "versicolor", "virginica")
    t = classification_iris(rng=np.random.default_rng(0), n_test=30, input_range_v=(0.3, 1.0))
    assert len(t.train) == 120 and len(t.test) == 30
    assert t.train.inputs.min() >= 0.3 - 1e-12 and t.train.inputs.max() <= 1.0 + 1e-12
    # Outputs equal to the class patterns are read out as those classes, with accuracy 1.
    assert t.patterns is not None
    outs = t.patterns[t.test.labels] + 0.01
    assert t.score(outs, t.test)["accuracy"] == 1.0
    np.testing.assert_array_equal(t.predict(t.patterns), [0, 1, 2])
