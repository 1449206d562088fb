"""The physical model of a breadboard: the one truth every simulated instrument reads.

What it models (all seeded through one ``numpy.random.Generator``):

* each digipot's R(D) = (D + INL(D))/N · R_AB·(1 + α_T ΔT) + R_W, with R_AB drawn within the
  part's tolerance, R_W drawn around the typical wiper resistance, and an optional integral
  non-linearity INL(D) = a·sin(πD/N) (taps);
* wipers at the part's power-up code after a power-up or reset;
* sources with a small per-channel gain and offset error, outputs that settle after a change
  (:mod:`simulator.settling`); an output that is off leaves its node floating unless the rig's
  :class:`~labnet.core.release.Release` gives its off-state a resistance to 0 V; analog switches
  (on-resistance, leakage when open; :mod:`simulator.release`);
* the wiring as built (:mod:`simulator.wiring`): open, shorted or swapped edges, swapped meter
  leads and loaded nodes from the rig file's ``[simulator.wiring]`` table (none by default);
* a meter with finite input resistance (it loads the node it measures), Gaussian noise that
  falls as 1/√NPLC, and finite resolution;
* slow temperature drift (a sinusoid plus a seeded random phase) through the part's tempco;
* a virtual clock that every emulated action charges.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from labnet.core.errors import ConfigError
from labnet.core.lapack import dpotrf as _dpotrf
from labnet.core.lapack import dpotrs as _dpotrs
from labnet.core.network import Network
from labnet.core.nonideal import SimSettings
from labnet.core.parts import PartSpec
from labnet.core.physics import Solver, reduced_laplacian, thevenin_resistance
from labnet.core.release import Release
from simulator.clock import VirtualClock
from simulator.current_drive import CurrentNodes
from simulator.pickup import pickup
from simulator.release import ReleaseCircuit
from simulator.settling import OutputSettling
from simulator.wiring import PhysicalWiring


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
    release : Release, optional
        Off-states of the sources and analog switches (default: every off output floats,
        no switch — the ideal release, solved by the fast path below).
    """

    #: :class:`labnet.core.state.Stateful`: the noise generator, the virtual clock, the wipers,
    #: the driven outputs (channel -> V), the meter's NPLC and the reset count. The part draw
    #: (R_AB, R_W, INL, source errors, the drift's phase) is fixed by ``settings.seed``; the
    #: drift is a function of the clock's time. ``switches``: node -> closed, of the analog switches.
    STATE_SCHEMA: ClassVar[dict[str, Any]] = {"rng": dict, "clock": VirtualClock, "codes": list, "driven": dict,
                                              "nplc": float, "resets": int, "switches": dict,
                                              "settling": OutputSettling}

    def __init__(self, network: Network, part: PartSpec, settings: SimSettings | None = None,
                 clock: VirtualClock | None = None, noise_seed: int | None = None,
                 release: Release | None = None) -> None:
        self.network = network
        #: the circuit as built (the rig file's unless ``settings.wiring`` has faults)
        self.wiring = PhysicalWiring(network, (settings or SimSettings()).wiring)
        self.release = release or Release()
        self._configured_release = self.release  # what the rig file said (the emulators may change the live one)
        self._circuit = None if self.release.ideal else ReleaseCircuit(self.wiring.network, self.release)
        #: node -> closed, of every analog switch (all open at power-up: pull-downs on the inputs)
        self.switches: dict[str, bool] = dict.fromkeys(self.release.switches, False)
        #: switch operations (open or close) so far, per node
        self.switch_operations: dict[str, int] = dict.fromkeys(self.release.switches, 0)
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
        for a in (self.r_ab_ohm, self.r_w_ohm, self.inl_taps):
            a.flags.writeable = False  # the part draw is fixed: R(D) of given codes is cached
        if not (np.all(self.r_w_ohm > 0) and np.all(np.isfinite(self.r_w_ohm)) and np.all(self.r_ab_ohm > 0)):
            raise ConfigError("<simulator>", "wiper_spread", "every drawn R_W and R_AB must be finite and > 0 Ω "
                              "(so every conductance is)")
        self.drift_phase = float(draw.uniform(0, 2 * np.pi))
        src_ch = sorted(network.source_channels.values())
        self.source_gain = dict(zip(src_ch, 1 + draw.uniform(-s.source_gain_error, s.source_gain_error, len(src_ch))))
        self.source_offset = dict(zip(src_ch, draw.uniform(-s.source_offset_v, s.source_offset_v, len(src_ch))))
        self._node_of_source = {ch: n for n, ch in network.source_channels.items()}
        self._node_of_meter = {ch: self.wiring.node_of_meter(ch) for ch in network.meter_channels.values()}
        if network.current_channels and not self.release.ideal:
            raise ConfigError(network.file, "network.current_channels",
                              "current sources with off-states or switches ([release]) are not modelled")
        #: the Keithley 2450 outputs sourcing current (simulator.current_drive)
        self.currents = CurrentNodes(self.wiring.network, network.current_channels)
        self.codes = np.full(e, part.power_up_code, dtype=np.int64)
        self.driven: dict[str, float] = {}  # source channel -> set voltage, outputs on
        self.settling = OutputSettling()  # outputs on their way to a new setpoint (simulator.settling)
        self.nplc = 1.0
        self.resets = 0
        self._cache: tuple[Any, Solver, dict[tuple[str, ...], np.ndarray]] | None = None
        # codes-only part of R(D), (D + INL(D))/N·R_AB, for the last codes seen (drift scales it)
        self._base_cache: dict[bytes, np.ndarray] = {}  # codes -> base (codes revisit values as training settles)
        self._read_plans: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}  # (scan, driven set) -> plan

    # ------------------------------------------------------------------ run state
    def state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "clock": self.clock.state(),
                "codes": [int(c) for c in self.codes], "driven": dict(self.driven), "nplc": float(self.nplc),
                "resets": int(self.resets), "switches": dict(self.switches), "settling": self.settling.state()}

    def restore(self, state: dict[str, Any]) -> None:
        codes = np.asarray(state["codes"], dtype=np.int64)
        if codes.shape != self.codes.shape:
            raise ValueError(f"breadboard state: expected {self.codes.size} codes, got {codes.shape}")
        self.rng.bit_generator.state = state["rng"]
        self.clock.restore(state["clock"])
        self.codes[:] = codes
        self.drive(state["driven"])
        self.nplc = float(state["nplc"])
        self.resets = int(state["resets"])
        self.switches = {n: bool(state["switches"].get(n, False)) for n in self.switches}
        self.settling.restore(state["settling"])

    # ------------------------------------------------------------------ parts
    def temperature_delta_k(self, t: float | None = None) -> float:
        s, t = self.settings, self.clock.now() if t is None else t
        return 0.0 if s.drift_kelvin == 0 else s.drift_kelvin * math.sin(2 * math.pi * t / s.drift_period_s + self.drift_phase)

    def resistance(self, codes: np.ndarray | None = None, t: float | None = None) -> np.ndarray:
        """True resistance (Ω) of every edge, shape (E,), at ``codes`` (default: the wipers)."""
        scale = 1 + self.part.tempco_ppm_per_k * 1e-6 * self.temperature_delta_k(t)
        if not scale > 0:
            raise ConfigError("<simulator>", "drift_kelvin", f"tempco × drift gives a resistance scale of {scale}")
        return self._code_part(self.codes if codes is None else codes) * scale + self.r_w_ohm

    def _code_part(self, codes: np.ndarray | Sequence[int]) -> np.ndarray:
        """(D + INL(D))/N·R_AB (Ω, ≥ 0), shape (E,): the part of R that depends on the codes
        only (kept for the last 64 codes; drift multiplies it by the tempco scale)."""
        c = np.asarray(codes)
        key = c.tobytes() if c.dtype == np.int64 else b"f" + np.asarray(c, dtype=float).tobytes()
        base = self._base_cache.get(key)
        if base is None:
            d = np.asarray(codes, dtype=float)
            n = self.part.max_code
            inl = self.inl_taps * np.sin(np.pi * d / n)
            base = (d + inl) / n * self.r_ab_ohm
            if not np.all(base >= 0):
                j = int(np.argmin(base))
                raise ConfigError("<simulator>", "inl_taps", f"edge {j} at code {d[j]:g}: INL makes D + INL(D) negative")
            base.flags.writeable = False
            if len(self._base_cache) >= 64:
                self._base_cache.pop(next(iter(self._base_cache)))
            self._base_cache[key] = base
        return base

    def conductances(self, codes: np.ndarray | None = None, t: float | None = None) -> np.ndarray:
        """True conductance (S) of every digipot, shape (E,), indexed by the edge whose channel drives
        it (where it sits and what else is wired: :attr:`wiring`, :meth:`wired_conductances`)."""
        return 1.0 / self.resistance(codes, t)

    def wired_conductances(self) -> np.ndarray:
        """Conductances (S) of the circuit as built (:attr:`wiring`'s network) at the present codes."""
        return self.wiring.conductances(self.conductances())

    def set_codes(self, edges: Sequence[int], codes: Sequence[int]) -> None:
        """Move the wipers of the given edges (indices into ``network.edges``)."""
        c = np.asarray(codes, dtype=np.int64)
        if np.any(c < 0) or np.any(c > self.part.max_code):
            raise ValueError(f"code outside 0..{self.part.max_code}")
        self.codes[np.asarray(edges, dtype=np.int64)] = c

    def set_code(self, edge: int, code: int) -> None:
        """Move one wiper (``set_codes`` for a single edge; its own code: the monitor walks it)."""
        if not 0 <= code <= self.part.max_code:
            raise ValueError(f"code outside 0..{self.part.max_code}")
        self.codes[edge] = code

    def reset(self) -> None:
        """Power-on reset of the board: every wiper back to its power-up code."""
        self.codes[:] = self.part.power_up_code
        self.resets += 1
        self.reset_switches()

    # ------------------------------------------------------------------ sources
    def drive(self, voltages: Mapping[str, float]) -> None:
        """Sources: drive exactly these channels (channel -> V); all other outputs off."""
        for ch in voltages:
            if ch not in self._node_of_source:
                raise KeyError(ch)
        new = {ch: float(v) for ch, v in voltages.items()}
        if self.settling.responses:
            self.settling.drive(self.driven, new, self.clock.now())
        self.driven = new

    def held_voltages(self) -> dict[str, float]:
        """True voltage at every driven node (node -> V), source errors and unsettled outputs included."""
        st, now = self.settling, self.clock.now()
        return {self._node_of_source[ch]: (v + (st.residual(ch, now) if st.moves else 0.0)) * self.source_gain[ch]
                + self.source_offset[ch] * (v != 0.0) for ch, v in self.driven.items()}

    def inject(self, currents: Mapping[str, tuple[float, float]]) -> None:
        """Current sources: exactly these channels source (channel -> (A, VLIM V)); the others are off."""
        self.currents.inject(currents)

    def current_tripped(self, channel: str) -> bool:
        return self.currents.tripped(self.wired_conductances(), self.held_voltages(), channel)

    def current_terminal_v(self, channel: str) -> float:
        return self.currents.terminal_v(self.wired_conductances(), self.held_voltages(), channel)

    def node_of_source(self, channel: str) -> str:
        return self._node_of_source[channel]

    def node_of_meter(self, channel: str) -> str:
        return self._node_of_meter[channel]

    def set_off_resistance(self, channel: str, ohm: float) -> None:
        """An emulated source reports the off-state of ``channel``: its resistance to 0 V
        while the output is off (``math.inf``: the node floats)."""
        if channel not in self._node_of_source:
            raise KeyError(channel)
        off = {c: o for c, o in self.release.off_ohm.items() if c != channel}
        if not math.isinf(ohm):
            off[channel] = float(ohm)
        if off != dict(self.release.off_ohm):
            self.release = replace(self.release, off_ohm=off)
            self._circuit = None if self.release.ideal else ReleaseCircuit(self.wiring.network, self.release)

    # ------------------------------------------------------------------ switches
    def set_switches(self, closed: Mapping[str, bool]) -> None:
        """Analog switches: close (True) or open (False) the switch of each named node."""
        for n, c in closed.items():
            if n not in self.switches:
                raise KeyError(f"node {n!r} has no analog switch")
            if self.switches[n] != bool(c):
                self.switch_operations[n] += 1
            self.switches[n] = bool(c)

    def reset_switches(self) -> None:
        """Every switch open (the board's reset: control pins high-impedance, pull-downs open them)."""
        self.set_switches(dict.fromkeys(self.switches, False))

    # ------------------------------------------------------------------ truth
    def _solver(self, held: Mapping[str, float] | None = None) -> Solver:
        """Solver at the present codes, drift and driven set (kept until either changes)."""
        if held is None:
            held = self.held_voltages()
        k = self.wired_conductances()
        names = sorted(held)
        key = (tuple(names), k.tobytes())
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, Solver(self.wiring.network, k, names), {})
        return self._cache[1]

    def _thevenin(self, solver: Solver, channels: tuple[str, ...]) -> np.ndarray:
        """Thevenin resistance (Ω) of the nodes of ``channels`` (0 at driven ones), kept with
        the solver."""
        assert self._cache is not None and self._cache[1] is solver
        kept = self._cache[2]
        r = kept.get(channels)
        if r is None:
            r = kept[channels] = thevenin_resistance(solver, [self._node_of_meter[ch] for ch in channels])
        return r

    def node_voltages(self) -> np.ndarray:
        """True node voltages (V), shape (N,), with no meter attached."""
        held = self.held_voltages()
        if self.currents.injected:
            return self.currents.solve(self.wired_conductances(), held)[0]
        if self._circuit is not None:
            return self._circuit.node_voltages(self.wired_conductances(), held, self.switches)
        solver = self._solver(held)
        return solver.solve(held)

    def source_currents(self, channels: Sequence[str]) -> np.ndarray:
        """Current (A) each driven channel pushes into the network (0 for an output that is off)."""
        held = self.held_voltages()
        if self.currents.injected:
            nodes = [self._node_of_source[ch] for ch in channels if ch in self.driven]
            got = dict(zip(nodes, self.currents.delivered(self.wired_conductances(), held, nodes)))
            return np.array([got[self._node_of_source[ch]] if ch in self.driven else 0.0 for ch in channels])
        if self._circuit is not None:
            return self._circuit.source_currents(self.wired_conductances(), held, self.switches, channels)
        solver = self._solver(held)
        v = solver.solve(held)
        lap = self.wiring.network.laplacian(solver.conductances)
        inj = lap @ v
        return np.array([inj[self.network.index[self._node_of_source[ch]]] if ch in self.driven else 0.0
                         for ch in channels])

    def meter_read(self, channels: Sequence[str], nplc: float | None = None, counts_v: Any = None) -> np.ndarray:
        """Scan the given meter channels: loaded, noisy, quantised readings (V; rounded to
        ``meter_resolution_v`` or each channel's A/D count ``counts_v``, whichever is coarser).

        A channel loads its node with the meter's input resistance while it is read: the
        reading is V_i / (1 + R_th,i / R_in) for a floating node (R_th: Thevenin resistance
        of the node), the source voltage for a driven node.
        """
        s = self.settings
        nplc = self.nplc if nplc is None else nplc
        held = self.held_voltages()
        loaded = s.meter_input_ohm > 0 and math.isfinite(s.meter_input_ohm)
        key = (tuple(channels), tuple(sorted(held)))
        plan = None if self._circuit is not None else self._read_plans.get(key)
        if plan is None and self._circuit is None:
            plan = self._read_plans[key] = self._read_plan(*key)
        if self.currents.injected:  # current sources (simulator.current_drive)
            out, r_th = self.currents.read(self.wired_conductances(), held,
                                           [self._node_of_meter[ch] for ch in channels], loaded)
        elif self._circuit is not None:  # off-states or switches: the augmented network
            nodes = [self._node_of_meter[ch] for ch in channels]
            out, r_th = self._circuit.read(self.wired_conductances(), held, self.switches, nodes, loaded)
        elif isinstance(plan, tuple):  # a plan, or False: too many free nodes
            out, r_th = self._dense_read(plan, held, loaded)
        else:  # too many free nodes for the dense path: a sparse Solver, kept while nothing changes
            idx = self.network.indices([self._node_of_meter[ch] for ch in channels])
            solver = self._solver(held)
            out = solver.solve(held)[idx]
            r_th = self._thevenin(solver, key[0]) if loaded else np.zeros(len(idx))
        if loaded:
            out = out / (1.0 + r_th / s.meter_input_ohm)
        if s.meter_noise_v > 0:
            out = out + self.rng.normal(0.0, s.meter_noise_v / math.sqrt(nplc), out.shape)
        if s.mains_pickup_v > 0:  # line-frequency pickup at floating nodes (simulator.pickup)
            out = out + pickup(self.rng, s.mains_pickup_v, nplc, np.array([self._node_of_meter[c] not in held for c in channels]))
        q = s.meter_resolution_v if counts_v is None else np.maximum(s.meter_resolution_v, counts_v)
        return np.round(out / q) * q if np.all(q > 0) else out

    def _read_plan(self, channels: tuple[str, ...], names: tuple[str, ...]) -> tuple[Any, ...] | bool:
        """What :meth:`_dense_read` needs for one scan list and one driven set (kept; the
        network never changes), or False when the free nodes are too many for the dense path.

        L_ff (F, F) is a scatter of signed conductances into a flat array; the right-hand side
        L_fh·V_h a scatter of the free–held edges' conductance × held voltage; ``sel`` picks
        each read node from [held voltages (in ``held_names`` order), free solution]."""
        if len(self._read_plans) >= 64:
            self._read_plans.clear()
        net = self.wiring.network
        solver = Solver(net, self.wired_conductances(), list(names))  # validates, finds the pattern
        n_free = solver.free_idx.size
        if not solver.dense or not n_free:
            return False
        red = reduced_laplacian(net, solver.held_idx)
        fh_rows, fh_held, fh_edges = red.coupling_entries
        flat, edges, sign = red.dense_map
        order = {int(n): i for i, n in enumerate(solver.held_idx)}
        order.update({int(n): len(solver.held_idx) + i for i, n in enumerate(solver.free_idx)})
        sel = np.array([order[self.network.index[self._node_of_meter[ch]]] for ch in channels], dtype=np.int64)
        return (solver.held_names, n_free, flat, edges, sign.astype(float),
                fh_rows, fh_held, fh_edges, sel, np.zeros(len(solver.held_idx)), np.asfortranarray(np.eye(n_free)))

    def _dense_read(self, plan: tuple[Any, ...], held: Mapping[str, float],
                    thevenin: bool) -> tuple[np.ndarray, np.ndarray]:
        """True voltages and Thevenin resistances (zeros unless ``thevenin``) at the read nodes
        of ``plan``, at the present codes, drift and driven set: one dense Cholesky of L_ff,
        one solve, and diag(L_ff⁻¹) from the same factor (LAPACK potrf, potrs)."""
        held_names, n, flat, edges, sign, fh_rows, fh_held, fh_edges, sel, zeros_h, eye = plan
        k = self.wired_conductances()
        a = np.bincount(flat, weights=k[edges] * sign, minlength=n * n).reshape(n, n)
        # a is exactly symmetric, so its transpose is the same matrix in Fortran order (no copy)
        c, info = _dpotrf(a.T, lower=1, clean=0, overwrite_a=1)
        if info:
            raise np.linalg.LinAlgError(f"reduced Laplacian not positive definite (dpotrf info={info})")
        vh = np.array([held.get(nm, 0.0) for nm in held_names], dtype=float)
        rhs = np.bincount(fh_rows, weights=k[fh_edges] * vh[fh_held], minlength=n)
        v = np.concatenate((vh, _dpotrs(c, rhs, lower=1)[0]))[sel]
        if not thevenin:
            return v, np.zeros(sel.size)
        # diag(L_ff⁻¹) by solving against the identity (potri would do, but it wakes OpenBLAS's
        # threads, whose spinning costs more CPU than the whole read)
        return v, np.concatenate((zeros_h, np.diagonal(_dpotrs(c, eye, lower=1)[0])))[sel]

    def describe(self) -> dict[str, Any]:
        """The part draw and settings, for the session header (truth the bench would not know)."""
        cfg = self._configured_release
        out: dict[str, Any] = {} if cfg.ideal else {"release": cfg.to_dict()}
        return out | {
            "settings": self.settings.to_dict(),
            "r_ab_ohm": [round(float(x), 3) for x in self.r_ab_ohm],
            "r_w_ohm": [round(float(x), 3) for x in self.r_w_ohm],
            "inl_taps": [round(float(x), 4) for x in self.inl_taps],
        }
