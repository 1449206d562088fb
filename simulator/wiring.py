"""The breadboard as wired: a rig file's network with its wiring faults built in.

:class:`PhysicalWiring` turns the digipots' own conductances (one per edge of the rig file's
network, indexed by the edge whose *channel* drives the part) into the conductances of the
circuit that is really on the bench, on a network that may carry extra edges:

* an **open** edge: R = :data:`~labnet.core.wiring.OPEN_OHM` in its place;
* a **shorted** edge: R = :data:`~labnet.core.wiring.SHORT_OHM` (a wire across the part);
* **swapped** edges (a, b): the part of channel a sits between b's nodes and vice versa;
* a **loaded** node: a resistance to ground in parallel with the node's edge to ground when
  it has one, else a new edge to ground;
* **swapped meter channels**: each channel's lead on the other's node
  (:meth:`node_of_meter`).

With no fault the network and the conductances are the rig file's, untouched (same objects).
"""

from __future__ import annotations

import numpy as np

from labnet.core.network import Network
from labnet.core.wiring import OPEN_OHM, SHORT_OHM, WiringFaults


class PhysicalWiring:
    """The wired circuit of ``network`` under ``faults``.

    Attributes
    ----------
    network : Network
        The circuit as wired: the rig file's edges, then one edge to ground per loaded node
        that has none (same nodes, roles and channel maps).
    """

    def __init__(self, network: Network, faults: WiringFaults) -> None:
        self.faults = faults
        self.logical = network
        e = network.n_edges
        self._perm = np.asarray(faults.edge_permutation(e), dtype=np.int64)
        self._open = np.asarray(faults.open_edges, dtype=np.int64)
        self._short = np.asarray(faults.shorted_edges, dtype=np.int64)
        g = network.ground
        to_ground = {(b if a == g else a): j for j, (a, b) in enumerate(network.edges) if g in (a, b)}
        self._parallel: list[tuple[int, float]] = []  # (edge index, load conductance) in parallel with an edge
        extra: list[tuple[str, str]] = []
        extra_k: list[float] = []
        for node, ohm in faults.loaded_nodes:
            if node in to_ground:
                self._parallel.append((to_ground[node], 1.0 / ohm))
            else:
                extra.append((node, g))
                extra_k.append(1.0 / ohm)
        self._extra_k = np.asarray(extra_k, dtype=float)
        if extra:
            d = network.to_dict()
            d["edges"] = [list(x) for x in network.edges] + [list(x) for x in extra]
            d["edge_channels"] = list(network.edge_channels) + [max(network.edge_channels) + 1 + i
                                                                 for i in range(len(extra))]
            self.network = Network.from_dict(d, file="<simulator.wiring>", key="network")
        else:
            self.network = network
        swap = {a: b for a, b in faults.swapped_meter_channels} | {b: a for a, b in faults.swapped_meter_channels}
        self._meter = {ch: network_node for network_node, ch in network.meter_channels.items()}
        self._meter_swap = swap

    @property
    def clean(self) -> bool:
        return self.faults.clean

    def conductances(self, k_parts: np.ndarray) -> np.ndarray:
        """Conductances (S) of :attr:`network`'s edges, shape (E + L,), from the parts'
        conductances ``k_parts`` (S, shape (E,), indexed by the edge whose channel drives each part)."""
        if self.faults.clean:
            return k_parts
        k = np.asarray(k_parts, dtype=float)[self._perm]
        if self._open.size:
            k[self._open] = 1.0 / OPEN_OHM
        if self._short.size:
            k[self._short] = 1.0 / SHORT_OHM
        for j, g in self._parallel:
            k[j] += g
        return np.concatenate((k, self._extra_k)) if self._extra_k.size else k

    def node_of_meter(self, channel: str) -> str:
        """The node the lead of meter ``channel`` really touches."""
        return self._meter[self._meter_swap.get(channel, channel)]


__all__ = ["PhysicalWiring"]
