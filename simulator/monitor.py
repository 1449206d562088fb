"""The truth about edge currents: the worst one over every state the simulated bench passes through.

The limit check (:mod:`labnet.bench.bounds`) predicts; the simulator knows. :class:`CurrentMonitor`
patches :class:`~simulator.breadboard.Breadboard` so that after every change of its state —
every source command an emulated supply executes (``drive``/``inject``, one per SCPI command), every
wiper move (``set_code``/``set_codes``, an X9C up/down part walked one tap at a time as its INC
pulses move it), a board reset, a restored checkpoint — it computes the true edge currents
k_e·ΔV_e (A, drawn parts, drift and source errors included, no meter attached) and keeps the
largest |current| / rating. Tests and ``benchmarks/limit_attacks.py`` use it; nothing in a run
does (it costs one solve per state change).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.breadboard import Breadboard


@dataclass
class Peak:
    """The worst state seen: |I| / rating, the edge, the driven channels and codes then."""

    fraction: float = 0.0
    edge: int = -1
    driven: dict[str, float] = field(default_factory=dict)
    codes: list[int] = field(default_factory=list)
    states: int = 0

    @property
    def percent(self) -> float:
        return 100.0 * self.fraction


class CurrentMonitor:
    """Records the worst true edge current over every state of every :class:`Breadboard`.

    Use :func:`watch_edge_currents` (a context manager) to install and remove it.
    """

    def __init__(self) -> None:
        self.peak = Peak()

    def record(self, model: Breadboard) -> None:
        """Evaluate the present state of ``model`` and keep it if it is the worst so far."""
        self.peak.states += 1
        if not model.driven and not model.currents.injected:
            return
        v = model.node_voltages()
        k = model.conductances()
        i = np.abs(k * model.network.delta_v(v))
        j = int(np.argmax(i))
        frac = float(i[j]) / model.part.max_current_a
        if frac > self.peak.fraction:
            self.peak = Peak(frac, j, dict(model.driven), [int(c) for c in model.codes], self.peak.states)


_ACTIVE: list[CurrentMonitor] = []


def _record_all(model: Breadboard) -> None:
    for mon in _ACTIVE:
        mon.record(model)


def _wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(self: Breadboard, *a: Any, **kw: Any) -> Any:
        out = fn(self, *a, **kw)
        _record_all(self)
        return out
    return wrapped


def _walk_set_code(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(self: Breadboard, edge: int, code: int) -> Any:
        if self.part.interface == "updown":  # the wiper passes every tap between (X9C, AD5220)
            old = int(self.codes[edge])
            step = 1 if code > old else -1
            for c in range(old + step, int(code), step):
                fn(self, edge, c)
                _record_all(self)
        out = fn(self, edge, code)
        _record_all(self)
        return out
    return wrapped


def _walk_set_codes(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(self: Breadboard, edges: Sequence[int], codes: Sequence[int]) -> Any:
        for e, c in zip(edges, codes):  # one channel after another, as a board writes them
            self.set_code(int(e), int(c))
        return None
    return wrapped


@contextmanager
def watch_edge_currents() -> Iterator[CurrentMonitor]:
    """Patch :class:`Breadboard` for the duration; yields the monitor (``monitor.peak``)."""
    mon = CurrentMonitor()
    saved = {name: getattr(Breadboard, name) for name in ("drive", "inject", "set_code", "set_codes", "reset",
                                                          "restore")}
    if not _ACTIVE:
        Breadboard.drive = _wrap(saved["drive"])  # type: ignore[method-assign]
        Breadboard.inject = _wrap(saved["inject"])  # type: ignore[method-assign]
        Breadboard.set_code = _walk_set_code(saved["set_code"])  # type: ignore[method-assign]
        Breadboard.set_codes = _walk_set_codes(saved["set_codes"])  # type: ignore[method-assign]
        Breadboard.reset = _wrap(saved["reset"])  # type: ignore[method-assign]
        Breadboard.restore = _wrap(saved["restore"])  # type: ignore[method-assign]
    _ACTIVE.append(mon)
    try:
        yield mon
    finally:
        _ACTIVE.remove(mon)
        if not _ACTIVE:
            for name, fn in saved.items():
                setattr(Breadboard, name, fn)


__all__ = ["CurrentMonitor", "Peak", "watch_edge_currents"]
