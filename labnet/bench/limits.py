"""What the bench must never exceed, and the checks that refuse a voltage pattern before it is applied.

:class:`Limits` holds the rated limits; :class:`LimitChecks` (a base of
:class:`labnet.bench.rig.Rig`) predicts node voltages and edge currents from the model
conductances and refuses (:class:`LimitError`, logged as ``limit_refused``) a pattern that
would exceed one, usually without solving the network (maximum principle, see
:meth:`LimitChecks._refuse_unsafe`).
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labnet.core.conductance import ConductanceModel, PartModel
from labnet.core.errors import LimitError
from labnet.core.network import Network
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
    """

    max_source_v: float
    max_edge_current_a: float
    code_min: int
    code_max: int
    source_max_v: dict[str, float] = field(default_factory=dict)

    def channel_limit(self, channel: str) -> float:
        return min(self.max_source_v, self.source_max_v.get(channel, np.inf))


class LimitChecks:
    """Pattern checks of a rig (mixed into :class:`labnet.bench.rig.Rig`, which sets these
    attributes and the caches in its ``__init__``)."""

    network: Network
    limits: Limits
    model: ConductanceModel
    _record_span: tuple[int, int] | None
    _solvers: dict[tuple[tuple[str, ...], bytes], Solver]
    _solvers_network: Network
    _currents: dict[tuple[Any, ...], tuple[np.ndarray, int, float]]
    _k_cache: dict[tuple[Any, ...], np.ndarray]
    _k_model: ConductanceModel | None
    _limits_by_node: tuple[Any, Any, dict[str, float]] | None
    _ceiling: tuple[Any, ...] | None

    @property
    def codes(self) -> np.ndarray:
        """Host record of every edge's code, shape (E,) (the rig's)."""
        raise NotImplementedError

    def check_pattern(self, held: Mapping[str, float], codes: np.ndarray | None = None) -> np.ndarray:
        """Refuse a voltage pattern that exceeds a limit; return predicted edge currents (A).

        Checks every source channel's voltage limit and predicts every edge current from the
        model conductances. Raises :class:`LimitError` and applies nothing on violation; the
        refusal is logged (``limit_refused`` in the session's events).
        """
        try:
            return self._check_pattern(held, codes)
        except LimitError as exc:
            log.error("pattern refused: %s", exc,
                      extra={"event": "limit_refused", "fields": {"held": {str(k): float(v) for k, v in held.items()}}})
            raise

    def _check_pattern(self, held: Mapping[str, float], codes: np.ndarray | None) -> np.ndarray:
        source_channels = self.network.source_channels
        for node, v in held.items():
            ch = source_channels.get(node)
            if ch is None:
                raise LimitError(f"node {node!r} has no source channel")
            lim = self.limits.channel_limit(ch)
            if not (math.isfinite(v) if type(v) is float else np.isfinite(v)) or abs(v) > lim:
                raise LimitError(f"node {node!r} (source channel {ch}): {v} V exceeds the {lim} V limit")
        if not held:
            return np.zeros(self.network.n_edges)
        k = self._model_conductances(self.codes if codes is None else codes)
        names = tuple(held)
        try:
            vkey: bytes | None = struct.pack(f"{len(names)}d", *held.values())  # -0.0 and 0.0 differ
        except (struct.error, TypeError, OverflowError):
            vkey = None
        self._sync_caches()
        key = (names, vkey, k.tobytes())
        hit = self._currents.get(key) if vkey is not None else None
        if hit is None:
            volts = self._pattern_solver(k, names).solve(dict(held))
            i = edge_currents(self.network, k, volts)
            j = int(np.argmax(np.abs(i)))
            hit = (i, j, abs(i[j]))
            if vkey is not None:
                i.flags.writeable = False
                if len(self._currents) >= self.PATTERN_CACHE:
                    self._currents.pop(next(iter(self._currents)))
                self._currents[key] = hit
        i, j, peak = hit
        if peak > self.limits.max_edge_current_a:
            raise LimitError(
                f"edge {self.network.edges[j]}: predicted {peak * 1e3:.3f} mA exceeds the "
                f"{self.limits.max_edge_current_a * 1e3:.3f} mA rating"
            )
        return i.copy()

    def _refuse_unsafe(self, held: Mapping[str, float], codes: np.ndarray | None = None,
                       in_limits: bool = False) -> None:
        """Raise :class:`LimitError` (logged) if ``held`` would exceed a limit at ``codes``.

        The same verdict as :meth:`check_pattern`, usually without solving the network: in a
        passive resistor network every node voltage lies between the lowest and the highest held
        voltage (ground's 0 V included) — the maximum principle — so no edge current exceeds
        ``k_max · span``, with ``k_max`` the largest conductance the model gives any edge at any
        code within the limits. When that bound is within the rating the pattern is safe; only
        otherwise is the network solved (:meth:`check_pattern`). ``in_limits`` says ``codes`` (or
        the present codes, if None) lie within ``code_min..code_max``.
        """
        node_lim = self._node_limits()
        lo = hi = 0.0
        for node, v in held.items():
            lim = node_lim.get(node)
            if lim is None or type(v) is not float or not abs(v) <= lim:  # NaN fails too
                break  # check_pattern words the refusal
            if v < lo:
                lo = v
            elif v > hi:
                hi = v
        else:
            span = self._record_span if codes is None else None
            limits = self.limits
            if in_limits or (span is not None and limits.code_min <= span[0] and span[1] <= limits.code_max):
                if (hi - lo) * self._k_ceiling() <= limits.max_edge_current_a:
                    return
        self.check_pattern(held, codes)

    def _node_limits(self) -> dict[str, float]:
        """Source node -> its channel's voltage limit (V), kept per Limits object and network."""
        c = self._limits_by_node
        if c is None or c[0] is not self.limits or c[1] is not self.network:
            lim = {n: self.limits.channel_limit(ch) for n, ch in self.network.source_channels.items()}
            c = self._limits_by_node = (self.limits, self.network, lim)
        return c[2]

    def _k_ceiling(self) -> float:
        """Largest model conductance (S) of any edge at any code in ``code_min..code_max``
        (kept per model object, code range and edge count; ``inf`` if the model cannot say)."""
        model, lo, hi, e = self.model, self.limits.code_min, self.limits.code_max, self.network.n_edges
        c = self._ceiling
        if c is None or c[0] is not model or c[1:4] != (lo, hi, e):
            try:
                top = max(float(np.max(model.conductance(np.full(e, code, dtype=np.int64))))
                          for code in range(lo, hi + 1))
            except (IndexError, ValueError):  # a table without these codes, an empty range
                top = math.inf
            if not (math.isfinite(top) and top > 0):
                top = math.inf
            c = self._ceiling = (model, lo, hi, e, top)
        return c[4]

    #: Patterns (held set, conductances) whose solver and predicted currents are kept. Within a
    #: step the clamped set is checked at the present codes, then the input and the clamped set
    #: at the new ones; once training settles, codes revisit earlier values.
    PATTERN_CACHE = 64

    def _model_conductances(self, codes: np.ndarray) -> np.ndarray:
        """``model.conductance(codes)``, kept per codes for the nominal part model (its curve
        never changes; a calibration table is asked every time)."""
        model = self.model
        if type(model) is not PartModel:
            return model.conductance(codes)
        self._sync_caches()
        if self._k_model is not model:
            self._k_cache.clear()
            self._k_model = model
        c = np.asarray(codes)
        key = (c.dtype.str, c.shape, c.tobytes())
        k = self._k_cache.get(key)
        if k is None:
            k = model.conductance(c)
            k.flags.writeable = False
            if len(self._k_cache) >= self.PATTERN_CACHE:
                self._k_cache.pop(next(iter(self._k_cache)))
            self._k_cache[key] = k
        return k

    def _sync_caches(self) -> None:
        """Drop the kept solvers, currents and conductances if the network was replaced."""
        if self._solvers_network is not self.network:
            self._solvers.clear()
            self._currents.clear()
            self._k_cache.clear()
            self._solvers_network = self.network

    def _pattern_solver(self, k: np.ndarray, names: tuple[str, ...]) -> Solver:
        """Solver for conductances ``k`` with ``names`` held (the last :attr:`PATTERN_CACHE`
        are kept, keyed by the exact conductances and the held names)."""
        key = (names, k.tobytes())
        cache = self._solvers
        self._sync_caches()
        solver = cache.get(key)
        if solver is None:
            solver = Solver(self.network, k, list(names))
            if len(cache) >= self.PATTERN_CACHE:
                cache.pop(next(iter(cache)))
            cache[key] = solver
        return solver
