"""How a rig applies a change that is not safe in one go: the plan, step by step.

:class:`PlannedChanges` (a base of :class:`labnet.bench.rig.Rig`, over
:class:`~labnet.bench.limits.LimitChecks`) sends the steps that :mod:`labnet.bench.transitions`
plans — single-channel source changes in a safe order (or dropped first, or ramped), code writes
one edge at a time (or with the sources dropped) — each logged as ``transition_planned``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from labnet.bench.limits import LimitChecks
from labnet.bench.transitions import plan_codes

log = logging.getLogger("labnet.bench.rig")  # the rig's logger: events name it


class PlannedChanges(LimitChecks):
    """Planned source changes and code writes (the rig provides the attributes and methods
    named below)."""

    _held: dict[str, float]
    _channels: list[Any]
    digipots: Any
    #: Transitions applied as a plan (reordered, dropped first or ramped) rather than in one go.
    planned_transitions: int

    def apply(self, held: Any) -> None:  # the rig's
        raise NotImplementedError

    def _drive(self, held: dict[str, float]) -> None:  # the rig's
        raise NotImplementedError

    def _set_record(self, codes: np.ndarray) -> None:  # the rig's
        raise NotImplementedError

    def settle_between_steps(self) -> None:  # the rig's (labnet.bench.settle.SettleTracking)
        raise NotImplementedError

    def _apply_planned(self, old: dict[str, float], held: dict[str, float], codes: np.ndarray) -> None:
        """Drive the single-channel steps from ``old`` to just before ``held`` (LimitError if none)."""
        steps = self.plan_sources(old, held, codes)
        log.info("source change planned: %d single-channel steps", len(steps),
                 extra={"event": "transition_planned",
                        "fields": {"change": "sources", "from": old, "to": held, "steps": steps}})
        self.planned_transitions += 1
        for p in steps[:-1]:
            self._drive(p)
            self.settle_between_steps()

    def _send_codes(self, old: np.ndarray, new: np.ndarray) -> None:
        """Write the channels whose code changes from ``old`` to ``new`` (one message batch)."""
        changed = np.flatnonzero(new != old).tolist()
        codes = new.tolist()
        self.digipots.write_codes([self._channels[i] for i in changed], [codes[i] for i in changed])
        self._set_record(new.copy())

    def _planned_codes(self, old: np.ndarray, new: np.ndarray) -> None:
        """Write ``new`` under the held pattern one safe edge at a time (:func:`plan_codes`), or,
        when no order is safe, drop the sources to nothing (planned), write, and re-apply."""
        held = dict(self._held)
        steps = plan_codes(old, new, lambda a, b: self.is_safe(held, held, a, b))
        self.planned_transitions += 1
        if steps is not None:
            log.info("code change planned: %d edges one at a time", len(steps),
                     extra={"event": "transition_planned", "fields": {"change": "codes", "steps": len(steps)}})
            here = old
            for c in steps:
                self._send_codes(here, c)
                here = c
            return
        log.info("code change planned: sources dropped, codes written, pattern re-applied",
                 extra={"event": "transition_planned", "fields": {"change": "codes_dropped", "held": held}})
        self.apply({})
        self._send_codes(old, new)
        self.apply(held)
