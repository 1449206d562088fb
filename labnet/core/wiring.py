"""Wiring faults of a simulated bench: how the breadboard differs from its rig file.

The rig file's ``[simulator.wiring]`` table (validated by :mod:`labnet.config.wiring_file`)
becomes a :class:`WiringFaults`; the simulator's physical model
(:mod:`simulator.wiring`, used by :class:`simulator.breadboard.Breadboard`) builds the
breadboard *as wired*, so every emulated instrument sees the fault. ``labnet doctor`` is tested
against them (:mod:`labnet.experiments.wiring_fit`).

Edges are named by their index in ``network.edges`` (0-based); meter channels by their
channel name (``"104"``); nodes by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Resistance (Ω) of an open edge: a lead out of its breadboard hole (insulation leakage;
#: large against every digipot, small enough to keep the Laplacian well conditioned).
OPEN_OHM = 1e9
#: Resistance (Ω) of a shorted edge: a jumper wire / solder bridge across the digipot.
SHORT_OHM = 0.1


@dataclass(frozen=True)
class WiringFaults:
    """Faults of the physical wiring (all empty: the bench is wired as its rig file says).

    Attributes
    ----------
    open_edges : tuple of int
        Edges whose digipot is not connected (R = :data:`OPEN_OHM`).
    shorted_edges : tuple of int
        Edges bridged by a wire (R = :data:`SHORT_OHM`).
    swapped_edges : tuple of (int, int)
        Pairs of edges whose digipots sit in each other's place (channel of edge a drives the
        part between edge b's nodes, and vice versa).
    swapped_meter_channels : tuple of (str, str)
        Pairs of meter channels whose leads are exchanged (each reads the other's node).
    loaded_nodes : tuple of (str, float)
        Node -> resistance (Ω) to ground: e.g. a released source that still loads its node.
    """

    open_edges: tuple[int, ...] = ()
    shorted_edges: tuple[int, ...] = ()
    swapped_edges: tuple[tuple[int, int], ...] = ()
    swapped_meter_channels: tuple[tuple[str, str], ...] = ()
    loaded_nodes: tuple[tuple[str, float], ...] = ()

    @property
    def clean(self) -> bool:
        """No fault at all."""
        return not (self.open_edges or self.shorted_edges or self.swapped_edges or self.swapped_meter_channels
                    or self.loaded_nodes)

    def edge_permutation(self, n_edges: int) -> list[int]:
        """``perm[p]``: the edge (digipot) whose part sits at position ``p``."""
        perm = list(range(n_edges))
        for a, b in self.swapped_edges:
            perm[a], perm[b] = perm[b], perm[a]
        return perm

    def to_dict(self) -> dict[str, Any]:
        """The faults as the rig file writes them (JSON-ready)."""
        return {"open_edges": list(self.open_edges), "shorted_edges": list(self.shorted_edges),
                "swapped_edges": [list(p) for p in self.swapped_edges],
                "swapped_meter_channels": [list(p) for p in self.swapped_meter_channels],
                "loaded_nodes": dict(self.loaded_nodes)}


__all__ = ["OPEN_OHM", "SHORT_OHM", "WiringFaults"]
