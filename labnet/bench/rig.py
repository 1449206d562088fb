"""The lab bench as the engine sees it: a network wired to digipots, sources and a meter.

A :class:`Rig` maps edges to digipot channels and nodes to meter and source channels, keeps
the host's record of every code, enforces limits before anything is applied (the checks are
in :mod:`labnet.bench.limits`), and always ends in the safe state (sources at 0 V, outputs
off) when used as a context manager. :class:`Limits` and :class:`WallClock` (in
:mod:`labnet.bench.clock`) are importable from here too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from labnet.bench.clock import WallClock
from labnet.bench.limits import LimitChecks, Limits
from labnet.bench.planned import PlannedChanges
from labnet.bench.plausible import implausible
from labnet.bench.release import SwitchRelease
from labnet.bench.roles import Clock, CurrentSensing, CurrentSources, Digipots, Meter, Sources, Switches
from labnet.bench.settle import SettleTracking
from labnet.core.conductance import ConductanceModel, PartModel
from labnet.core.errors import InstrumentError, LimitError
from labnet.core.network import Network
from labnet.core.parts import PartSpec
from labnet.core.physics import Solver

log = logging.getLogger("labnet.bench.rig")


class Rig(SettleTracking, PlannedChanges):
    """A bench: ``network`` + ``part`` wired to ``digipots``, ``sources``, ``meter``.

    Parameters
    ----------
    network : Network
        Roles and wiring maps (edge -> digipot channel, node -> meter/source channel).
    part : PartSpec
        The digipot part on every edge.
    digipots, sources, meter : role implementations
    limits : Limits
    clock : Clock, optional
        Defaults to wall time; the simulator passes its virtual clock.
    model : ConductanceModel, optional
        Code -> conductance used for limit checks and by the rules; nominal part model by
        default, a calibration table once one is loaded.
    name : str
        The rig's name (from its file).
    simulated : bool
        True when the instruments are emulated (dry run).
    switches : Switches, optional
        Analog switches between sources and clamped nodes (``[release] method = "switch"``).
    switch_channels : mapping node -> int, optional
        The switch channel of each switched node; with them a node is released by opening its
        switch (the source stays on behind it), without them by its source's output-off.
    current_sources : CurrentSources, optional
        The current sources of the nodes in ``network.current_channels`` (their pattern values
        are amperes; :mod:`labnet.bench.current_drive`).
    current_limits : mapping node -> (A, V), optional
        Largest |current| and the voltage limit VLIM of each current-driven node.
    """

    def __init__(
        self,
        network: Network,
        part: PartSpec,
        digipots: Digipots,
        sources: Sources,
        meter: Meter,
        limits: Limits,
        *,
        clock: Clock | None = None,
        model: ConductanceModel | None = None,
        name: str = "rig",
        simulated: bool = False,
        extra: Mapping[str, Any] | None = None,
        switches: Switches | None = None,
        switch_channels: Mapping[str, int] | None = None,
        current_sources: CurrentSources | None = None,
        current_limits: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.network = network
        self.part = part
        self.digipots = digipots
        self.sources = sources
        self.meter = meter
        self.limits = limits
        self.clock: Clock = clock if clock is not None else WallClock()
        self.model: ConductanceModel = model if model is not None else PartModel(part, network.n_edges)
        self.name = name
        self.simulated = simulated
        self.extra = dict(extra or {})
        self._init_currents(current_sources, current_limits)
        self.release: SwitchRelease | None = None
        if switch_channels:
            if switches is None:
                raise ValueError("switch_channels given without a Switches role")
            self.release = SwitchRelease(switches, switch_channels)
        self._codes: np.ndarray | None = None
        self._held: dict[str, float] = {}
        self._metered = [n for n in network.nodes if n in network.meter_channels]
        self._metered_idx = network.indices(self._metered)
        self._channels = list(network.edge_channels)
        self._solvers: dict[tuple[tuple[str, ...], bytes], Solver] = {}
        self._boxes: dict[tuple[Any, ...], tuple[ConductanceModel, tuple[np.ndarray, np.ndarray, float]]] = {}
        self._nb: tuple[Network, Any] | None = None
        self._limits_by_node: tuple[Any, Any, dict[str, float]] | None = None
        #: Transitions applied as a plan (reordered, dropped first or ramped) rather than in one go.
        self.planned_transitions = 0
        self._ground_metered = network.ground in network.meter_channels
        self._metered_list = [int(i) for i in self._metered_idx]
        self._all_metered = self._metered_list == list(range(network.n_nodes))
        self.is_open = False
        #: Re-reads of a scan that is physically impossible before giving up (InstrumentError).
        self.measure_rereads = 2
        #: Attempts (with back-off ``safe_state_backoff_s``) to reach the safe state.
        self.safe_state_attempts = 4
        self.safe_state_backoff_s = 0.2

    # ------------------------------------------------------------------ life cycle
    def open(self) -> Rig:
        """Put sources in the safe state, configure the meter, learn the present codes."""
        if self.current_sources is not None:
            self.current_sources.safe_state()
        self.sources.safe_state()
        if self.release is not None:
            self.release.open_all()
        self.meter.configure([self.network.meter_channels[n] for n in self._metered])
        self._set_record(np.asarray(self.digipots.read_codes(self._channels), dtype=np.int64))
        self.is_open = True
        return self

    def close(self) -> None:
        """Safe state, then close every instrument (each attempted even if one fails)."""
        errors: list[BaseException] = []
        closers = [self.safe_state, self.digipots.close, self.sources.close, self.meter.close]
        if self.current_sources is not None:
            closers.append(self.current_sources.close)
        for action in closers:
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - every instrument must get its chance
                errors.append(exc)
        self.is_open = False
        if errors:
            raise errors[0]

    def __enter__(self) -> Rig:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.close()
        except Exception:
            if exc is None:
                raise

    def safe_state(self) -> None:
        """Every analog switch open, sources to 0 V, outputs off.

        The switches are opened first (the nodes are disconnected before the sources move);
        a failure to open them does not keep the sources from their safe state (it is raised
        after, and the attempt counts as failed).

        Tried ``safe_state_attempts`` times with a growing back-off (a supply that just
        dropped off the bus may come back); every failed attempt is logged; the last error is
        raised if none succeeded.
        """
        self._held = {}
        last: Exception | None = None
        for attempt in range(1, self.safe_state_attempts + 1):
            try:
                switch_error: Exception | None = None
                if self.current_sources is not None:  # first: no current pushes into an undriven network
                    try:
                        self.current_sources.safe_state()
                    except Exception as exc:  # noqa: BLE001 - the voltage sources must still go safe
                        switch_error = exc
                if self.release is not None:
                    try:
                        self.release.open_all()
                    except Exception as exc:  # noqa: BLE001 - the sources must still go safe
                        switch_error = exc
                self.sources.safe_state()
                if switch_error is not None:
                    raise switch_error
                if attempt > 1:
                    log.warning("safe state reached on attempt %d", attempt,
                                extra={"event": "recovery", "fields": {"action": "safe_state", "attempt": attempt}})
                return
            except Exception as exc:  # noqa: BLE001 - must keep trying whatever went wrong
                last = exc
                log.error("safe state attempt %d failed: %s", attempt, exc,
                          extra={"event": "retry", "fields": {"action": "safe_state", "attempt": attempt}})
                if attempt < self.safe_state_attempts:
                    self.clock.sleep(self.safe_state_backoff_s * attempt)  # modelled time on a simulator
        assert last is not None
        raise last

    # ------------------------------------------------------------------ run state
    #: :class:`labnet.core.state.Stateful`: the host record of the codes (or null before the
    #: rig was first opened) and the held pattern (node -> V).
    STATE_SCHEMA: ClassVar[dict[str, Any]] = {"codes": (list, type(None)), "held": dict}

    def state(self) -> dict[str, Any]:
        """The host's record: every code (``network.edges`` order) and the held pattern."""
        return {"codes": None if self._codes is None else [int(c) for c in self._codes], "held": dict(self._held)}

    def restore(self, state: dict[str, Any]) -> None:
        """Take the record back (no instrument is touched: :meth:`restore_codes` writes codes)."""
        codes = state["codes"]
        if codes is not None:
            c = np.asarray(codes, dtype=np.int64)
            if c.shape != (self.network.n_edges,):
                raise ValueError(f"rig state: expected {self.network.n_edges} codes, got {c.shape}")
            self._set_record(c)
        self._held = {str(n): float(v) for n, v in state["held"].items()}

    # ------------------------------------------------------------------ codes
    @property
    def codes(self) -> np.ndarray:
        """Host record of every edge's code, shape (E,), ``network.edges`` order."""
        if self._codes is None:
            raise RuntimeError("rig is not open")
        return self._codes.copy()

    def write_codes(self, codes: np.ndarray) -> None:
        """Write codes (shape (E,)); only edges whose code changes are sent."""
        new = np.asarray(codes, dtype=np.int64)
        if new.shape != (self.network.n_edges,):
            raise ValueError(f"codes: expected shape ({self.network.n_edges},), got {new.shape}")
        lo, hi = self.limits.code_min, self.limits.code_max
        if new.size and (new.min() < lo or new.max() > hi):
            bad = int(np.flatnonzero((new < lo) | (new > hi))[0])
            raise LimitError(f"edge {self.network.edges[bad]}: code {new[bad]} outside limits {lo}..{hi}")
        old = self.codes
        if not np.array_equal(new, old):
            held = self._held
            if held and not self.is_safe(held, held, old, new):
                self.refuse_unless_safe(held, held, new, new)  # the new codes themselves
                self._planned_codes(old, new)
                return
            self._send_codes(old, new)

    def restore_codes(self, codes: np.ndarray) -> None:
        """Write ``codes`` to *every* channel (resume, recovery) and verify them.

        Unlike :meth:`write_codes` this does not trust the host record (a board may have been
        reset or power-cycled since). Codes are verified by reading them back; for parts that
        cannot read back, the driver reports its own record and the check confirms the write
        was accepted. Raises :class:`InstrumentError` on a mismatch.
        """
        new = np.asarray(codes, dtype=np.int64)
        if new.shape != (self.network.n_edges,):
            raise ValueError(f"codes: expected shape ({self.network.n_edges},), got {new.shape}")
        lo, hi = self.limits.code_min, self.limits.code_max
        if np.any(new < lo) or np.any(new > hi):
            bad = int(np.flatnonzero((new < lo) | (new > hi))[0])
            raise LimitError(f"edge {self.network.edges[bad]}: code {new[bad]} outside limits {lo}..{hi}")
        held = dict(self._held)
        dropped = False
        if held:
            self.refuse_unless_safe(held, held, new, new)
            if self._codes is None or not self.is_safe(held, held, self._codes, new):
                self.apply({})  # the wipers may be anywhere between: write them with nothing driven
                dropped = True
        self.digipots.write_codes(list(self._channels), [int(c) for c in new])
        self._set_record(new.copy())
        if dropped:
            self.apply(held)
        back = np.asarray(self.digipots.read_codes(self._channels), dtype=np.int64)
        if not np.array_equal(back, new):
            j = int(np.flatnonzero(back != new)[0])
            raise InstrumentError(f"edge {self.network.edges[j]}: wrote code {new[j]}, read back {back[j]}")
        log.info("codes restored on all %d channels", len(new),
                 extra={"event": "codes_restored", "fields": {"codes": [int(c) for c in new]}})

    def _set_record(self, codes: np.ndarray) -> None:
        """Keep ``codes`` (E,) as the host record."""
        self._codes = codes
        self._note_codes()

    def conductances(self, codes: np.ndarray | None = None) -> np.ndarray:
        """Model conductances (S), shape (E,), at ``codes`` (default: present codes)."""
        return self.model.conductance(self.codes if codes is None else codes)

    # ------------------------------------------------------------------ sources
    def apply(self, held: Mapping[str, float]) -> None:
        """Drive the given nodes (node -> V) and release every other source node: by opening
        its switch (switched nodes) or turning its source's output off."""
        held = {str(n): float(v) for n, v in held.items()}
        codes = self.codes
        old = self._held
        self.refuse_unless_safe(held, held, codes, codes)  # the pattern itself
        if old != held and not self.is_safe(old, held, codes, codes):  # and every state on the way
            self._apply_planned(old, held, codes)
        self._drive(held)

    def _drive(self, held: dict[str, float]) -> None:
        """Send one pattern (release-aware: switches opened first, closed after) and record it."""
        pattern, amps = self.split(held)
        if self.release is not None:  # release by switch: open first, the source stays on behind it
            self.release.open_released(pattern)
            pattern = self.release.source_pattern(pattern)
        self.sources.apply({self.network.source_channels[n]: v for n, v in pattern.items()})
        if self.current_limits:
            self.drive_currents(amps)
        if self.release is not None:
            self.release.close_held(held)
        self._note_change(self._held, held)
        self._held = held

    @property
    def held(self) -> dict[str, float]:
        """Nodes presently driven and their voltages."""
        return dict(self._held)

    def read_source_currents(self, nodes: list[str]) -> np.ndarray | None:
        """Currents (A) the sources deliver at ``nodes`` if the sources can measure them."""
        if isinstance(self.sources, CurrentSensing):
            return np.asarray(self.sources.read_currents([self.network.source_channels[n] for n in nodes]))
        return None

    # ------------------------------------------------------------------ measuring
    def settle(self, seconds: float) -> None:
        self.clock.sleep(seconds)

    def set_nplc(self, nplc: float) -> None:
        """The meter's integration time from now on (power-line cycles); a meter that cannot
        change it between scans raises :class:`InstrumentError`."""
        change = getattr(self.meter, "integration", None)
        if change is None:
            raise InstrumentError(f"meter {type(self.meter).__name__}: cannot change its NPLC between states")
        change(nplc)

    def measure(self) -> np.ndarray:
        """One meter scan: node voltages (V), shape (N,), ``network.nodes`` order.

        Nodes without a meter channel read as NaN, except ground (0 V). A scan that is
        physically impossible (:meth:`implausible`) is read again, up to
        ``measure_rereads`` times, each logged; then :class:`InstrumentError`.
        """
        for attempt in range(self.measure_rereads + 1):
            raw = np.asarray(self.meter.read(), dtype=float)
            if self._all_metered and raw.shape == (self.network.n_nodes,):  # every node, in node order
                v = raw.copy()
            else:
                v = np.full(self.network.n_nodes, np.nan)
                v[self._metered_idx] = raw
            if not self._ground_metered:
                v[self.network.index[self.network.ground]] = 0.0
            problem = self.implausible(v)
            if problem is None:
                if self.current_limits:
                    self.note_trips(self.split(self._held)[1])
                return v
            log.warning("implausible meter reading (%s), reading again", problem,
                        extra={"event": "retry", "fields": {"action": "measure", "attempt": attempt + 1,
                                                            "problem": problem}})
        raise InstrumentError(f"meter: reading implausible after {self.measure_rereads + 1} scans: {problem}")

    def implausible(self, v: np.ndarray) -> str | None:
        """Why a scan ``v`` (V, shape (N,)) cannot be right for the applied pattern, or None
        (:func:`labnet.bench.plausible.implausible`; a current node spans up to its VLIM)."""
        held, amps = self.split(self._held)
        ends = [0.0, *held.values(), *(s * self.current_limits[n][1] for n, i in amps.items()
                                       for s in (-1.0, 1.0) if s * i > 0)]
        return implausible(self.network, held, ends, v, self._metered_list)

    def describe(self) -> dict[str, Any]:
        """Everything the session header should say about this rig."""
        ident: dict[str, Any] = {}
        for role, inst in (("digipots", self.digipots), ("sources", self.sources), ("meter", self.meter)):
            try:
                ident[role] = inst.identity()
            except Exception as exc:  # noqa: BLE001 - identity is informative only
                ident[role] = {"error": str(exc)}
        return {
            "name": self.name,
            "simulated": self.simulated,
            "part": self.part.to_dict(),
            "limits": asdict(self.limits),
            "instruments": {**ident, **self.current_identity()},
            **self.extra,
        }


__all__ = ["LimitChecks", "Limits", "PartModel", "Rig", "WallClock"]
