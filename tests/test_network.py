"""Network construction, structure and validation."""

from __future__ import annotations

import numpy as np
import pytest

from labnet import ConfigError, Network, breadboard16, delaunay_network, random_network, square_lattice


def tri() -> Network:
    return Network(["g", "a", "b"], [("a", "b"), ("b", "g"), ("a", "g")], ground="g", inputs=["a"], outputs=["b"])


def test_incidence_and_laplacian() -> None:
    net = tri()
    d = net.incidence.toarray()
    assert d.shape == (3, 3)
    np.testing.assert_array_equal(d, [[0, 1, -1], [-1, 0, 1], [-1, 1, 0]])
    k = np.array([1.0, 2.0, 3.0])
    lap = net.laplacian(k).toarray()
    np.testing.assert_allclose(lap.sum(axis=1), 0.0)
    np.testing.assert_allclose(lap, d.T @ np.diag(k) @ d)
    np.testing.assert_allclose(net.delta_v(np.array([0.0, 1.0, 0.25])), [0.75, 0.25, 1.0])


def test_defaults_for_channels() -> None:
    net = tri()
    assert net.edge_channels == (0, 1, 2)
    assert net.meter_channels == {"g": "g", "a": "a", "b": "b"}
    assert net.source_channels == {"a": "a", "b": "b"}


@pytest.mark.parametrize(
    ("kwargs", "key", "words"),
    [
        (dict(edges=[("a", "b"), ("c", "d")], nodes=["g", "a", "b", "c", "d"]), "network.edges", "disconnected"),
        (dict(edges=[("a", "x"), ("a", "g")]), "network.edges[0]", "unknown node 'x'"),
        (dict(edges=[("a", "a"), ("a", "g")]), "network.edges[0]", "self-loop"),
        (dict(edges=[("a", "g"), ("g", "a"), ("a", "b")]), "network.edges[1]", "duplicate edge"),
        (dict(inputs=["a"], outputs=["a"]), "network.outputs", "both inputs and outputs"),
        (dict(inputs=["zz"]), "network.inputs", "unknown node 'zz'"),
        (dict(ground=None), "network.ground", "missing"),
        (dict(ground="q"), "network.ground", "unknown node 'q'"),
        (dict(inputs=["g"]), "network.inputs", "ground node"),
        (dict(edge_channels=[3, 3]), "network.edge_channels", "used twice"),
        (dict(edge_channels=[0]), "network.edge_channels", "one channel per edge"),
        (dict(meter_channels={"a": "101", "b": "101"}), "network.meter_channels", "used twice"),
        (dict(source_channels={"a": "1", "b": "1"}, outputs=["b"]), "network.source_channels", "used twice"),
        (dict(source_channels={"a": "1"}, outputs=["b"]), "network.source_channels", "no source channel"),
    ],
)
def test_validation_errors_name_key(kwargs: dict, key: str, words: str) -> None:
    args = dict(nodes=["g", "a", "b"], edges=[("a", "b"), ("b", "g")], ground="g", inputs=["a"], outputs=[])
    args.update(kwargs)
    nodes, edges = args.pop("nodes"), args.pop("edges")
    with pytest.raises(ConfigError) as info:
        Network(nodes, edges, file="rig.toml", **args)
    msg = str(info.value)
    assert msg.startswith(f"rig.toml: {key}: "), msg
    assert words in msg
    assert "\n" not in msg


def test_from_dict_roundtrip_and_type_errors() -> None:
    net = breadboard16(17)
    again = Network.from_dict(net.to_dict())
    assert again.edges == net.edges and again.source_channels == net.source_channels
    with pytest.raises(ConfigError, match=r"f.toml: network.edges\[1\]: expected a pair"):
        Network.from_dict({"nodes": ["g", "a"], "edges": [["g", "a"], ["a"]], "ground": "g"}, file="f.toml")
    with pytest.raises(ConfigError, match="f.toml: network.colour: unknown key"):
        Network.from_dict({"nodes": ["g", "a"], "edges": [["g", "a"]], "ground": "g", "colour": 1}, file="f.toml")
    with pytest.raises(ConfigError, match="f.toml: network.nodes: missing required key"):
        Network.from_dict({"edges": [["g", "a"]], "ground": "g"}, file="f.toml")


def test_with_roles_validates() -> None:
    net = breadboard16(17)
    iris = net.with_roles(inputs=["n3", "n2", "n6", "n5"], outputs=["n1", "n4", "n7"])
    assert iris.edges == net.edges and iris.outputs == ("n1", "n4", "n7")
    with pytest.raises(ConfigError, match="roles.source_channels: node 'n9'"):
        net.with_roles(inputs=["n9"], outputs=["n1"])


@pytest.mark.parametrize("seed", range(5))
def test_random_network_is_connected_simple_and_seeded(seed: int) -> None:
    a = random_network(30, 60, seed=seed)
    b = random_network(30, 60, seed=seed)
    assert a.edges == b.edges and a.n_edges == 60 and a.n_nodes == 30
    assert len({frozenset(e) for e in a.edges}) == 60
    assert random_network(30, 60, seed=seed + 100).edges != a.edges


def test_random_network_rejects_impossible_edge_count() -> None:
    with pytest.raises(ConfigError, match="n_edges"):
        random_network(5, 11)
    with pytest.raises(ConfigError, match="n_edges"):
        random_network(5, 3)


def test_square_lattice_counts() -> None:
    assert square_lattice(4, 5).n_edges == 4 * 4 + 3 * 5
    assert square_lattice(4, 5, periodic=True).n_edges == 2 * 20
    with pytest.raises(ConfigError, match="periodic"):
        square_lattice(2, 5, periodic=True)


def test_delaunay_and_breadboard16() -> None:
    net = delaunay_network(200, seed=1)
    assert 2.5 * 200 < net.n_edges < 3 * 200
    bb = breadboard16()
    assert bb.n_edges == 16 and bb.n_nodes == 10
    assert sorted(bb.meter_channels.values()) == [str(c) for c in range(101, 111)]
