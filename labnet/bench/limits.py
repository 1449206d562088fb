"""What the bench must never exceed, and the checks that refuse a state before it is reached.

:class:`Limits` holds the rated limits; :class:`LimitChecks` (a base of
:class:`labnet.bench.rig.Rig`) refuses (:class:`LimitError`, logged as ``limit_refused``) a
voltage pattern, a code change or a transition between two patterns if *any* part within its
datasheet limits — or, with a calibration table, any conductance within the table's value ±
``TABLE_SIGMAS`` σ (and within the part's limits) — could carry more than the rated current
through an edge in *any* state on the way: the bound is
:func:`labnet.core.bounds.edge_current_bound` over the conductance box of
:meth:`LimitChecks.conductance_box`. The nominal model's prediction is not what is checked.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labnet.bench.current_drive import CurrentDrive
from labnet.bench.transitions import plan_ramp, plan_sources
from labnet.core.bounds import Neighbours, edge_current_bound, neighbours
from labnet.core.conductance import ConductanceModel
from labnet.core.currents import solve_compliant
from labnet.core.errors import LimitError
from labnet.core.network import Network
from labnet.core.parts import BENCH_DELTA_T_K, PartSpec
from labnet.core.physics import Solver, edge_currents

log = logging.getLogger("labnet.bench.rig")  # the rig's logger: events name it


@dataclass(frozen=True)
class Limits:
    """What the bench must never exceed.

    Attributes
    ----------
    max_source_v : float
        Largest |voltage| (V) any source may apply.
    max_edge_current_a : float
        Largest predicted |current| (A) through any digipot.
    code_min, code_max : int
        Codes the engine may write (keeps R away from the bare wiper resistance).
    source_max_v : dict
        Per source channel limit (V), tighter than ``max_source_v`` where given.
    source_error_rel, source_error_v : float
        Allowance for a source's setpoint error in the worst-case check: a node set to v is
        taken anywhere within v ± (|v|·rel + V). The defaults (0.1 % + 2 mV) cover the
        simulator's drawn errors (±0.05 %, ±1 mV) with margin; a bench with worse supplies
        should say so.
    """

    max_source_v: float
    max_edge_current_a: float
    code_min: int
    code_max: int
    source_max_v: dict[str, float] = field(default_factory=dict)
    source_error_rel: float = 1e-3
    source_error_v: float = 2e-3

    def channel_limit(self, channel: str) -> float:
        return min(self.max_source_v, self.source_max_v.get(channel, np.inf))


#: A calibration table's conductance is trusted within this many fitted σ (and the part's limits).
TABLE_SIGMAS = 4.0

Pattern = Mapping[str, float]


class LimitChecks(CurrentDrive):
    """Worst-case checks of a rig (mixed into :class:`labnet.bench.rig.Rig`, which sets these
    attributes and the caches in its ``__init__``). A pattern may hold current-driven nodes
    (amperes; :class:`labnet.bench.current_drive.CurrentDrive`): each is bounded over the voltage
    interval its source's limit allows."""

    network: Network
    part: PartSpec
    #: Source nodes whose output-off state loads them to 0 V (``[release]`` off-states: an
    #: E36312A ``off_resistance_ohm``, a Keithley 2450 in NORM/ZERO). Released, such a node is
    #: bounded as floating and as held at 0 V: an edge current is monotone in the load's
    #: conductance, so the two ends of 0…∞ S bound every value.
    off_loaded: frozenset[str] = frozenset()
    limits: Limits
    model: ConductanceModel
    _solvers: dict[tuple[tuple[str, ...], bytes], Solver]
    _boxes: dict[tuple[Any, ...], tuple[ConductanceModel, tuple[np.ndarray, np.ndarray, float]]]
    _nb: tuple[Network, Neighbours] | None
    _limits_by_node: tuple[Any, Any, dict[str, float]] | None

    @property
    def codes(self) -> np.ndarray:
        """Host record of every edge's code, shape (E,) (the rig's)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ public checks
    def check_pattern(self, held: Pattern, codes: np.ndarray | None = None) -> np.ndarray:
        """Refuse a voltage pattern that could exceed a limit; return the nominal edge currents (A).

        Checks every source channel's voltage limit, then bounds every edge current over every
        part within its limits (or the calibration table ± ``TABLE_SIGMAS`` σ) at ``codes``
        (default: the present codes). Raises :class:`LimitError` naming the edge and by how
        much, logged (``limit_refused``), and applies nothing. Returns the model's prediction
        (E,) for callers that scale patterns by it.
        """
        c = self.codes if codes is None else np.asarray(codes, dtype=np.int64)
        self.refuse_unless_safe(held, held, c, c)
        if not held:
            return np.zeros(self.network.n_edges)
        k = self.model.conductance(c)
        volts_held, amps = self.split(held)
        if amps:
            volts = solve_compliant(self.network, k, volts_held, amps, {n: self.current_limits[n][1] for n in amps})[0]
        else:
            volts = self._pattern_solver(k, tuple(held)).solve(dict(held))
        return edge_currents(self.network, k, volts)

    def refuse_unless_safe(self, old: Pattern, new: Pattern, old_codes: np.ndarray, new_codes: np.ndarray) -> None:
        """Raise :class:`LimitError` (logged) unless every state between (``old``, ``old_codes``)
        and (``new``, ``new_codes``) is safe in the worst case (:meth:`transition_bound`)."""
        try:
            self._check_voltages(new)
            if old is not new:
                self._check_voltages(old)
            bound = self.transition_bound(old, new, old_codes, new_codes)
            j = int(np.argmax(bound))
            rating = self.limits.max_edge_current_a
            if bound[j] > rating:
                where = "" if (old is new or dict(old) == dict(new)) and np.array_equal(old_codes, new_codes) else \
                    " in a state between the present and the requested one"
                raise LimitError(
                    f"edge {self.network.edges[j]}: could carry {bound[j] * 1e3:.3f} mA{where} in the worst case, "
                    f"{100 * bound[j] / rating:.1f} % of its {rating * 1e3:.3f} mA rating ({self.box_basis()})")
        except LimitError as exc:
            log.error("pattern refused: %s", exc,
                      extra={"event": "limit_refused", "fields": {"held": {str(k): float(v) for k, v in new.items()}}})
            raise

    def check_voltages(self, held: Pattern) -> None:
        """Refuse (:class:`LimitError`, logged) a pattern with a node that has no source channel
        or a voltage beyond its channel's limit."""
        try:
            self._check_voltages(held)
        except LimitError as exc:
            log.error("pattern refused: %s", exc,
                      extra={"event": "limit_refused", "fields": {"held": {str(k): float(v) for k, v in held.items()}}})
            raise

    def is_safe(self, old: Pattern, new: Pattern, old_codes: np.ndarray, new_codes: np.ndarray) -> bool:
        """Whether :meth:`refuse_unless_safe` would pass (nothing logged; voltage limits not checked)."""
        return bool(np.max(self.transition_bound(old, new, old_codes, new_codes), initial=0.0)
                    <= self.limits.max_edge_current_a)

    def transition_bound(self, old: Pattern, new: Pattern, old_codes: np.ndarray, new_codes: np.ndarray) -> np.ndarray:
        """Bound (A), shape (E,), on every edge current in every state between two bench states
        (:meth:`_voltage_bound`). With current-driven nodes, the smaller of two sound bounds per
        edge: the current nodes held anywhere their limit allows, and superposition — the
        current nodes floating, plus Σ_j max |I_j| (no edge carries more than a current injected
        into the network; :mod:`labnet.bench.current_drive`)."""
        cur = self.current_limits
        if not cur or not any(n in cur for n in (*old, *new)):
            return self._voltage_bound(old, new, old_codes, new_codes)
        (vo, ao), (vn, an) = self.split(old), self.split(new)
        extra = sum(max(abs(float(ao.get(n, 0.0))), abs(float(an.get(n, 0.0)))) for n in {*ao, *an})
        held = self._voltage_bound(old, new, old_codes, new_codes)
        return np.minimum(held, self._voltage_bound(vo, vn, old_codes, new_codes) + extra)

    def _voltage_bound(self, old: Pattern, new: Pattern, old_codes: np.ndarray, new_codes: np.ndarray) -> np.ndarray:
        """Bound (A), shape (E,), on every edge current in every state between two bench states.

        The states: a source node in both patterns anywhere between its two levels (a supply
        slewing); a node switched on or off (in one pattern only) floating or held anywhere
        between 0 V and its level (an output switching on rises from 0 V); every combination of
        these (sources change one command at a time, in any order); each edge's conductance
        anywhere in the hull of its boxes at the old and the new code (every tap a wiper passes,
        every order in which channels are written); setpoint errors (:class:`Limits`); a released
        node with a loading off-state (:attr:`off_loaded`) floating or at 0 V.

        For fixed conductances an edge current is affine in each held voltage, so over a range of
        levels its magnitude is largest at an end: the "corners" (each node at one end of its
        range, or floating) are bounded one by one (:func:`labnet.core.bounds.edge_current_bound`)
        up to ``EXACT_CORNERS`` of them; beyond, all at once with the ranges as intervals and
        switched nodes "maybe held" (sound, looser). Zeros if nothing is driven. Where a corner
        state with every part at its most conductive already exceeds the rating, its currents
        are returned instead (a real state of the box: the same verdict, found without a bound).
        """
        lo0, hi0, top0 = self.conductance_box(old_codes)
        if new_codes is old_codes or np.array_equal(old_codes, new_codes):
            k_lo, k_hi, top = lo0, hi0, top0
        else:
            lo1, hi1, top1 = self.conductance_box(new_codes)
            k_lo, k_hi, top = np.minimum(lo0, lo1), np.maximum(hi0, hi1), max(top0, top1)
        lim = self.limits
        net = self.network
        rel, off = lim.source_error_rel, lim.source_error_v
        options: list[tuple[int, list[tuple[float, float] | None]]] = []
        vmin = vmax = 0.0
        cur = self.current_limits
        for node in set(old) | set(new):
            if node in cur:
                continue
            levels = sorted({float(p[node]) for p in (old, new) if node in p})
            switched = not (node in old and node in new)
            if switched:
                levels = sorted({0.0, *levels})
            ends = [levels[0], levels[-1]] if len(levels) > 1 else levels
            opts: list[tuple[float, float] | None] = [(v - abs(v) * rel - off, v + abs(v) * rel + off) for v in ends]
            if switched:
                opts.append(None)
            options.append((net.index[node], opts))
            vmin, vmax = min(vmin, opts[0][0]), max(vmax, opts[len(ends) - 1][1])  # type: ignore[index]
        if cur:
            for node, (lo_v, hi_v), switched in self.current_ranges(old, new, vmin, vmax):
                options.append((net.index[node], [(lo_v, hi_v), None] if switched else [(lo_v, hi_v)]))
                vmin, vmax = min(vmin, lo_v), max(vmax, hi_v)
        if not options:
            return np.zeros(net.n_edges)
        for node in self.off_loaded:  # released through a loading off-state: between floating and 0 V
            if node not in old and node not in new:
                options.append((net.index[node], [None, (0.0, 0.0)]))
        if top * (vmax - vmin) <= lim.max_edge_current_a:  # maximum principle: no drop exceeds the span
            return np.full(net.n_edges, top * (vmax - vmin))
        n = net.n_nodes
        g = net.index[net.ground]
        nb = self._neighbours()
        n_corners = math.prod(len(o) for _, o in options)
        if n_corners > self.EXACT_CORNERS:  # all at once: each node over its whole range, maybe held
            v_lo, v_hi = np.full(n, np.nan), np.full(n, np.nan)
            held, maybe = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
            for i, opts in options:
                rng = [o for o in opts if o is not None]
                v_lo[i], v_hi[i] = min(o[0] for o in rng), max(o[1] for o in rng)
                (maybe if None in opts else held)[i] = True
            held[g], v_lo[g], v_hi[g] = True, 0.0, 0.0
            return edge_current_bound(net, k_lo, k_hi, v_lo, v_hi, held, maybe, nb, enough=lim.max_edge_current_a)
        out = np.zeros(net.n_edges)
        for corner in itertools.product(*(opts for _, opts in options)):
            v_lo, v_hi = np.full(n, np.nan), np.full(n, np.nan)
            held = np.zeros(n, dtype=bool)
            lo = hi = 0.0
            for (i, _), o in zip(options, corner):
                if o is not None:
                    v_lo[i], v_hi[i], held[i] = o[0], o[1], True
                    lo, hi = min(lo, o[0]), max(hi, o[1])
            if top * (hi - lo) <= lim.max_edge_current_a:
                out = np.maximum(out, top * (hi - lo))
                continue
            held[g], v_lo[g], v_hi[g] = True, 0.0, 0.0
            witness = self._witness(k_hi, corner, options)
            if witness is not None:
                return witness
            out = np.maximum(out, edge_current_bound(net, k_lo, k_hi, v_lo, v_hi, held, None, nb,
                                                     enough=lim.max_edge_current_a))
        return out

    def _witness(self, k: np.ndarray, corner: tuple[Any, ...], options: list[Any]) -> np.ndarray | None:
        """|currents| (A), (E,), of one real state of a corner — every part at its most conductive
        (``k``), every node at its setpoint — if one exceeds the rating (then the verdict needs no
        bound), else None. Skipped where ``k`` is not finite."""
        if not np.all(np.isfinite(k)) or any(self.network.nodes[i] in self.current_limits for i, _ in options):
            return None  # a current node's interval is not a state it can be held at
        held = {self.network.nodes[i]: 0.5 * (o[0] + o[1]) for (i, _), o in zip(options, corner) if o is not None}
        if not held:
            return None
        i = np.abs(edge_currents(self.network, k, self._pattern_solver(k, tuple(held)).solve(held)))
        return i if float(np.max(i)) > self.limits.max_edge_current_a else None

    #: Corners (source nodes at the ends of their ranges, or floating) up to which
    #: :meth:`transition_bound` bounds each one separately.
    EXACT_CORNERS = 32

    def conductance_box(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(k_lo, k_hi, max k_hi) in S, shapes (E,), (E,), scalar: every conductance the edges
        may have at ``codes`` — the part's datasheet box (:meth:`PartSpec.conductance_box`), or
        with a calibration table (a model with ``uncertainty``) its value ± ``TABLE_SIGMAS`` σ
        (widened by the tempco over ``BENCH_DELTA_T_K``: the bench may have warmed since) within
        that box. A table value outside the part's limits is refused (a table of another
        part or rig): :class:`LimitError` naming the edge and code."""
        c = np.asarray(codes, dtype=np.int64)
        model = self.model
        key = (id(model), self.part, c.tobytes())
        hit = self._boxes.get(key)
        if hit is not None and hit[0] is model:
            return hit[1]
        k_lo, k_hi = self.part.conductance_box(c)
        unc = getattr(model, "uncertainty", None)
        if unc is not None:
            k = np.asarray(model.conductance(c), dtype=float)
            sig = np.abs(np.asarray(unc(c), dtype=float))
            drift = self.part.tempco_ppm_per_k * 1e-6 * BENCH_DELTA_T_K  # the bench since the table was measured
            t_lo, t_hi = k / (1 + drift) - TABLE_SIGMAS * sig, k / max(1 - drift, 1e-9) + TABLE_SIGMAS * sig
            bad = ~((t_hi >= k_lo) & (t_lo <= k_hi) & np.isfinite(k) & np.isfinite(sig))
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                raise LimitError(
                    f"edge {self.network.edges[j]} at code {int(c[j])}: the calibration table's {k[j]:.4g} S ± "
                    f"{TABLE_SIGMAS:g}σ lies outside what a {self.part.name} can be ({k_lo[j]:.4g}–{k_hi[j]:.4g} S): "
                    f"a table of another part or rig?")
            k_lo, k_hi = np.maximum(k_lo, t_lo), np.minimum(k_hi, t_hi)
        box = (k_lo, k_hi, float(np.max(k_hi, initial=0.0)))
        for a in box[:2]:
            a.flags.writeable = False
        if len(self._boxes) >= self.PATTERN_CACHE:
            self._boxes.pop(next(iter(self._boxes)))
        self._boxes[key] = (model, box)
        return box

    def box_basis(self) -> str:
        """What the conductance box is made of, for messages."""
        if getattr(self.model, "uncertainty", None) is not None:
            return f"calibration table ± {TABLE_SIGMAS:g}σ"
        p = self.part
        return (f"any {p.name} within its datasheet limits: R_AB ±{100 * p.tolerance:g} %, "
                f"R_W 0–{p.r_w_max_ohm:g} Ω, INL ±{p.inl_taps:g} tap")

    def plan_sources(self, old: Pattern, new: Pattern, codes: np.ndarray) -> list[dict[str, float]]:
        """Single-channel steps from ``old`` to ``new`` that are each safe (:mod:`labnet.bench.transitions`);
        LimitError (logged) if there are none."""
        def safe(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
            return self.is_safe(a, b, codes, codes)
        steps = plan_sources(old, new, safe) or plan_ramp(old, new, safe)
        if not steps:
            exc = LimitError(f"no safe way from the present pattern {old} to {new}: every order of source changes "
                             f"passes a state that could exceed the {self.limits.max_edge_current_a * 1e3:.3f} mA "
                             f"rating in the worst case ({self.box_basis()})")
            log.error("pattern refused: %s", exc, extra={"event": "limit_refused", "fields": {"held": dict(new)}})
            raise exc
        return steps

    # ------------------------------------------------------------------ helpers
    def _check_voltages(self, held: Pattern) -> None:
        source_channels = self.network.source_channels
        if self.current_limits:
            held, amps = self.split(held)
            self.check_currents(amps)
        for node, v in held.items():
            ch = source_channels.get(node)
            if ch is None:
                raise LimitError(f"node {node!r} has no source channel")
            lim = self.limits.channel_limit(ch)
            if type(v) is bool or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v) \
                    or abs(v) > lim:
                raise LimitError(f"node {node!r} (source channel {ch}): {v} V exceeds the {lim} V limit")

    def _neighbours(self) -> Neighbours:
        c = self._nb
        if c is None or c[0] is not self.network:
            c = self._nb = (self.network, neighbours(self.network))
        return c[1]

    def _node_limits(self) -> dict[str, float]:
        """Source node -> its channel's voltage limit (V), kept per Limits object and network."""
        c = self._limits_by_node
        if c is None or c[0] is not self.limits or c[1] is not self.network:
            lim = {n: self.limits.channel_limit(ch) for n, ch in self.network.source_channels.items()}
            c = self._limits_by_node = (self.limits, self.network, lim)
        return c[2]

    #: Conductance boxes and solvers kept (codes revisit earlier values as training settles).
    PATTERN_CACHE = 64

    def _pattern_solver(self, k: np.ndarray, names: tuple[str, ...]) -> Solver:
        """Solver for conductances ``k`` with ``names`` held (the last :attr:`PATTERN_CACHE`
        are kept, keyed by the exact conductances and the held names)."""
        key = (names, k.tobytes())
        cache = self._solvers
        solver = cache.get(key)
        if solver is None or solver.network is not self.network:
            solver = Solver(self.network, k, list(names))
            if len(cache) >= self.PATTERN_CACHE:
                cache.pop(next(iter(cache)))
            cache[key] = solver
        return solver
