"""The rig file's ``[simulator.wiring]`` table: wiring faults the simulator builds into its breadboard.

::

    [simulator.wiring]
    open_edges = [3]                       # edge indices (network.edges order, from 0)
    shorted_edges = [7]
    swapped_edges = [[2, 9]]               # pairs: each edge's digipot sits in the other's place
    swapped_meter_channels = [["104", "107"]]   # pairs of meter channels with exchanged leads
    loaded_nodes = { n3 = 2000.0 }         # node -> ohms to ground (a released source that still loads it)

Every problem is a one-line :class:`~labnet.core.errors.ConfigError` naming the file and the
key (``simulator.wiring.swapped_edges[0]``); nothing is built during validation.
"""

from __future__ import annotations

import math
from typing import Any

from labnet.config.schema import Table
from labnet.core.network import Network
from labnet.core.wiring import WiringFaults

KEYS = ("open_edges", "shorted_edges", "swapped_edges", "swapped_meter_channels", "loaded_nodes")


def _kind(v: Any) -> str:
    return "a list" if isinstance(v, list) else type(v).__name__


def _edge(t: Table, key: str, v: Any, n_edges: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise t.error(key, f"expected an edge index (integer 0..{n_edges - 1}), got {v!r}")
    if not 0 <= v < n_edges:
        raise t.error(key, f"expected an edge index 0..{n_edges - 1} (network.edges order), got {v}")
    return v


def _list(t: Table, name: str) -> list[Any]:
    v = t.raw(name, [])
    if not isinstance(v, list):
        raise t.error(name, f"expected a list, got {_kind(v)}")
    return v


def _pairs(t: Table, name: str) -> list[tuple[Any, Any]]:
    out = []
    for i, p in enumerate(_list(t, name)):
        if not isinstance(p, list) or len(p) != 2:
            raise t.error(f"{name}[{i}]", f"expected a pair [a, b], got {p!r}")
        if p[0] == p[1]:
            raise t.error(f"{name}[{i}]", f"expected two different entries, got {p!r}")
        out.append((p[0], p[1]))
    return out


def load_wiring(t: Table, network: Network) -> WiringFaults:
    """Validate ``[simulator.wiring]`` against ``network`` (edge indices, meter channels, nodes)."""
    e = network.n_edges
    opened = [_edge(t, f"open_edges[{i}]", v, e) for i, v in enumerate(_list(t, "open_edges"))]
    shorted = [_edge(t, f"shorted_edges[{i}]", v, e) for i, v in enumerate(_list(t, "shorted_edges"))]
    for name, got in (("open_edges", opened), ("shorted_edges", shorted)):
        if len(set(got)) != len(got):
            raise t.error(name, f"an edge is listed twice: {got}")
    both = sorted(set(opened) & set(shorted))
    if both:
        raise t.error("shorted_edges", f"edge(s) {both} cannot be both open and shorted")
    swapped: list[tuple[int, int]] = []
    used: set[int] = set()
    for i, (a, b) in enumerate(_pairs(t, "swapped_edges")):
        key = f"swapped_edges[{i}]"
        pair = (_edge(t, key, a, e), _edge(t, key, b, e))
        if used & set(pair):
            raise t.error(key, f"edge {sorted(used & set(pair))[0]} is already in another swapped pair")
        used |= set(pair)
        swapped.append(pair)
    channels = set(network.meter_channels.values())
    meter: list[tuple[str, str]] = []
    used_ch: set[str] = set()
    for i, (a, b) in enumerate(_pairs(t, "swapped_meter_channels")):
        key = f"swapped_meter_channels[{i}]"
        for ch in (a, b):
            if not isinstance(ch, str) or ch not in channels:
                raise t.error(key, f"expected meter channels of network.meter_channels ({', '.join(sorted(channels))}), "
                                   f"got {ch!r}")
            if ch in used_ch:
                raise t.error(key, f"meter channel {ch!r} is already in another swapped pair")
            used_ch.add(ch)
        meter.append((a, b))
    loads = t.table("loaded_nodes", required=False)
    loaded: list[tuple[str, float]] = []
    for node in loads.data:
        if node not in network.index:
            raise loads.error(node, f"unknown node (nodes: {', '.join(network.nodes)})")
        if node == network.ground:
            raise loads.error(node, "the ground node cannot be loaded to ground")
        r = loads.float(node, lo=0.0, lo_open=True)
        if not math.isfinite(r):  # pragma: no cover - Table.float refuses it already
            raise loads.error(node, f"expected a finite resistance (ohm), got {r}")
        loaded.append((node, r))
    loads.finish()
    t.finish()
    return WiringFaults(tuple(opened), tuple(shorted), tuple(swapped), tuple(meter), tuple(loaded))


__all__ = ["KEYS", "load_wiring"]
