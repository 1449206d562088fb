"""A source's measured output response in a rig file: ``response_tau_s`` and ``response_dead_s``
of an ``[instruments.sources.<name>]`` table.

A planned measurement (``[train] measurement = "auto"``/``"planned"``) waits after each change
only as long as the changed outputs need (:mod:`labnet.bench.settle`). It knows the Keithley
2450's response from its datasheet (:data:`labnet.core.settling.RESPONSES`); for a source
without a documented one (the E36312A) the rig file may state the response measured on the
bench — a dead time ``response_dead_s`` (s) and a first-order time constant ``response_tau_s``
(s), each at most :data:`labnet.core.nonideal.MAX_SETTLE_S` — and a stated response is used in
place of the documented one. Without either, its changes wait the protocol's ``settle_s``.
Only a voltage source has one: a current source (``function = "current"``) waits ``settle_s``.
"""

from __future__ import annotations

from typing import Any

from labnet.config.schema import Table
from labnet.core.nonideal import MAX_SETTLE_S

RESPONSE_KEYS = ("response_tau_s", "response_dead_s")


def response_keys(s: Table, current: bool) -> dict[str, Any]:
    """The stated response of one source table (``current``: it sources current)."""
    given = [k for k in RESPONSE_KEYS if s.has(k)]
    if current and given:
        raise s.error(given[0], 'a voltage output\'s response; a current source (function = "current") '
                                "waits the protocol's settle_s")
    if not given:
        for k in RESPONSE_KEYS:
            s.declare(k, "number", "(none: the documented response, else the protocol's settle_s)")
        return {}
    return {k: s.float(k, 0.0, lo=0.0, hi=MAX_SETTLE_S) for k in RESPONSE_KEYS}


__all__ = ["RESPONSE_KEYS", "response_keys"]
