"""Kirchhoff solves of a resistor network: node voltages, edge currents, dissipated power.

One implementation serves the simulator (the truth of the breadboard), in-silico training and
analysis. With edge conductances k (S, shape (E,)) and some nodes held at given voltages, the
free nodes f satisfy Kirchhoff's current law

    L_ff V_f = −L_fh V_h,        L = Δᵀ diag(k) Δ,

where Δ is the (E, N) incidence matrix. :class:`Solver` factorises L_ff once (dense Cholesky
below :data:`DENSE_MAX` free nodes, sparse above: CHOLMOD when scikit-sparse is installed —
the optional ``fast`` extra — else SciPy's SuperLU) and serves any number of held-voltage
vectors at once; :meth:`Solver.clamped` solves the clamped state — some free nodes held too —
on the *same* factorisation through a bordered (Schur complement) system.

:class:`Solver` is for one set of conductances. Training loops that change conductances every
step should use :mod:`labnet.insilico.trainer`, which keeps the symbolic analysis across steps and can
go below one factorisation per step (:mod:`labnet.core.solvers`).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence

import numpy as np

from labnet.core.errors import ConfigError
from labnet.core.lapack import dpotrf, dpotrs
from labnet.core.network import Network
from labnet.core.solvers import ReducedLaplacian, SparseCholesky

#: Free-node count at or below which the dense path is used.
DENSE_MAX = 400

# Reduced-Laplacian patterns per network and held set. A Network is immutable, so the pattern
# (index maps, incidence slices) is computed once; the simulator builds a Solver for every new
# set of codes or driven sources, and this keeps that cheap.
_PATTERNS: weakref.WeakKeyDictionary[Network, dict[tuple[int, ...], ReducedLaplacian]] = weakref.WeakKeyDictionary()
_PATTERNS_PER_NETWORK = 64


def reduced_laplacian(network: Network, held_idx: np.ndarray) -> ReducedLaplacian:
    """The (cached) :class:`~labnet.core.solvers.ReducedLaplacian` of ``network`` with ``held_idx`` held."""
    key = tuple(int(i) for i in held_idx)
    per = _PATTERNS.setdefault(network, {})
    red = per.get(key)
    if red is None:
        if len(per) >= _PATTERNS_PER_NETWORK:
            per.pop(next(iter(per)))
        red = per[key] = ReducedLaplacian(network, held_idx)
    return red


_BY_NAMES: weakref.WeakKeyDictionary[Network, dict[tuple[str, ...], tuple[ReducedLaplacian, np.ndarray]]] = (
    weakref.WeakKeyDictionary())


def _reduced_by_names(network: Network, names: tuple[str, ...]) -> tuple[ReducedLaplacian, np.ndarray]:
    """:func:`reduced_laplacian` and the held indices, looked up by held-node names (a small
    network's Solver is built for every new set of conductances: this skips the name -> index work)."""
    per = _BY_NAMES.get(network)
    if per is None:
        per = _BY_NAMES.setdefault(network, {})
    hit = per.get(names)
    if hit is None:
        idx = network.indices(names)
        idx.flags.writeable = False
        hit = (reduced_laplacian(network, idx), idx)
        if len(per) >= _PATTERNS_PER_NETWORK:
            per.pop(next(iter(per)))
        per[names] = hit
    return hit


class Solver:
    """Factorised reduced Laplacian of ``network`` for conductances ``k`` and a set of held nodes.

    Parameters
    ----------
    network : Network
    conductances : array, shape (E,)
        Edge conductances in siemens, all > 0.
    held : sequence of str
        Nodes whose voltage is imposed (by sources, or ground). Ground is always held; it is
        added if missing.
    backend : {"cholmod", "splu"}, optional
        Sparse factorisation back end (used above :data:`DENSE_MAX` free nodes). Default:
        CHOLMOD when scikit-sparse is installed, else SciPy's SuperLU.
    """

    def __init__(
        self, network: Network, conductances: np.ndarray, held: Sequence[str], backend: str | None = None
    ) -> None:
        k = np.asarray(conductances, dtype=float)
        if k.shape != (network.n_edges,):
            raise ConfigError("<code>", "conductances", f"expected shape ({network.n_edges},), got {k.shape}")
        if not (k.size == 0 or (k.min() > 0 and k.max() < np.inf)):  # NaN fails both comparisons
            raise ConfigError("<code>", "conductances", "every conductance must be finite and > 0 S")
        names = list(dict.fromkeys([network.ground, *held]))
        self.network = network
        self.conductances = k
        self.held_names: tuple[str, ...] = tuple(names)
        self._held_set = frozenset(names)
        red, self.held_idx = _reduced_by_names(network, self.held_names)
        self.free_idx = red.free_idx
        self._free_pos = red.free_pos
        self._l_fh = red.coupling(k)  # (F, H) dense: H is a handful of sources
        self.dense = self.free_idx.size <= DENSE_MAX
        self.backend = "dense" if self.dense else None
        if self.free_idx.size == 0:
            self._solve = lambda b: b
        elif self.dense:
            c, info = dpotrf(red.dense(k), lower=1, clean=0, overwrite_a=1)
            if info:
                raise np.linalg.LinAlgError(f"reduced Laplacian not positive definite (dpotrf info={info})")
            self._solve = lambda b: dpotrs(c, b, lower=1)[0]
        else:
            factor = SparseCholesky(red.matrix(k), backend)
            self.backend = factor.backend
            self._solve = factor.solve
        self._border: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    def free_resistances(self) -> np.ndarray:
        """diag(L_ff⁻¹) (Ω), shape (F,): the Thevenin resistance of every free node in
        ``free_idx`` order (what :func:`thevenin_resistance` gives for all free nodes)."""
        n = self.free_idx.size
        return np.diagonal(self._solve(np.eye(n))).copy() if n else np.zeros(0)

    def solve_free_rhs(self, rhs: np.ndarray) -> np.ndarray:
        """L_ff⁻¹ · rhs for rhs of shape (F,) or (F, B)."""
        return self._solve(np.asarray(rhs, dtype=float))

    def _held_vector(self, held_values: Mapping[str, float | np.ndarray]) -> tuple[np.ndarray, tuple[int, ...]]:
        missing = [n for n in self.held_names if n != self.network.ground and n not in held_values]
        if missing:
            raise ConfigError("<code>", "held", f"no voltage given for held node(s) {missing}")
        extra = [n for n in held_values if n not in self._held_set]
        if extra:
            raise ConfigError("<code>", "held", f"node(s) {extra} are not held by this solver")
        raw = [held_values.get(n, 0.0) for n in self.held_names]
        if all(isinstance(v, float | int) for v in raw):  # the common case: one state, plain numbers
            return np.array(raw, dtype=float), ()
        vals = [np.asarray(v, dtype=float) for v in raw]
        shape = np.broadcast_shapes(*(v.shape for v in vals))
        if len(shape) > 1:
            raise ConfigError("<code>", "held", f"held values must be scalars or shape (B,), got {shape}")
        return np.stack([np.broadcast_to(v, shape) for v in vals]), shape

    def solve(self, held_values: Mapping[str, float | np.ndarray]) -> np.ndarray:
        """Node voltages (V), shape (N,) or (N, B), for the given held voltages.

        ``held_values`` maps every held node (ground may be omitted: 0 V) to a voltage or an
        array of B voltages.
        """
        vh, shape = self._held_vector(held_values)
        v = np.empty((self.network.n_nodes, *shape))
        v[self.held_idx] = vh
        v[self.free_idx] = self._solve(-(self._l_fh @ vh))
        return v

    def clamped(
        self, held_values: Mapping[str, float | np.ndarray], clamp: Mapping[str, float | np.ndarray]
    ) -> np.ndarray:
        """Node voltages with extra nodes ``clamp`` (free in this solver) held as well.

        Reuses this solver's factorisation: with E selecting the clamped free nodes,
        x = L_ff⁻¹(b − E μ) and Eᵀx = v_c give (Eᵀ L_ff⁻¹ E) μ = Eᵀ L_ff⁻¹ b − v_c. The
        |clamp| columns L_ff⁻¹E are computed once per clamp set and cached.
        """
        vh, shape = self._held_vector(held_values)
        names = list(clamp)
        pos = self._free_pos[self.network.indices(names)]
        if np.any(pos < 0):
            raise ConfigError("<code>", "clamp", f"clamped nodes {names} must be free in this solver")
        key = tuple(int(p) for p in pos)
        if key not in self._border:
            e = np.zeros((self.free_idx.size, len(key)))
            e[list(key), np.arange(len(key))] = 1.0
            z = self._solve(e)
            self._border[key] = (z, np.linalg.inv(z[list(key)]))
        z, s_inv = self._border[key]
        vc = np.stack([np.broadcast_to(np.asarray(clamp[n], dtype=float), shape) for n in names])
        x0 = self._solve(-(self._l_fh @ vh))
        mu = s_inv @ (x0[list(key)] - vc)
        x = x0 - z @ mu
        x[list(key)] = vc  # exact by construction; remove round-off
        v = np.empty((self.network.n_nodes, *shape))
        v[self.held_idx] = vh
        v[self.free_idx] = x
        return v


def solve(
    network: Network, conductances: np.ndarray, held: Mapping[str, float | np.ndarray]
) -> np.ndarray:
    """Node voltages of a resistor network.

    Parameters
    ----------
    network : Network
    conductances : array, shape (E,)
        Edge conductances in siemens (> 0), in ``network.edges`` order.
    held : mapping node -> float or array of shape (B,)
        Voltages (V) imposed at some nodes. Ground is held at 0 V unless given.

    Returns
    -------
    voltages : array, shape (N,) or (N, B)
        Node voltages in ``network.nodes`` order.

    Examples
    --------
    >>> from labnet import Network, solve
    >>> net = Network(["g", "a", "b"], [("a", "b"), ("b", "g")], ground="g")
    >>> solve(net, [1e-3, 1e-3], {"a": 1.0}).round(3).tolist()
    [0.0, 1.0, 0.5]
    """
    return Solver(network, conductances, list(held)).solve(held)


def edge_currents(network: Network, conductances: np.ndarray, voltages: np.ndarray) -> np.ndarray:
    """Current (A) through every edge from its from-node to its to-node, shape (E,) or (E, B)."""
    k = np.asarray(conductances, dtype=float)
    dv = network.delta_v(voltages)
    return k.reshape(k.shape + (1,) * (dv.ndim - 1)) * dv


def dissipated_power(network: Network, conductances: np.ndarray, voltages: np.ndarray) -> np.ndarray:
    """Total power (W) dissipated in the edges, Σ_j k_j ΔV_j²; scalar or shape (B,)."""
    k = np.asarray(conductances, dtype=float)
    dv = network.delta_v(voltages)
    return np.tensordot(k, dv**2, axes=(0, 0))


def laplacian_dense(network: Network, conductances: np.ndarray) -> np.ndarray:
    """Dense weighted Laplacian, shape (N, N) — for small networks and tests."""
    return network.laplacian(conductances).toarray()


def thevenin_resistance(solver: Solver, nodes: Sequence[str]) -> np.ndarray:
    """Resistance (Ω) seen from each named free node to the held nodes: diag(L_ff⁻¹), shape (n,)."""
    pos = solver._free_pos[solver.network.indices(nodes)]
    out = np.zeros(len(pos))
    ok = pos >= 0
    if np.any(ok):
        e = np.zeros((solver.free_idx.size, int(ok.sum())))
        e[pos[ok], np.arange(int(ok.sum()))] = 1.0
        out[ok] = np.einsum("ij,ij->j", e, solver.solve_free_rhs(e))
    return out


__all__ = [
    "DENSE_MAX",
    "Solver",
    "dissipated_power",
    "edge_currents",
    "laplacian_dense",
    "reduced_laplacian",
    "solve",
    "thevenin_resistance",
]
