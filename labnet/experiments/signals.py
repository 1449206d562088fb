"""Stopping a run on a signal without ever skipping the safe state.

:func:`stop_signals` installs handlers for SIGINT (Ctrl-C), SIGTERM and SIGHUP for the length
of a run. Two modes:

* **request mode** (``on_first`` given: how a training run uses it): the **first** signal only
  calls ``on_first(signum)`` — the run's owner sets its
  :class:`~labnet.experiments.runstate.StopRequest`, and the engine stops at its next safe
  point (between the states of a cycle). No exception is raised, so no bookkeeping is ever cut
  in half. A **second** signal forces the stop: it raises :class:`StopSignal` at once.
* **raise mode** (no ``on_first``: commands without safe points): the first signal raises
  :class:`StopSignal` (a ``KeyboardInterrupt``, so code that already handles Ctrl-C handles it).

Once a signal has raised, the handlers switch into deferring mode: every later signal is only
recorded. The cleanup that follows (sources to 0 V, outputs off, status written, files closed)
therefore cannot be cut short by pressing Ctrl-C again or by another ``kill``.
:func:`shielded` enters deferring mode explicitly around a cleanup section that runs after a
normal end or an exception, so a signal arriving *during* that cleanup is deferred too. Only
SIGKILL (which no process can catch) skips cleanup — the session's durability design
(``labnet.session.folder``) covers that case.

:func:`wait` sleeps in short slices and returns early once a stop was requested (a long
settle reacts to the first signal promptly).

Handlers can only be installed from the main thread; elsewhere :func:`stop_signals` does
nothing (the caller's own signal handling applies).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

#: Signals that stop a run (those that exist on this platform).
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class StopSignal(KeyboardInterrupt):
    """The run was asked to stop by a signal (``signum``)."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(describe(signum))


_COUNT = [0]  # stop signals received by any installed handler in this process


def signals_received() -> int:
    """How many stop signals this process's handlers have received (since the interpreter started)."""
    return _COUNT[0]


def describe(signum: int) -> str:
    """``"SIGINT (Ctrl-C)"``, ``"SIGTERM"`` …"""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    return f"{name} (Ctrl-C)" if name == "SIGINT" else name


class _Guard:
    """The state shared by the installed handlers."""

    def __init__(self, on_first: Callable[[int], None] | None = None) -> None:
        self.deferring = False
        self.on_first = on_first  # request mode: the first signal calls it instead of raising
        self.requested: int | None = None  # the signal that requested a stop (request mode)
        self.received: list[int] = []  # every signal seen, in order
        self.deferred: list[int] = []  # those that arrived while deferring

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        _COUNT[0] += 1
        if self.deferring:
            self.deferred.append(signum)
            return
        if self.on_first is not None and self.requested is None:
            self.requested = signum  # first signal: a request, honoured at the next safe point
            self.on_first(signum)
            return
        self.deferring = True  # from now on, nothing may interrupt the cleanup
        raise StopSignal(signum)


_active: _Guard | None = None


@contextmanager
def stop_signals(on_first: Callable[[int], None] | None = None) -> Iterator[_Guard | None]:
    """Install the stop handlers for the ``with`` block; restore the previous ones after.

    With ``on_first`` (request mode) the first signal calls ``on_first(signum)`` and returns;
    the second raises :class:`StopSignal`. Without it the first signal raises. Yields the guard
    (``received``/``deferred`` list the signals seen), or None when not in the main thread.
    """
    global _active
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    guard = _Guard(on_first)
    previous: dict[int, Any] = {}
    outer = _active
    try:
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, guard.handler)
        _active = guard
        yield guard
    finally:
        _active = outer
        for prev_sig, handler in previous.items():
            signal.signal(prev_sig, handler)


@contextmanager
def shielded() -> Iterator[None]:
    """Defer stop signals for the ``with`` block (a cleanup section).

    Under :func:`stop_signals` the guard switches to deferring mode and stays there (the run
    is ending). Outside it, SIGINT/SIGTERM/SIGHUP are ignored-and-recorded for the block and
    the previous handlers restored afterwards; a deferred SIGINT is then re-raised as
    :class:`StopSignal` so a library caller still sees its Ctrl-C once cleanup is done.
    """
    if _active is not None:
        _active.deferring = True
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    guard = _Guard()
    guard.deferring = True
    previous: dict[int, Any] = {}
    try:
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, guard.handler)
        yield
    finally:
        for prev_sig, handler in previous.items():
            signal.signal(prev_sig, handler)
    if guard.deferred:
        raise StopSignal(guard.deferred[0])


def active_guard() -> _Guard | None:
    """The guard of the innermost :func:`stop_signals` block, if any."""
    return _active


#: Longest uninterrupted slice of a :func:`wait` (s): how late a requested stop may be noticed.
WAIT_SLICE_S = 0.05


def wait(seconds: float, stop: Callable[[], bool], sleep: Callable[[float], None] = time.sleep) -> bool:
    """Sleep ``seconds`` in slices of at most :data:`WAIT_SLICE_S`, returning early as soon as
    ``stop()`` is true. Returns True if the whole time was slept, False if cut short."""
    end = time.monotonic() + seconds
    while True:
        if stop():
            return False
        left = end - time.monotonic()
        if left <= 0:
            return True
        sleep(min(left, WAIT_SLICE_S))
