"""How many threads BLAS and OpenMP may use while labnet solves (threadpoolctl).

labnet's solves multiply and factorise matrices whose size is well below what pays for
several BLAS threads, and the machines it runs on are often shared. An idle OpenBLAS thread
spins waiting for work, so with two threads on a loaded two-core machine a step can wait for
a descheduled thread: measured, 16k-edge Delaunay PCG steps took 72–180 ms with two BLAS
threads against 2.0 ms with one (issue 17; ``benchmarks/bench_threads.py`` reproduces it).
So labnet limits the thread pools of the loaded BLAS/OpenMP libraries *around* its solve
paths and restores them afterwards (nothing else in the process is affected).

The setting, in order of precedence:

* the ``threads`` keyword of the object that solves (e.g.
  :class:`labnet.insilico.trainer.CoupledLearning`);
* the environment variable ``LABNET_THREADS``;
* :data:`DEFAULT_THREADS` (1).

A positive integer is the number of threads; ``0`` (or ``"default"``) leaves the libraries'
own settings untouched.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from labnet.core.errors import ConfigError

#: Environment variable naming the thread count of labnet's solves.
ENV = "LABNET_THREADS"
#: Threads per BLAS/OpenMP pool during labnet's solves when neither keyword nor environment says.
DEFAULT_THREADS = 1


def resolve_threads(threads: int | str | None = None) -> int:
    """The thread count to use: ``threads`` if given, else ``$LABNET_THREADS``, else
    :data:`DEFAULT_THREADS`. 0 means "leave the libraries alone". Raises ConfigError (one line)
    for anything that is not a non-negative integer or ``"default"``."""
    where, value = ("<code>", threads) if threads is not None else (f"${ENV}", os.environ.get(ENV))
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return DEFAULT_THREADS
    if isinstance(value, str) and value.strip().lower() == "default":
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str) or (isinstance(value, str) and not value.strip().isdigit()):
        raise ConfigError(where, "threads", f"expected a non-negative integer or 'default', got {value!r}")
    n = int(value)
    if n < 0:
        raise ConfigError(where, "threads", f"expected a non-negative integer or 'default', got {value!r}")
    return n


class _Pools:
    """The loaded BLAS/OpenMP libraries (threadpoolctl's controllers), found again whenever
    Python has imported something since the last look (a new extension may bring a new pool)."""

    def __init__(self) -> None:
        self._libs: list[Any] = []
        self._n_modules = -1

    def libs(self) -> list[Any]:
        if len(sys.modules) != self._n_modules:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:  # pragma: no cover - threadpoolctl is a dependency
                self._libs = []
            else:
                self._libs = list(ThreadpoolController().lib_controllers)
            self._n_modules = len(sys.modules)
        return self._libs


_POOLS = _Pools()
_depth = 0


class ThreadLimit:
    """Context manager: every BLAS/OpenMP pool limited to ``threads`` while inside, restored on
    exit. Re-entrant (only the outermost one acts) and cheap: 4–9 µs per outermost enter and
    exit with two pools, 0.25 µs nested (measured 2026-12-03, load ~4), so it can wrap every
    training step (``train`` pays it once per call, a loop over ``step`` once per step).

    ``threads``: as :func:`resolve_threads` (None: ``$LABNET_THREADS`` or 1; 0: no limit).
    """

    def __init__(self, threads: int | str | None = None) -> None:
        #: The resolved count (0: the libraries' own settings are kept).
        self.threads = resolve_threads(threads)
        self._stack: list[list[tuple[Any, int]]] = []  # per enter: the pools it changed, their old counts

    def __enter__(self) -> ThreadLimit:
        global _depth
        _depth += 1
        acted = _depth == 1 and self.threads > 0
        saved: list[tuple[Any, int]] = []
        if acted:
            for lib in _POOLS.libs():
                old = lib.get_num_threads()
                if old is not None and old != self.threads:
                    lib.set_num_threads(self.threads)
                    saved.append((lib, old))
        self._stack.append(saved)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        global _depth
        _depth -= 1
        for lib, old in self._stack.pop():  # empty unless this (the outermost) enter changed a pool
            lib.set_num_threads(old)


def current_threads() -> dict[str, int]:
    """{library path: its present thread count} of every loaded BLAS/OpenMP pool (for checks)."""
    return {lib.filepath: int(lib.get_num_threads() or 0) for lib in _POOLS.libs()}


_F = TypeVar("_F", bound=Callable[..., Any])


def limited(method: _F) -> _F:
    """Decorator of a method of an object with a ``thread_limit`` (:class:`ThreadLimit`)
    attribute: the method runs inside that limit."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self.thread_limit:
            return method(self, *args, **kwargs)

    return cast(_F, wrapper)
