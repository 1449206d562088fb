"""BLAS/OpenMP thread limits around labnet's solves (labnet.core.threads, issue 17)."""

from __future__ import annotations

import numpy as np
import pytest

from labnet.core import threads
from labnet.core.errors import ConfigError
from labnet.core.generators import delaunay_network
from labnet.core.threads import DEFAULT_THREADS, ENV, ThreadLimit, current_threads, resolve_threads
from labnet.insilico.trainer import CoupledLearning


def _pools() -> dict[str, int]:
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS too)

    pools = current_threads()
    if not pools:
        pytest.skip("no BLAS/OpenMP pool visible to threadpoolctl")
    return pools


def test_resolve_precedence_keyword_env_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert resolve_threads() == DEFAULT_THREADS == 1
    monkeypatch.setenv(ENV, "3")
    assert resolve_threads() == 3
    assert resolve_threads(2) == 2  # the keyword wins over the environment
    monkeypatch.setenv(ENV, "default")
    assert resolve_threads() == 0
    assert resolve_threads("0") == 0


@pytest.mark.parametrize("bad", ["two", "-1", "1.5", ""])
def test_bad_environment_value_is_one_line_error(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv(ENV, bad)
    if bad == "":
        assert resolve_threads() == DEFAULT_THREADS  # empty: unset
        return
    with pytest.raises(ConfigError, match=r"^\$LABNET_THREADS: threads: expected a non-negative integer"):
        resolve_threads()


@pytest.mark.parametrize("bad", [-2, True, 1.0, "x"])
def test_bad_keyword_is_one_line_error(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"^<code>: threads: expected"):
        resolve_threads(bad)  # type: ignore[arg-type]


def test_limit_applies_and_restores_and_is_reentrant() -> None:
    before = _pools()
    # pretend the libraries run with 2 threads, so the limit has something to change
    with ThreadLimit(2):
        pass
    for lib in threads._POOLS.libs():
        lib.set_num_threads(2)
    try:
        outer = ThreadLimit(1)
        with outer:
            assert set(current_threads().values()) == {1}
            with outer:  # the same object again (a decorated method calling another)
                assert set(current_threads().values()) == {1}
            assert set(current_threads().values()) == {1}, "an inner exit must not restore the pools"
            with ThreadLimit(2):  # nested limits do not act: the outermost one rules
                assert set(current_threads().values()) == {1}
        assert set(current_threads().values()) == {2}
        with ThreadLimit(0):  # 0: leave the libraries alone
            assert set(current_threads().values()) == {2}
        with pytest.raises(RuntimeError), ThreadLimit(1):
            raise RuntimeError("boom")
        assert set(current_threads().values()) == {2}, "restored after an exception"
    finally:
        for lib in threads._POOLS.libs():
            lib.set_num_threads(before.get(lib.filepath, 1))


@pytest.mark.parametrize("method", ["dense", "direct", "pcg"])
def test_trainer_solves_with_the_limit(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """Every strategy's solve runs inside the trainer's limit; outside, the pools are as before."""
    before = _pools()
    for lib in threads._POOLS.libs():
        lib.set_num_threads(2)
    try:
        net = delaunay_network(40, seed=3, n_inputs=2, n_outputs=2)
        k = np.random.default_rng(0).uniform(1e-4, 1e-3, net.n_edges)
        cl = CoupledLearning(net, k, [[1.0, 0.0]], [[0.3, 0.6]], alpha=1e-3, eta=0.5, method=method)
        seen: list[set[int]] = []
        inner = cl.solver.responses

        def spy(*a: object, **kw: object) -> tuple[np.ndarray, np.ndarray]:
            seen.append(set(current_threads().values()))
            return inner(*a, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(cl.solver, "responses", spy)
        cl.train(3, batch=1)
        cl.gradient()
        assert seen and all(s == {1} for s in seen)
        assert set(current_threads().values()) == {2}
        monkeypatch.setenv(ENV, "0")  # the environment: leave the libraries alone ...
        for threads_kw, want in ((None, {2}), (1, {1})):  # ... unless the keyword says otherwise
            cl3 = CoupledLearning(net, k, [[1.0, 0.0]], [[0.3, 0.6]], alpha=1e-3, eta=0.5, method=method, threads=threads_kw)
            seen.clear()
            inner3 = cl3.solver.responses
            monkeypatch.setattr(cl3.solver, "responses", lambda *a, inner3=inner3, **kw: (
                seen.append(set(current_threads().values())), inner3(*a, **kw))[1])
            cl3.gradient()
            assert seen == [want]
    finally:
        for lib in threads._POOLS.libs():
            lib.set_num_threads(before.get(lib.filepath, 1))
