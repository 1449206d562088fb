"""Seeded fault injection for the emulated transports (the hooks a fault campaign drives).

One :class:`FaultPlan` belongs to a simulated bench (:class:`simulator.bench.SimBench`) and
is consulted by every emulated transport at well-defined points:

================  ============================================================  =====================
kind              effect                                                        where
================  ============================================================  =====================
``drop``          one byte of a host->board request line is lost                board, per request
``garble``        one byte of a board reply is flipped (checksum then fails)    board, per reply
``delay``         the board's reply arrives ``delay_s`` late (past a timeout)   board, per reply
``reset``         the board resets as the request arrives (request lost,        board, per request
                  wipers to power-up code, ready line after ``boot_s``)
``unplug``        the serial port vanishes for ``unplug_s`` (reads/writes raise  board, per request
                  ``SerialException``; reopening after that works and resets
                  the board, as DTR does on a real Uno)
``scpi_error``    an error is pushed on an instrument's SCPI error queue         VISA, per command
                  (``-222,"Data out of range"`` unless given)
``outlier``       one reading of a meter scan is replaced by a wildly-off value  meter, per scan
``visa_timeout``  an instrument does not answer one query (VISA timeout)        VISA, per query
================  ============================================================  =====================

Faults happen either at random (``rates``: probability per opportunity, drawn from the plan's
own seeded generator, so a campaign is reproducible) or exactly when scheduled
(:meth:`FaultPlan.schedule`: "at the n-th opportunity of this kind", counted from 0). Every
fault that fires is appended to :attr:`FaultPlan.log` as a :class:`FaultEvent` with the
modelled time, so a campaign can tell which faults a run met.

Direct hooks for tests exist too: ``EmulatedBoard.reset_now()``,
``SimSerial.unplug(seconds)``, ``ScpiEmulator.push_error(code, text)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

FAULT_KINDS = ("drop", "garble", "delay", "reset", "unplug", "scpi_error", "outlier", "visa_timeout")


@dataclass(frozen=True)
class FaultEvent:
    """A fault that fired: its kind, the modelled time (s), the opportunity index and details."""

    kind: str
    t: float
    index: int
    detail: dict[str, Any] = field(default_factory=dict)


class FaultPlan:
    """Which faults to inject, seeded.

    Parameters
    ----------
    seed : int
        Seed of the plan's own generator (independent of the physical model's noise).
    rates : mapping kind -> probability
        Probability that a fault of that kind fires at each opportunity (0 … 1).
    delay_s : float
        How late a ``delay`` fault makes a board reply (s); choose it above the driver timeout.
    unplug_s : float
        How long an ``unplug`` fault keeps the port away (s of modelled time).
    outlier_v : float
        The value (V) an ``outlier`` fault puts in place of one reading.
    scpi_error : tuple
        ``(code, message)`` pushed by a ``scpi_error`` fault.
    """

    #: :class:`labnet.core.state.Stateful`: the plan's generator and the opportunities seen per
    #: kind. What to inject (rates, schedule, ``enabled``) is the plan's configuration, set by
    #: whoever builds the bench (a campaign resumes on a bench without faults), and the log of
    #: fired faults is a record for the campaign, not needed to go on: neither is restored.
    STATE_SCHEMA: ClassVar[dict[str, Any]] = {"rng": dict, "counts": dict}

    def __init__(self, seed: int = 0, rates: dict[str, float] | None = None, *, delay_s: float = 2.0,
                 unplug_s: float = 1.0, outlier_v: float = 9.9, scpi_error: tuple[int, str] = (-222, "Data out of range")) -> None:
        self.rng = np.random.default_rng([seed, 6])
        self.rates = dict(rates or {})
        for k, p in self.rates.items():
            if k not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {k!r} (known: {', '.join(FAULT_KINDS)})")
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"fault rate of {k!r} must be within 0..1, got {p}")
        self.delay_s = delay_s
        self.unplug_s = unplug_s
        self.outlier_v = outlier_v
        self.scpi_error = scpi_error
        self.log: list[FaultEvent] = []
        self._count = dict.fromkeys(FAULT_KINDS, 0)
        self._scheduled: dict[str, set[int]] = {k: set() for k in FAULT_KINDS}
        self.enabled = True

    def state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "counts": dict(self._count)}

    def restore(self, state: dict[str, Any]) -> None:
        counts = state["counts"]
        if set(counts) != set(FAULT_KINDS):
            raise ValueError(f"fault plan state: counts of {sorted(counts)}, expected {sorted(FAULT_KINDS)}")
        self.rng.bit_generator.state = state["rng"]
        self._count = {k: int(counts[k]) for k in FAULT_KINDS}

    def schedule(self, kind: str, *at: int) -> FaultPlan:
        """Fire ``kind`` exactly at these opportunity indices (0 = the first opportunity)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")
        self._scheduled[kind].update(int(i) for i in at)
        return self

    def schedule_next(self, kind: str, after: int = 0) -> FaultPlan:
        """Fire ``kind`` at its next opportunity (``after`` = how many opportunities to let pass)."""
        return self.schedule(kind, self._count[kind] + after)

    def fire(self, kind: str, t: float, **detail: Any) -> bool:
        """Called by a transport at an opportunity for ``kind``; True if the fault happens now."""
        i = self._count[kind]
        self._count[kind] = i + 1
        if not self.enabled:
            return False
        hit = i in self._scheduled[kind]
        p = self.rates.get(kind, 0.0)
        if p > 0 and self.rng.random() < p:
            hit = True
        if hit:
            self.log.append(FaultEvent(kind, t, i, detail))
        return hit

    def randint(self, n: int) -> int:
        """A seeded integer in 0..n-1 (which byte to drop or flip, which reading to spoil)."""
        return int(self.rng.integers(0, n)) if n > 0 else 0

    def counts(self) -> dict[str, int]:
        """Opportunities seen so far, per kind."""
        return dict(self._count)

