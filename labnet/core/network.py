"""The network: nodes, edges, roles and the wiring maps, validated on construction.

A :class:`Network` is immutable. Node order (``network.nodes``) is the order of every voltage
array in labnet; edge order (``network.edges``) is the order of every conductance, code and
current array.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from labnet.core.errors import ConfigError

CODE = "<code>"
#: Characters allowed in node and channel names read from a file (they become CSV column names
#: and session-file keys): letters, digits, ``_``, ``.`` and ``-``; 1 to :data:`NAME_MAX_LEN` long.
NAME_CHARS = "A-Za-z0-9_.-"
NAME_MAX_LEN = 64
_NAME_RE = re.compile(f"[{NAME_CHARS}]{{1,{NAME_MAX_LEN}}}")


#: The keys of a ``[network]`` table: name -> (type, default: ``"required"`` or a value, or a
#: phrase in parentheses).
NETWORK_KEYS: dict[str, tuple[str, Any]] = {
    "nodes": ("list of node names", "required"),
    "edges": ("list of [from, to] node-name pairs", "required"),
    "ground": ("node name", "required"),
    "inputs": ("list of node names", []),
    "outputs": ("list of node names", []),
    "edge_channels": ("list of integers (digipot channel per edge)", "(0, 1, 2, … in edge order)"),
    "meter_channels": ("table node = channel name", "(none: no meter)"),
    "source_channels": ("table node = channel name", "(none: no sources)"),
    "current_channels": ("table node = current-source channel name (inputs driven by current)", "(none)"),
}


class Network:
    """A resistor network with roles and wiring.

    Parameters
    ----------
    nodes : sequence of str
        Node names; their order fixes the order of voltage arrays.
    edges : sequence of (str, str)
        Edges as pairs of node names; their order fixes the order of per-edge arrays.
        The first node of a pair is the edge's "from" end: ΔV_j = V[from] − V[to].
    ground : str
        The node tied to 0 V.
    inputs, outputs : sequence of str
        Input nodes (driven by sources) and output nodes (floating in the free state,
        clamped by sources in the clamped state).
    edge_channels : sequence of int, optional
        Digipot channel of each edge (default: edge index).
    meter_channels : mapping node -> str, optional
        Meter channel of each measured node (default: the node name).
    source_channels : mapping node -> str, optional
        Source channel of each driven node (default: the node name for inputs and outputs).
    current_channels : mapping node -> str, optional
        Current-source channel of each node driven by a current (a Keithley 2450 sourcing current
        with a voltage limit): such an input is a force, not a held voltage (an output with one is
        nudged by a current — equilibrium propagation — not clamped); it needs no
        ``source_channels`` entry (default: none).
    file : str
        Where the description came from, for error messages.
    key : str
        The table the description came from (``"network"`` in a rig file).

    Raises
    ------
    ConfigError
        On a disconnected graph, an unknown node, a self-loop, a duplicate edge, overlapping
        roles, a channel used twice or a missing ground.
    """

    def __init__(
        self,
        nodes: Sequence[str],
        edges: Sequence[Sequence[str]],
        *,
        ground: str | None,
        inputs: Sequence[str] = (),
        outputs: Sequence[str] = (),
        edge_channels: Sequence[int] | None = None,
        meter_channels: Mapping[str, str] | None = None,
        source_channels: Mapping[str, str] | None = None,
        current_channels: Mapping[str, str] | None = None,
        file: str = CODE,
        key: str = "network",
    ) -> None:
        self.file = file
        self._key = key
        self.nodes: tuple[str, ...] = tuple(str(n) for n in nodes)
        self.edges: tuple[tuple[str, str], ...] = tuple(_edge(e, file, key, i) for i, e in enumerate(edges))
        self.ground: str = "" if ground is None else str(ground)
        self.inputs: tuple[str, ...] = tuple(str(n) for n in inputs)
        self.outputs: tuple[str, ...] = tuple(str(n) for n in outputs)
        self.edge_channels: tuple[int, ...] = (
            tuple(range(len(self.edges))) if edge_channels is None else tuple(int(c) for c in edge_channels)
        )
        self.meter_channels: dict[str, str] = (
            {n: n for n in self.nodes} if meter_channels is None else {str(k): str(v) for k, v in meter_channels.items()}
        )
        self.source_channels: dict[str, str] = (
            {n: n for n in self.inputs + self.outputs}
            if source_channels is None
            else {str(k): str(v) for k, v in source_channels.items()}
        )
        self.current_channels: dict[str, str] = {str(k): str(v) for k, v in (current_channels or {}).items()}
        self._validate()

    # ------------------------------------------------------------------ validation
    def _err(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.file, f"{self._key}.{key}" if key else self._key, problem)

    def _validate(self) -> None:
        if len(self.nodes) < 2:
            raise self._err("nodes", f"expected at least 2 nodes, got {len(self.nodes)}")
        seen: set[str] = set()
        for n in self.nodes:
            if not n:
                raise self._err("nodes", "empty node name")
            if n in seen:
                raise self._err("nodes", f"node {n!r} listed twice")
            seen.add(n)
        if not self.edges:
            raise self._err("edges", "expected at least one edge")
        pairs: dict[frozenset[str], int] = {}
        for i, (a, b) in enumerate(self.edges):
            for end in (a, b):
                if end not in seen:
                    raise self._err(f"edges[{i}]", f"unknown node {end!r} (nodes are {_short(self.nodes)})")
            if a == b:
                raise self._err(f"edges[{i}]", f"self-loop on node {a!r}")
            p = frozenset((a, b))
            if p in pairs:
                raise self._err(f"edges[{i}]", f"duplicate edge {a!r}-{b!r} (same as edges[{pairs[p]}])")
            pairs[p] = i
        if not self.ground:
            raise self._err("ground", "missing: every network needs a ground node")
        if self.ground not in seen:
            raise self._err("ground", f"unknown node {self.ground!r}")
        for role, members in (("inputs", self.inputs), ("outputs", self.outputs)):
            for n in members:
                if n not in seen:
                    raise self._err(role, f"unknown node {n!r}")
            twice = sorted({n for n in members if list(members).count(n) > 1})
            if twice:
                raise self._err(role, f"node {twice[0]!r} listed twice")
            if self.ground in members:
                raise self._err(role, f"ground node {self.ground!r} cannot also be one of the {role}")
        both = set(self.inputs) & set(self.outputs)
        if both:
            raise self._err("outputs", f"node(s) {sorted(both)} are both inputs and outputs")
        if len(self.edge_channels) != len(self.edges):
            raise self._err(
                "edge_channels", f"expected one channel per edge ({len(self.edges)}), got {len(self.edge_channels)}"
            )
        _unique(self.edge_channels, self._err, "edge_channels", "digipot channel")
        if any(c < 0 for c in self.edge_channels):
            raise self._err("edge_channels", "channels must be >= 0")
        for table, name in ((self.meter_channels, "meter_channels"), (self.source_channels, "source_channels"),
                            (self.current_channels, "current_channels")):
            for n in table:
                if n not in seen:
                    raise self._err(f"{name}.{n}", f"unknown node {n!r}")
            _unique(list(table.values()), self._err, name, "channel")
        for n, ch in self.current_channels.items():
            if n not in self.inputs and n not in self.outputs:
                raise self._err(f"current_channels.{n}", f"node {n!r} is neither an input nor an output")
            if n in self.source_channels:
                raise self._err(f"current_channels.{n}", f"node {n!r} also has a voltage source channel "
                                f"({self.source_channels[n]}): a node is driven by a voltage or by a current")
            if ch in self.source_channels.values():
                raise self._err(f"current_channels.{n}", f"channel {ch!r} is also a voltage source channel")
        for n in self.inputs + self.outputs:
            if n not in self.source_channels and n not in self.current_channels:
                raise self._err("source_channels", f"node {n!r} is an input/output but has no source channel")
        if self.ground in self.source_channels or self.ground in self.current_channels:
            raise self._err(f"source_channels.{self.ground}", "the ground node is wired to ground, not to a source")
        n_comp = self._components()
        if n_comp > 1:
            raise self._err("edges", f"graph is disconnected ({n_comp} components); every node must reach ground")

    def _components(self) -> int:
        from scipy.sparse.csgraph import connected_components

        a = self.adjacency
        n, _ = connected_components(a, directed=False)
        return int(n)

    # ------------------------------------------------------------------ structure
    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @cached_property
    def index(self) -> dict[str, int]:
        """Node name -> position in ``nodes``."""
        return {n: i for i, n in enumerate(self.nodes)}

    @cached_property
    def edge_ends(self) -> tuple[np.ndarray, np.ndarray]:
        """Index arrays ``(src, dst)``, each shape (E,), of the edges' two ends."""
        src = np.array([self.index[a] for a, _ in self.edges], dtype=np.int64)
        dst = np.array([self.index[b] for _, b in self.edges], dtype=np.int64)
        return src, dst

    @cached_property
    def incidence(self) -> sp.csr_matrix:
        """Edge-node incidence matrix Δ, shape (E, N): +1 at an edge's from-node, −1 at its to-node."""
        src, dst = self.edge_ends
        e = np.arange(self.n_edges)
        data = np.concatenate([np.ones(self.n_edges), -np.ones(self.n_edges)])
        return sp.csr_matrix(
            (data, (np.concatenate([e, e]), np.concatenate([src, dst]))), shape=(self.n_edges, self.n_nodes)
        )

    @cached_property
    def adjacency(self) -> sp.csr_matrix:
        """Symmetric 0/1 adjacency matrix, shape (N, N)."""
        src, dst = self.edge_ends
        ones = np.ones(self.n_edges)
        a = sp.coo_matrix((ones, (src, dst)), shape=(self.n_nodes, self.n_nodes))
        return (a + a.T).tocsr()

    def indices(self, names: Iterable[str]) -> np.ndarray:
        """Positions of the named nodes in ``nodes``, shape (len(names),)."""
        try:
            return np.array([self.index[n] for n in names], dtype=np.int64)
        except KeyError as exc:
            raise ConfigError(self.file, self._key, f"unknown node {exc.args[0]!r}") from None

    def laplacian(self, conductances: np.ndarray) -> sp.csr_matrix:
        """Weighted Laplacian L = Δᵀ diag(k) Δ, shape (N, N), for conductances k (S), shape (E,)."""
        k = np.asarray(conductances, dtype=float)
        d = self.incidence
        return (d.T @ sp.diags(k) @ d).tocsr()

    def delta_v(self, voltages: np.ndarray) -> np.ndarray:
        """Voltage drop across every edge, V[from] − V[to]; shape (E,) or (E, B) for (N,) or (N, B)."""
        src, dst = self.edge_ends
        v = np.asarray(voltages)
        return v[src] - v[dst]

    def with_roles(self, *, inputs: Sequence[str], outputs: Sequence[str], file: str = CODE, key: str = "roles") -> Network:
        """A copy with other input and output nodes (same wiring); validated like the original."""
        return Network(
            self.nodes,
            self.edges,
            ground=self.ground,
            inputs=inputs,
            outputs=outputs,
            edge_channels=self.edge_channels,
            meter_channels=self.meter_channels,
            source_channels=self.source_channels,
            current_channels={n: c for n, c in self.current_channels.items() if n in set(inputs) | set(outputs)},
            file=file,
            key=key,
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``[network]`` and wiring tables as plain data (TOML-ready)."""
        return {
            "nodes": list(self.nodes),
            "edges": [list(e) for e in self.edges],
            "ground": self.ground,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "edge_channels": list(self.edge_channels),
            "meter_channels": dict(self.meter_channels),
            "source_channels": dict(self.source_channels),
            **({"current_channels": dict(self.current_channels)} if self.current_channels else {}),
        }

    @classmethod
    def from_dict(cls, table: Mapping[str, Any], *, file: str = CODE, key: str = "network") -> Network:
        """Build from a ``[network]`` table (see ``to_dict``); wrong types are reported by key."""
        if not isinstance(table, Mapping):
            raise ConfigError(file, key, f"expected a table, got {type(table).__name__}")
        known = set(NETWORK_KEYS)
        for k in table:
            if k not in known:
                raise ConfigError(file, f"{key}.{k}", f"unknown key (expected one of {sorted(known)})")
        for req in ("nodes", "edges"):
            if req not in table:
                raise ConfigError(file, f"{key}.{req}", "missing required key")
        nodes = _str_list(table["nodes"], file, f"{key}.nodes")
        for i, n in enumerate(nodes):
            check_name(n, file, f"{key}.nodes[{i}]", "node name")
        raw_edges = table["edges"]
        if not isinstance(raw_edges, list):
            raise ConfigError(file, f"{key}.edges", "expected a list of [from, to] pairs")
        edges = []
        for i, e in enumerate(raw_edges):
            if not (isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e)):
                raise ConfigError(file, f"{key}.edges[{i}]", f"expected a pair of node names, got {e!r}")
            edges.append((e[0], e[1]))
        ground = table.get("ground")
        if ground is not None and not isinstance(ground, str):
            raise ConfigError(file, f"{key}.ground", f"expected a node name, got {ground!r}")
        ch = table.get("edge_channels")
        if ch is not None and not (isinstance(ch, list) and all(isinstance(c, int) and not isinstance(c, bool) for c in ch)):
            raise ConfigError(file, f"{key}.edge_channels", "expected a list of integers")
        maps = {}
        for m in ("meter_channels", "source_channels", "current_channels"):
            v = table.get(m)
            if v is not None and not isinstance(v, Mapping):
                raise ConfigError(file, f"{key}.{m}", "expected a table node = channel")
            if v is not None:
                for a, b in v.items():
                    if not isinstance(b, str):
                        raise ConfigError(file, f"{key}.{m}.{_shown(a)}", f"expected a channel name, got {b!r}")
                    check_name(a, file, f"{key}.{m}", "node name")
                    check_name(b, file, f"{key}.{m}.{a}", "channel name")
            maps[m] = None if v is None else {str(a): str(b) for a, b in v.items()}
        return cls(
            nodes,
            edges,
            ground=ground,
            inputs=_str_list(table.get("inputs", []), file, f"{key}.inputs"),
            outputs=_str_list(table.get("outputs", []), file, f"{key}.outputs"),
            edge_channels=ch,
            meter_channels=maps["meter_channels"],
            source_channels=maps["source_channels"],
            current_channels=maps["current_channels"],
            file=file,
            key=key,
        )

    def __repr__(self) -> str:
        return (
            f"Network({self.n_nodes} nodes, {self.n_edges} edges, ground={self.ground!r}, "
            f"inputs={list(self.inputs)}, outputs={list(self.outputs)})"
        )


def _edge(e: Sequence[str], file: str, key: str, i: int) -> tuple[str, str]:
    if isinstance(e, str) or len(e) != 2:
        raise ConfigError(file, f"{key}.edges[{i}]", f"expected a pair of node names, got {e!r}")
    return (str(e[0]), str(e[1]))


def check_name(name: str, file: str, key: str, what: str = "name") -> None:
    """Raise ConfigError unless ``name`` is 1..NAME_MAX_LEN characters from NAME_CHARS."""
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(file, key, f"expected a {what} of 1 to {NAME_MAX_LEN} characters from "
                          f"[{NAME_CHARS}], got {name!r}")


def _shown(name: str) -> str:
    """``name`` for an error key: itself when safe, else its repr (no newline or NUL in the message)."""
    return name if _NAME_RE.fullmatch(name) else repr(name)


def _str_list(v: Any, file: str, key: str) -> list[str]:
    if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
        raise ConfigError(file, key, f"expected a list of node names, got {v!r}")
    return v


def _unique(values: Sequence[Any], err: Any, key: str, what: str) -> None:
    seen: dict[Any, int] = {}
    for i, v in enumerate(values):
        if v in seen:
            raise err(key, f"{what} {v!r} used twice")
        seen[v] = i


def _short(names: Sequence[str], n: int = 8) -> str:
    s = ", ".join(names[:n])
    return f"[{s}{', ...' if len(names) > n else ''}]"
