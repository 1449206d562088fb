"""Stopping a run on a signal without ever skipping the safe state.

:func:`stop_signals` installs handlers for SIGINT (Ctrl-C), SIGTERM and SIGHUP for the length
of a run. The **first** signal raises :class:`StopSignal` (a ``KeyboardInterrupt``, so code that
already handles Ctrl-C handles it) *and at once switches the handlers into deferring mode*:
every later signal is only recorded. The cleanup that follows (sources to 0 V, outputs off,
status written, files closed) therefore cannot be cut short by pressing Ctrl-C again or by a
second ``kill``. :func:`shielded` enters deferring mode explicitly around a cleanup section
that runs after a normal end or an exception, so a signal arriving *during* that cleanup is
deferred too. Only SIGKILL (which no process can catch) skips cleanup — the session's
durability design (``labnet.session.folder``) covers that case.

Handlers can only be installed from the main thread; elsewhere :func:`stop_signals` does
nothing (the caller's own signal handling applies).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
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


def describe(signum: int) -> str:
    """``"SIGINT (Ctrl-C)"``, ``"SIGTERM"`` …"""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    return f"{name} (Ctrl-C)" if name == "SIGINT" else name


class _Guard:
    """The state shared by the installed handlers."""

    def __init__(self) -> None:
        self.deferring = False
        self.received: list[int] = []  # every signal seen, in order
        self.deferred: list[int] = []  # those that arrived while deferring

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if self.deferring:
            self.deferred.append(signum)
            return
        self.deferring = True  # from now on, nothing may interrupt the cleanup
        raise StopSignal(signum)


_active: _Guard | None = None


@contextmanager
def stop_signals() -> Iterator[_Guard | None]:
    """Install the stop handlers for the ``with`` block; restore the previous ones after.

    Yields the guard (``received``/``deferred`` list the signals seen), or None when not in
    the main thread.
    """
    global _active
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    guard = _Guard()
    previous: dict[int, Any] = {}
    outer = _active
    try:
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, guard.handler)
        _active = guard
        yield guard
    finally:
        _active = outer
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if guard.deferred:
        raise StopSignal(guard.deferred[0])


def active_guard() -> _Guard | None:
    """The guard of the innermost :func:`stop_signals` block, if any."""
    return _active
