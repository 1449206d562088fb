"""The release circuit: what an off source and an analog switch add to the breadboard.

The breadboard model (:mod:`simulator.breadboard`) solves the network with every driven node
held and every other node floating — the ideal release. A rig whose sources load their node
when off, or that releases through analog switches (:class:`labnet.core.release.Release`),
is solved here on an *augmented* network:

* a node ``~0V`` held at 0 V (the sources' return);
* for a source channel whose off-state loads its node, an edge node–``~0V`` of conductance
  ``1/off_resistance_ohm`` (while the source is on, the node is held and the edge carries the
  source's own current only);
* for a switched node ``n``, a terminal node ``~t.n`` (the source's output terminal) and an
  edge ``~t.n``–``n`` of the switch's on-conductance (closed) or leakage conductance (open);
  a driven source holds its terminal, not the node; an off source loads its terminal.

The augmented network's structure is fixed (built once); only the conductances of the switch
edges and the held set change. Solves use :class:`labnet.core.physics.Solver` (one Cholesky per
state, cached while codes, drift, driven set and switches stay the same).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from labnet.core.network import Network
from labnet.core.physics import Solver, thevenin_resistance
from labnet.core.release import Release

ZERO = "~0V"


def terminal(node: str) -> str:
    """Name of the source terminal behind the switch of ``node``."""
    return f"~t.{node}"


class ReleaseCircuit:
    """The augmented network of ``network`` under ``release`` (see the module docstring).

    Parameters
    ----------
    network : Network
        The breadboard's network (its ``source_channels`` say which source drives which node).
    release : Release
    """

    def __init__(self, network: Network, release: Release) -> None:
        self.network = network
        self.release = release
        node_of = {ch: n for n, ch in network.source_channels.items()}
        self.node_of_source = node_of
        switched = [n for n in network.nodes if n in release.switches]
        for n in switched:
            if n not in network.source_channels:
                raise ValueError(f"switched node {n!r} has no source channel")
        nodes = [*network.nodes, ZERO, *(terminal(n) for n in switched)]
        edges = [list(e) for e in network.edges]
        edges.append([ZERO, network.ground])  # both held at 0 V: keeps the augmented graph connected
        extra_g: list[float] = [1.0]
        self._switch_edge: dict[str, int] = {}
        for ch in sorted(node_of):
            n = node_of[ch]
            g = release.off_siemens(ch)
            if n in release.switches:
                self._switch_edge[n] = len(edges) - network.n_edges
                edges.append([terminal(n), n])
                extra_g.append(0.0)  # set per state
                if g > 0:
                    edges.append([terminal(n), ZERO])
                    extra_g.append(g)
            elif g > 0:
                edges.append([n, ZERO])
                extra_g.append(g)
        self.aug = Network(nodes, edges, ground=network.ground, meter_channels={}, source_channels={})
        self._extra = np.array(extra_g, dtype=float)
        self._n = network.n_nodes
        self._cache: tuple[tuple[tuple[str, ...], bytes], Solver] | None = None

    def held_names(self, driven: Mapping[str, float]) -> dict[str, float]:
        """Held voltages of the augmented network for ``driven`` (node -> V at the node's
        source, errors included): a switched node's source holds its terminal."""
        out = {ZERO: 0.0}
        for n, v in driven.items():
            out[terminal(n) if n in self.release.switches else n] = float(v)
        return out

    def conductances(self, k: np.ndarray, closed: Mapping[str, bool]) -> np.ndarray:
        """Augmented conductances (S), shape (E_aug,): the network's ``k`` then the extra edges."""
        extra = self._extra.copy()
        part = self.release.switch_part
        if part is not None:
            for n, j in self._switch_edge.items():
                extra[j] = part.on_siemens if closed.get(n, False) else part.leak_siemens
        return np.concatenate((np.asarray(k, dtype=float), extra))

    def solver(self, k: np.ndarray, driven: Mapping[str, float], closed: Mapping[str, bool]) -> tuple[Solver, dict[str, float]]:
        """A factorised solver of the present state, and its held voltages."""
        held = self.held_names(driven)
        kk = self.conductances(k, closed)
        key = (tuple(sorted(held)), kk.tobytes())
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, Solver(self.aug, kk, sorted(held)))
        return self._cache[1], held

    def node_voltages(self, k: np.ndarray, driven: Mapping[str, float], closed: Mapping[str, bool]) -> np.ndarray:
        """True voltages (V) of the network's nodes, shape (N,)."""
        solver, held = self.solver(k, driven, closed)
        return solver.solve(held)[: self._n]

    def read(self, k: np.ndarray, driven: Mapping[str, float], closed: Mapping[str, bool],
             nodes: Sequence[str], thevenin: bool) -> tuple[np.ndarray, np.ndarray]:
        """Voltages (V) at ``nodes`` and their Thevenin resistances (Ω; zeros unless ``thevenin``)."""
        solver, held = self.solver(k, driven, closed)
        v = solver.solve(held)[self.network.indices(nodes)]
        r = thevenin_resistance(solver, list(nodes)) if thevenin else np.zeros(len(nodes))
        return v, r

    def source_currents(self, k: np.ndarray, driven: Mapping[str, float], closed: Mapping[str, bool],
                        channels: Sequence[str]) -> np.ndarray:
        """Current (A) each channel's source pushes out of its terminal (0 for an output that is off)."""
        solver, held = self.solver(k, driven, closed)
        v = solver.solve(held)
        inj = self.aug.laplacian(solver.conductances) @ v
        out = []
        for ch in channels:
            n = self.node_of_source[ch]
            if n not in driven:
                out.append(0.0)
                continue
            name = terminal(n) if n in self.release.switches else n
            i = float(inj[self.aug.index[name]])
            # the channel's own off-state edge exists only while it is off: not part of its load
            g = self.release.off_siemens(ch)
            if g > 0:
                i -= g * float(v[self.aug.index[name]])
            out.append(i)
        return np.array(out)


__all__ = ["ZERO", "ReleaseCircuit", "terminal"]
