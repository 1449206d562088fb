"""The physical model of a breadboard: the one truth every simulated instrument reads.

What it models (all seeded through one ``numpy.random.Generator``):

* each digipot's R(D) = (D + INL(D))/N · R_AB·(1 + α_T ΔT) + R_W, with R_AB drawn within the
  part's tolerance, R_W drawn around the typical wiper resistance, and an optional integral
  non-linearity INL(D) = a·sin(πD/N) (taps);
* wipers at the part's power-up code after a power-up or reset;
* sources with a small per-channel gain and offset error; a source whose output is off leaves
  its node floating;
* a meter with finite input resistance (it loads the node it measures), Gaussian noise that
  falls as 1/√NPLC, and finite resolution;
* slow temperature drift (a sinusoid plus a seeded random phase) acting through the part's
  tempco;
* a virtual clock that every emulated action charges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from labnet.network import Network
from labnet.parts import PartSpec
from labnet.physics import Solver


@dataclass(frozen=True)
class SimSettings:
    """Non-idealities of the simulated bench (all on by default; set to 0 to turn off).

    Attributes
    ----------
    seed : int
        Seed of the part draw, noise and drift.
    tolerance : bool
        Draw each part's R_AB within the part's tolerance (uniform in ±tolerance).
    wiper_spread : float
        Relative spread (uniform ±) of the wiper resistance around the typical value.
    inl_taps : float
        Amplitude (taps) of the integral non-linearity; each part draws a ∈ [−inl, inl].
    meter_noise_v : float
        RMS meter noise (V) at 1 PLC.
    meter_resolution_v : float
        Meter resolution (V); readings are rounded to it.
    meter_input_ohm : float
        Meter input resistance (Ω).
    source_gain_error, source_offset_v : float
        Per-channel gain error (relative) and offset (V) drawn uniform in ±value.
    drift_k : float
        Amplitude (K) of the slow temperature swing.
    drift_period_s : float
        Period (s) of the temperature swing.
    """

    seed: int = 0
    tolerance: bool = True
    wiper_spread: float = 0.25
    inl_taps: float = 0.5
    meter_noise_v: float = 20e-6
    meter_resolution_v: float = 1e-6
    meter_input_ohm: float = 10e6
    source_gain_error: float = 5e-4
    source_offset_v: float = 1e-3
    drift_k: float = 0.5
    drift_period_s: float = 3600.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class VirtualClock:
    """Modelled bench time (s). Emulators ``charge`` what an action would take on the bench."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.charge(seconds)

    def charge(self, seconds: float) -> None:
        if seconds > 0:
            self.t += float(seconds)


class Breadboard:
    """A simulated breadboard: ``network`` built from digipots of type ``part``.

    Parameters
    ----------
    network : Network
        Nodes, edges and wiring maps (which source channel drives which node, which meter
        channel reads which node).
    part : PartSpec
    settings : SimSettings
    clock : VirtualClock, optional
    noise_seed : int, optional
        Seeds the run-to-run randomness (meter noise) separately from the part draw, which
        ``settings.seed`` fixes: the same board, measured in another run.
    """

    def __init__(self, network: Network, part: PartSpec, settings: SimSettings | None = None,
                 clock: VirtualClock | None = None, noise_seed: int | None = None) -> None:
        self.network = network
        self.part = part
        self.settings = s = settings or SimSettings()
        self.clock = clock or VirtualClock()
        self.rng = np.random.default_rng(s.seed if noise_seed is None else [s.seed, 2, noise_seed])
        e = network.n_edges
        draw = np.random.default_rng([s.seed, 1])  # part draw independent of noise stream
        tol = part.tolerance if s.tolerance else 0.0
        self.r_ab_ohm = part.r_ab_ohm * (1 + draw.uniform(-tol, tol, e))
        self.r_w_ohm = part.r_w_ohm * (1 + draw.uniform(-s.wiper_spread, s.wiper_spread, e))
        self.inl_taps = draw.uniform(-s.inl_taps, s.inl_taps, e)
        self.drift_phase = float(draw.uniform(0, 2 * np.pi))
        src_ch = sorted(network.source_channels.values())
        self.source_gain = dict(zip(src_ch, 1 + draw.uniform(-s.source_gain_error, s.source_gain_error, len(src_ch))))
        self.source_offset = dict(zip(src_ch, draw.uniform(-s.source_offset_v, s.source_offset_v, len(src_ch))))
        self._node_of_source = {ch: n for n, ch in network.source_channels.items()}
        self._node_of_meter = {ch: n for n, ch in network.meter_channels.items()}
        self.codes = np.full(e, part.power_up_code, dtype=np.int64)
        self.driven: dict[str, float] = {}  # source channel -> set voltage, outputs on
        self.nplc = 1.0
        self.resets = 0
        self._cache: tuple[Any, Solver, np.ndarray] | None = None

    # ------------------------------------------------------------------ parts
    def temperature_delta_k(self, t: float | None = None) -> float:
        t = self.clock.now() if t is None else t
        s = self.settings
        if s.drift_k == 0:
            return 0.0
        return s.drift_k * np.sin(2 * np.pi * t / s.drift_period_s + self.drift_phase)

    def resistance(self, codes: np.ndarray | None = None, t: float | None = None) -> np.ndarray:
        """True resistance (Ω) of every edge, shape (E,), at ``codes`` (default: the wipers)."""
        d = np.asarray(self.codes if codes is None else codes, dtype=float)
        n = self.part.max_code
        inl = self.inl_taps * np.sin(np.pi * d / n)
        scale = 1 + self.part.tempco_ppm_per_k * 1e-6 * self.temperature_delta_k(t)
        return (d + inl) / n * self.r_ab_ohm * scale + self.r_w_ohm

    def conductances(self, codes: np.ndarray | None = None, t: float | None = None) -> np.ndarray:
        """True conductance (S) of every edge, shape (E,)."""
        return 1.0 / self.resistance(codes, t)

    def set_codes(self, edges: Sequence[int], codes: Sequence[int]) -> None:
        """Move the wipers of the given edges (indices into ``network.edges``)."""
        c = np.asarray(codes, dtype=np.int64)
        if np.any(c < 0) or np.any(c > self.part.max_code):
            raise ValueError(f"code outside 0..{self.part.max_code}")
        self.codes[np.asarray(edges, dtype=np.int64)] = c

    def reset(self) -> None:
        """Power-on reset of the board: every wiper back to its power-up code."""
        self.codes[:] = self.part.power_up_code
        self.resets += 1

    # ------------------------------------------------------------------ sources
    def drive(self, voltages: Mapping[str, float]) -> None:
        """Sources: drive exactly these channels (channel -> V); all other outputs off."""
        for ch in voltages:
            if ch not in self._node_of_source:
                raise KeyError(ch)
        self.driven = {ch: float(v) for ch, v in voltages.items()}

    def held_voltages(self) -> dict[str, float]:
        """True voltage at every driven node (node -> V), source errors included."""
        return {
            self._node_of_source[ch]: v * self.source_gain[ch] + self.source_offset[ch] * (v != 0.0)
            for ch, v in self.driven.items()
        }

    def node_of_source(self, channel: str) -> str:
        return self._node_of_source[channel]

    # ------------------------------------------------------------------ truth
    def _solver(self) -> tuple[Solver, np.ndarray]:
        held = self.held_voltages()
        k = self.conductances()
        key = (tuple(sorted(held)), k.tobytes())
        if self._cache is None or self._cache[0] != key:
            solver = Solver(self.network, k, sorted(held))
            from labnet.physics import thevenin_resistance

            free_names = [self.network.nodes[i] for i in solver.free_idx]
            r_th = np.zeros(self.network.n_nodes)
            if solver.dense:
                r_th[solver.free_idx] = thevenin_resistance(solver, free_names)
            self._cache = (key, solver, r_th)
        return self._cache[1], self._cache[2]

    def node_voltages(self) -> np.ndarray:
        """True node voltages (V), shape (N,), with no meter attached."""
        solver, _ = self._solver()
        return solver.solve(self.held_voltages())

    def source_currents(self, channels: Sequence[str]) -> np.ndarray:
        """Current (A) each driven channel pushes into the network (0 for an output that is off)."""
        solver, _ = self._solver()
        v = solver.solve(self.held_voltages())
        lap = self.network.laplacian(solver.conductances)
        inj = lap @ v
        return np.array([inj[self.network.index[self._node_of_source[ch]]] if ch in self.driven else 0.0
                         for ch in channels])

    def meter_read(self, channels: Sequence[str], nplc: float | None = None) -> np.ndarray:
        """Scan the given meter channels: loaded, noisy, quantised readings (V).

        A channel loads its node with the meter's input resistance while it is read: the
        reading is V_i / (1 + R_th,i / R_in) for a floating node (R_th: Thevenin resistance
        of the node), the source voltage for a driven node.
        """
        s = self.settings
        nplc = self.nplc if nplc is None else nplc
        solver, r_th = self._solver()
        v = solver.solve(self.held_voltages())
        idx = self.network.indices([self._node_of_meter[ch] for ch in channels])
        out = v[idx]
        if s.meter_input_ohm > 0 and np.isfinite(s.meter_input_ohm):
            out = out / (1.0 + r_th[idx] / s.meter_input_ohm)
        if s.meter_noise_v > 0:
            out = out + self.rng.normal(0.0, s.meter_noise_v / np.sqrt(nplc), out.shape)
        if s.meter_resolution_v > 0:
            out = np.round(out / s.meter_resolution_v) * s.meter_resolution_v
        return out

    def node_of_meter(self, channel: str) -> str:
        return self._node_of_meter[channel]

    def describe(self) -> dict[str, Any]:
        """The part draw and settings, for the session header (truth the bench would not know)."""
        return {
            "settings": self.settings.to_dict(),
            "r_ab_ohm": [round(float(x), 3) for x in self.r_ab_ohm],
            "r_w_ohm": [round(float(x), 3) for x in self.r_w_ohm],
            "inl_taps": [round(float(x), 4) for x in self.inl_taps],
        }
