"""Current-driven nodes of a rig: patterns that mix held voltages and injected currents.

A rig's pattern maps nodes to setpoints: volts for a node with a voltage source
(``network.source_channels``), amperes for a node with a current source
(``network.current_channels``; a Keithley 2450 sourcing current with a voltage limit VLIM).
:class:`CurrentDrive` (a base of :class:`labnet.bench.rig.Rig`) splits a pattern, drives the
current part through the :class:`~labnet.bench.roles.CurrentSources` role and says, for the
worst-case limit check, where a current node's voltage can be:

    a node sourcing I ≥ 0 lies in [m, +VLIM], one sourcing I ≤ 0 in [−VLIM, M],

with m the lowest voltage any voltage source (ground's 0 V included) or negative current source
(−VLIM) can put on the network, M likewise the highest. Proof: the source cannot exceed its
limit (Model 2450 Reference Manual, :SOURce[1]:<function>:<x>LIMit, 6-71: "cannot source levels
that exceed this limit"); and at the lowest node of the network Kirchhoff's law Σ_j k_ij (V_i − V_j)
= I_i has every term ≤ 0, so a free node or one injecting I_i ≥ 0 there has all its neighbours at
the same voltage — following them (the network is connected to ground) reaches a voltage-held
node or a negative current source at that voltage, so the minimum is ≥ m. Symmetrically for M.
Every state with the current node at its realised voltage is a state of the same network with the
node *held* there, so bounding it as held within that interval
(:func:`labnet.core.bounds.edge_current_bound`) is sound.

A second bound, by superposition: a state with current sources delivering d_j (|d_j| ≤ |I_j|, a
clamped source delivers less) is the state with those nodes floating plus the responses to each
d_j alone, sources zeroed. A unit current into node j alone flows to the held nodes down a
potential that peaks at j; the edges leaving the set of nodes at or above either end of an edge
carry exactly the unit current between them, all in one direction, so no edge carries more than 1.
Hence |I_e| ≤ bound(current nodes floating)_e + Σ_j |I_j|. The limit check takes the smaller of
the two per edge (:meth:`labnet.bench.limits.LimitChecks.transition_bound`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from labnet.bench.roles import CurrentSources
from labnet.core.errors import LimitError
from labnet.core.network import Network

log = logging.getLogger("labnet.bench.rig")  # the rig's logger: events name it


class CurrentDrive:
    """The current-source part of a rig (mixed into :class:`labnet.bench.rig.Rig`)."""

    network: Network
    current_sources: CurrentSources | None = None
    #: node -> (largest |I| A, VLIM V) of every current-driven node (none until ``_init_currents``)
    current_limits: Mapping[str, tuple[float, float]] = MappingProxyType({})
    #: states measured while a current source was clamped at its voltage limit
    compliance_trips: int = 0

    def _init_currents(self, sources: CurrentSources | None, limits: Mapping[str, tuple[float, float]] | None) -> None:
        nodes = set(self.network.current_channels)
        if nodes and sources is None:
            raise ValueError(f"nodes {sorted(nodes)} are current-driven but the rig has no CurrentSources role")
        lim = {str(n): (float(a), float(v)) for n, (a, v) in (limits or {}).items()}
        missing = nodes - set(lim)
        if missing:
            raise ValueError(f"current-driven nodes {sorted(missing)} have no (max current, VLIM) limits")
        self.current_sources = sources
        self.current_limits = lim
        self.compliance_trips = 0

    def is_current(self, node: str) -> bool:
        return node in self.current_limits

    def split(self, pattern: Mapping[str, float]) -> tuple[dict[str, float], dict[str, float]]:
        """(voltage part node -> V, current part node -> A) of a pattern."""
        cur = self.current_limits
        if not cur:
            return dict(pattern), {}
        volts = {n: v for n, v in pattern.items() if n not in cur}
        amps = {n: v for n, v in pattern.items() if n in cur}
        return volts, amps

    def check_currents(self, amps: Mapping[str, float]) -> None:
        """Refuse a current beyond its node's limit (or not finite); nothing is sent."""
        for node, i in amps.items():
            imax = self.current_limits[node][0]
            if type(i) is bool or not isinstance(i, (int, float, np.floating, np.integer)) or not math.isfinite(i) \
                    or abs(i) > imax:
                raise LimitError(f"node {node!r} (current source {self.network.current_channels[node]}): {i} A "
                                 f"exceeds the {imax:g} A limit")

    def current_ranges(self, old: Mapping[str, float], new: Mapping[str, float],
                       v_lo: float, v_hi: float) -> list[tuple[str, tuple[float, float], bool]]:
        """(node, voltage interval V, switched) of every current node driven in ``old`` or ``new``
        (module docstring): ``v_lo``/``v_hi`` are the lowest/highest voltage the voltage sources
        (ground included) can set in the transition."""
        nodes = [n for n in self.current_limits if n in old or n in new]
        signs = {n: {float(np.sign(p[n])) for p in (old, new) if n in p} for n in nodes}
        lo, hi = v_lo, v_hi
        for n in nodes:
            vlim = self.current_limits[n][1]
            if any(s < 0 for s in signs[n]):
                lo = min(lo, -vlim)
            if any(s > 0 for s in signs[n]):
                hi = max(hi, vlim)
        out = []
        for n in nodes:
            vlim = self.current_limits[n][1]
            s = signs[n]
            rng = (lo, vlim) if min(s) >= 0 else (-vlim, hi) if max(s) <= 0 else (-vlim, vlim)
            out.append((n, (min(rng[0], 0.0), max(rng[1], 0.0)), not (n in old and n in new)))
        return out

    def drive_currents(self, amps: Mapping[str, float]) -> None:
        """Drive exactly these current nodes (node -> A) with their VLIM; other current outputs off."""
        if self.current_sources is None:
            if amps:
                raise LimitError(f"nodes {sorted(amps)} need current sources; the rig has none")
            return
        ch = self.network.current_channels
        self.current_sources.apply_currents({ch[n]: float(i) for n, i in amps.items()},
                                            {ch[n]: self.current_limits[n][1] for n in amps})

    def note_trips(self, amps: Mapping[str, float]) -> list[str]:
        """Ask the current sources driving ``amps`` whether their limit clamps them; log and
        count a clamped state (the input is then not the set current). Returns the clamped nodes."""
        if not amps or self.current_sources is None:
            return []
        nodes = list(amps)
        ch = self.network.current_channels
        flags = np.asarray(self.current_sources.tripped([ch[n] for n in nodes]), dtype=bool)
        hit = [n for n, f in zip(nodes, flags) if f]
        if hit:
            self.compliance_trips += 1
            log.warning("current source at its voltage limit: %s (the input is not the set current)",
                        ", ".join(hit), extra={"event": "compliance_tripped",
                                               "fields": {"nodes": hit, "set_a": {n: float(amps[n]) for n in hit}}})
        return hit

    def current_identity(self) -> dict[str, Any]:
        return {} if self.current_sources is None else {"current_sources": self.current_sources.identity()}
