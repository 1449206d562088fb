"""Kirchhoff solves with current-sourced (Neumann) nodes, and current sources with a voltage limit.

With edge conductances k (S, shape (E,)), held nodes h (voltage sources, ground among them) and
currents I (A) injected into some of the other nodes (positive = into the node), the free nodes f
satisfy

    L_ff V_f = I_f − L_fh V_h,        L = Δᵀ diag(k) Δ.

A real current source (the Keithley 2450 sourcing current) has a voltage limit VLIM: when the
network would need |V_n| > VLIM to take the set current, the output is held at sign(I_n)·VLIM and
delivers less than |I_n| (its compliance has tripped). :func:`solve_compliant` finds that state by
an active set: a node whose voltage passes ±VLIM becomes a held node at ±VLIM; a held (tripped)
node whose delivered current would exceed |I_n| or change sign is released back to a current node.
The state is the minimiser of the energy ½VᵀLV − IᵀV with every source node bounded by its limit
(a strictly convex quadratic programme: L_ff is positive definite), whose optimality conditions
are exactly the compliance model — a clamped source delivers I − μ with μ of I's sign, 0 ≤ |I − μ|
≤ |I| — so the tripped set is unique. The loop above usually finds it in one or two rounds; where
it cycles (seen on random networks, two sources pushing each other past their limits) every
subset of sources is tried for those conditions (:func:`_enumerate`, at most 2^12 solves).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np

from labnet.core.errors import ConfigError
from labnet.core.network import Network
from labnet.core.physics import laplacian_dense


def solve_injected(
    network: Network,
    conductances: np.ndarray,
    held: Mapping[str, float],
    injected: Mapping[str, float],
) -> np.ndarray:
    """Node voltages (V, shape (N,)) with ``held`` nodes at given voltages (V; ground at 0 V unless
    given) and ``injected`` currents (A, into the node) at others; dense solve of L_ff V_f = I_f − L_fh V_h."""
    return _solve(network, laplacian_dense(network, np.asarray(conductances, dtype=float)), held, injected)


def _solve(network: Network, lap: np.ndarray, held: Mapping[str, float], injected: Mapping[str, float]) -> np.ndarray:
    """:func:`solve_injected` on a dense Laplacian ``lap`` (S, shape (N, N)) already assembled."""
    held = dict(held)
    held.setdefault(network.ground, 0.0)
    both = set(held) & set(injected)
    if both:
        raise ConfigError("<code>", "injected", f"nodes both held and current-driven: {sorted(both)}")
    for name in list(held) + list(injected):
        if name not in network.index:
            raise ConfigError("<code>", "held/injected", f"unknown node {name!r}")
    n = network.n_nodes
    h_idx = np.array([network.index[x] for x in held], dtype=int)
    f_mask = np.ones(n, dtype=bool)
    f_mask[h_idx] = False
    v = np.zeros(n)
    v[h_idx] = [float(x) for x in held.values()]
    i_inj = np.zeros(n)
    for name, cur in injected.items():
        i_inj[network.index[name]] = float(cur)
    f_idx = np.flatnonzero(f_mask)
    rhs = i_inj[f_idx] - lap[np.ix_(f_idx, h_idx)] @ v[h_idx]
    v[f_idx] = np.linalg.solve(lap[np.ix_(f_idx, f_idx)], rhs)
    return v


def solve_compliant(
    network: Network,
    conductances: np.ndarray,
    held: Mapping[str, float],
    currents: Mapping[str, float],
    vlim: Mapping[str, float],
) -> tuple[np.ndarray, dict[str, bool], dict[str, float]]:
    """State of the network with current sources that have voltage limits.

    Parameters: ``currents`` node -> set current (A), ``vlim`` node -> voltage limit (V, > 0).
    Returns (voltages V shape (N,), tripped node -> bool, delivered current A per source node).
    """
    lap = laplacian_dense(network, np.asarray(conductances, dtype=float))
    for name in currents:
        if not vlim.get(name, 0.0) > 0:
            raise ConfigError("<code>", "vlim", f"current source at {name!r} needs a voltage limit > 0, got {vlim.get(name)!r}")
    tripped: set[str] = set()
    for _ in range(2 * len(currents) + 2):
        hv = dict(held)
        hv.update({x: float(np.sign(currents[x])) * float(vlim[x]) for x in tripped})
        v = _solve(network, lap, hv, {x: c for x, c in currents.items() if x not in tripped})
        delivered = lap @ v
        changed = False
        for x, cur in currents.items():
            i = network.index[x]
            if x in tripped:
                d = float(delivered[i])
                if d * cur < 0 or abs(d) > abs(cur):
                    tripped.discard(x)
                    changed = True
            elif abs(v[i]) > vlim[x] * (1 + 1e-12):
                tripped.add(x)
                changed = True
        if not changed:
            out = {x: (float(delivered[network.index[x]]) if x in tripped else float(c)) for x, c in currents.items()}
            return v, {x: x in tripped for x in currents}, out
    return _enumerate(network, lap, held, currents, vlim)


def _enumerate(network: Network, lap: np.ndarray, held: Mapping[str, float], currents: Mapping[str, float],
               vlim: Mapping[str, float]) -> tuple[np.ndarray, dict[str, bool], dict[str, float]]:
    """The tripped set that satisfies the optimality conditions, by trying every subset (fewest first)."""
    names = list(currents)
    if len(names) > 12:
        raise RuntimeError(f"compliance active set did not settle ({len(names)} current sources)")
    tol = 1e-12
    for size in range(len(names) + 1):
        for subset in itertools.combinations(names, size):
            hv = dict(held)
            hv.update({x: float(np.sign(currents[x])) * float(vlim[x]) for x in subset})
            v = _solve(network, lap, hv, {x: c for x, c in currents.items() if x not in subset})
            delivered = lap @ v
            ok = all(abs(v[network.index[x]]) <= vlim[x] * (1 + tol) for x in names if x not in subset)
            for x in subset:
                d, cur = float(delivered[network.index[x]]), currents[x]
                ok = ok and d * cur >= -tol * abs(cur) and abs(d) <= abs(cur) * (1 + tol)
            if ok:
                out = {x: (float(delivered[network.index[x]]) if x in subset else float(c)) for x, c in currents.items()}
                return v, {x: x in subset for x in names}, out
    raise RuntimeError("no tripped set satisfies the compliance conditions")  # pragma: no cover - the QP has one
