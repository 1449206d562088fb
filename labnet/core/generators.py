"""Network generators: seeded random connected graphs, square lattices, the 16-edge breadboard.

Every generator is deterministic for a given seed. Node names are strings (``"n0"``,
``"n1"``, … or ``"r_c"`` on lattices); roles are picked from the seed unless given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labnet.core.errors import ConfigError
from labnet.core.network import Network


def _pick_roles(
    rng: np.random.Generator, nodes: Sequence[str], n_inputs: int, n_outputs: int
) -> tuple[str, list[str], list[str]]:
    if n_inputs + n_outputs + 1 > len(nodes):
        raise ConfigError("<code>", "roles", f"{n_inputs} inputs + {n_outputs} outputs + ground exceed {len(nodes)} nodes")
    order = rng.permutation(len(nodes))
    picked = [nodes[i] for i in order[: 1 + n_inputs + n_outputs]]
    return picked[0], picked[1 : 1 + n_inputs], picked[1 + n_inputs :]


def random_edges(n_nodes: int, n_edges: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Edges of a random connected simple graph: a random spanning tree plus random extra edges.

    Returns ``n_edges`` distinct unordered pairs of node indices, shape-free list.
    """
    max_edges = n_nodes * (n_nodes - 1) // 2
    if not n_nodes - 1 <= n_edges <= max_edges:
        raise ConfigError(
            "<code>", "n_edges", f"a connected simple graph on {n_nodes} nodes has {n_nodes - 1}..{max_edges} edges, got {n_edges}"
        )
    perm = rng.permutation(n_nodes)
    edges: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    for i in range(1, n_nodes):  # random recursive tree: node perm[i] joins an earlier node
        a, b = int(perm[i]), int(perm[rng.integers(0, i)])
        p = (min(a, b), max(a, b))
        edges.append(p)
        seen.add(p)
    while len(edges) < n_edges:
        a, b = (int(x) for x in rng.integers(0, n_nodes, size=2))
        p = (min(a, b), max(a, b))
        if a != b and p not in seen:
            seen.add(p)
            edges.append(p)
    return edges


def random_network(
    n_nodes: int, n_edges: int, *, seed: int | np.random.Generator = 0, n_inputs: int = 2, n_outputs: int = 1
) -> Network:
    """A seeded random connected network with ``n_nodes`` nodes and ``n_edges`` edges.

    Ground, inputs and outputs are distinct nodes drawn from the same generator.
    """
    rng = np.random.default_rng(seed)
    nodes = [f"n{i}" for i in range(n_nodes)]
    edges = [(nodes[a], nodes[b]) for a, b in random_edges(n_nodes, n_edges, rng)]
    ground, inputs, outputs = _pick_roles(rng, nodes, n_inputs, n_outputs)
    return Network(nodes, edges, ground=ground, inputs=inputs, outputs=outputs)


def square_lattice(
    rows: int,
    cols: int,
    *,
    periodic: bool = False,
    seed: int | np.random.Generator = 0,
    n_inputs: int = 2,
    n_outputs: int = 1,
) -> Network:
    """A rows × cols square lattice (nearest-neighbour edges), optionally periodic in both directions.

    Nodes are named ``"r_c"``. Periodic wrapping needs at least 3 rows/cols so no edge repeats.
    """
    if rows < 1 or cols < 1 or rows * cols < 2:
        raise ConfigError("<code>", "lattice", f"need at least 2 nodes, got {rows}x{cols}")
    if periodic and (rows < 3 or cols < 3):
        raise ConfigError("<code>", "lattice.periodic", "a periodic lattice needs at least 3 rows and 3 columns")
    nodes = [f"{r}_{c}" for r in range(rows) for c in range(cols)]
    edges = []
    for r in range(rows):
        for c in range(cols):
            if c + 1 < cols or periodic:
                edges.append((f"{r}_{c}", f"{r}_{(c + 1) % cols}"))
            if r + 1 < rows or periodic:
                edges.append((f"{r}_{c}", f"{(r + 1) % rows}_{c}"))
    rng = np.random.default_rng(seed)
    ground, inputs, outputs = _pick_roles(rng, nodes, n_inputs, n_outputs)
    return Network(nodes, edges, ground=ground, inputs=inputs, outputs=outputs)


def delaunay_network(
    n_nodes: int, *, seed: int | np.random.Generator = 0, n_inputs: int = 2, n_outputs: int = 1
) -> Network:
    """The Delaunay triangulation of ``n_nodes`` uniform random points in the unit square.

    About 3·n_nodes edges; planar, connected, the usual in-silico coupled-learning network.
    """
    from scipy.spatial import Delaunay

    rng = np.random.default_rng(seed)
    pts = rng.random((n_nodes, 2))
    tri = Delaunay(pts).simplices
    pairs = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]])
    pairs.sort(axis=1)
    pairs = np.unique(pairs, axis=0)
    nodes = [f"n{i}" for i in range(n_nodes)]
    edges = [(nodes[a], nodes[b]) for a, b in pairs]
    ground, inputs, outputs = _pick_roles(rng, nodes, n_inputs, n_outputs)
    return Network(nodes, edges, ground=ground, inputs=inputs, outputs=outputs)


def breadboard16(seed: int = 16) -> Network:
    """The 16-edge, 10-node random network of the first breadboard demonstrations.

    Random wiring (a seeded random connected graph) on nodes ``n0…n9``; ground ``n0``, inputs
    ``n1, n2``, outputs ``n3, n4``. Digipot channels 0–15 follow edge order, meter channels are
    101–110 (a 34970A/DAQ970A multiplexer card), and nodes ``n1…n7`` have source channels
    (``psu1.1–3``, ``psu2.1–3`` on two 3-channel supplies, ``smu.1`` on an SMU) so that other
    role assignments (Iris: 4 inputs, 3 outputs) fit the same wiring.
    """
    rng = np.random.default_rng(seed)
    nodes = [f"n{i}" for i in range(10)]
    edges = [(nodes[a], nodes[b]) for a, b in random_edges(len(nodes), 16, rng)]
    channels = ["psu1.1", "psu1.2", "psu1.3", "psu2.1", "psu2.2", "psu2.3", "smu.1"]
    return Network(
        nodes,
        edges,
        ground="n0",
        inputs=["n1", "n2"],
        outputs=["n3", "n4"],
        edge_channels=list(range(16)),
        meter_channels={n: str(101 + i) for i, n in enumerate(nodes)},
        source_channels=dict(zip(nodes[1:8], channels)),
    )
