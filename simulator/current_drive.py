"""Current-driven nodes of the simulated breadboard: Keithley 2450 outputs sourcing current.

A current source of set current I (A) with voltage limit VLIM (V) injects I into its node while
the node's voltage stays within ±VLIM; when the network would need more, the 2450 clamps: the
terminal is held at sign(I)·VLIM and delivers less (Model 2450 Reference Manual, 2450-901-01
Rev. B, :SOURce[1]:<function>:<x>LIMit, 6-71/6-72). :func:`labnet.core.currents.solve_compliant`
finds that state (the active set of tripped sources) for the true conductances and the true
held voltages (source errors included).

A meter channel reading a node loads it with the meter's input resistance R_in; by Thevenin's
theorem (independent current sources included) the reading is V_i / (1 + R_th,i / R_in) with
R_th,i = (L_ff⁻¹)_ii over the free nodes — the current-driven nodes are free (an ideal current
source has infinite output resistance), the tripped ones held (then a voltage source). The
loading is taken not to change which sources trip (R_th/R_in ≲ 1e-3 on a bench).

Dense solves: benches with current inputs are small (≤ 64 digipot edges).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from labnet.core.currents import solve_compliant
from labnet.core.network import Network
from labnet.core.physics import laplacian_dense


class CurrentNodes:
    """The current-driven nodes of a breadboard and their last solved state.

    Parameters
    ----------
    network : Network
        The circuit as built (node names as in the rig file).
    channels : mapping node -> current-source channel
    """

    def __init__(self, network: Network, channels: Mapping[str, str]) -> None:
        self.network = network
        self.node_of = {ch: n for n, ch in channels.items()}
        #: channel -> (set current A, VLIM V) of every output that is on and sourcing current
        self.injected: dict[str, tuple[float, float]] = {}
        self._key: bytes | None = None
        self._state: tuple[np.ndarray, dict[str, bool], dict[str, float]] | None = None

    def inject(self, currents: Mapping[str, tuple[float, float]]) -> None:
        """Outputs that source current now (channel -> (A, VLIM V)); every other channel off."""
        for ch in currents:
            if ch not in self.node_of:
                raise KeyError(f"{ch!r} is not a current-source channel of this bench")
        self.injected = {ch: (float(i), float(v)) for ch, (i, v) in currents.items()}
        self._key = None

    def solve(self, k: np.ndarray, held: Mapping[str, float]) -> tuple[np.ndarray, dict[str, bool], dict[str, float]]:
        """(voltages V (N,), tripped node -> bool, delivered current A per node) at true
        conductances ``k`` (S, (E,)) and held node voltages ``held`` (node -> V); cached."""
        cur = {self.node_of[ch]: iv for ch, iv in self.injected.items()}
        key = k.tobytes() + repr(sorted(held.items())).encode() + repr(sorted(cur.items())).encode()
        if self._key != key or self._state is None:
            self._state = solve_compliant(self.network, k, held, {n: i for n, (i, _) in cur.items()},
                                          {n: v for n, (_, v) in cur.items()})
            self._key = key
        return self._state

    def read(self, k: np.ndarray, held: Mapping[str, float], nodes: Sequence[str],
             loaded: bool) -> tuple[np.ndarray, np.ndarray]:
        """Unloaded voltages (V) of ``nodes`` and their Thevenin resistances (Ω; 0 at held or
        tripped nodes, and everywhere when not ``loaded``)."""
        v, tripped, _ = self.solve(k, held)
        net = self.network
        idx = net.indices(nodes)
        if not loaded:
            return v[idx], np.zeros(len(idx))
        fixed = set(held) | {n for n, t in tripped.items() if t} | {net.ground}
        free = np.array([i for i, n in enumerate(net.nodes) if n not in fixed], dtype=int)
        lap = laplacian_dense(net, k)
        r_free = np.diag(np.linalg.inv(lap[np.ix_(free, free)])) if free.size else np.zeros(0)
        pos = {int(i): j for j, i in enumerate(free)}
        r_th = np.array([r_free[pos[int(i)]] if int(i) in pos else 0.0 for i in idx])
        return v[idx], r_th

    def delivered(self, k: np.ndarray, held: Mapping[str, float], nodes: Sequence[str]) -> np.ndarray:
        """Current (A) the network takes at ``nodes`` (L v): what each source delivers."""
        v, _, _ = self.solve(k, held)
        inj = laplacian_dense(self.network, k) @ v
        return np.array([inj[self.network.index[n]] for n in nodes])

    def tripped(self, k: np.ndarray, held: Mapping[str, float], channel: str) -> bool:
        """Whether the source on ``channel`` is clamped at its voltage limit."""
        if channel not in self.injected:
            return False
        return bool(self.solve(k, held)[1][self.node_of[channel]])

    def terminal_v(self, k: np.ndarray, held: Mapping[str, float], channel: str) -> float:
        """Voltage (V) at the node of ``channel``."""
        return float(self.solve(k, held)[0][self.network.index[self.node_of[channel]]])
