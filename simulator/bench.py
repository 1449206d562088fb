"""Simulated benches reachable by address: the registry behind ``sim://<rig>`` and ``@sim``.

A :class:`SimBench` is one physical model (:class:`~simulator.breadboard.Breadboard`) with
the emulated instruments wired to it: the digipot board (serial) and SCPI instruments
(VISA), plus the bench's :class:`~simulator.faults.FaultPlan`. :func:`register` makes it
reachable by its name, so that

* ``serial.serial_for_url("sim://sim16")`` opens the board of bench ``sim16``
  (pyserial protocol handler :mod:`simulator.protocol_sim`), and
* ``pyvisa.ResourceManager(simulator.visa.library()).open_resource("TCPIP0::sim16::daq::INSTR")``
  opens its instrument ``daq`` (pyvisa backend :mod:`simulator.visa`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labnet.core.nonideal import SimSettings
from labnet.core.settling import RESPONSES, SourceResponse
from labnet.core.state import collect, restore_parts
from simulator.board import BoardTiming, EmulatedBoard
from simulator.breadboard import Breadboard
from simulator.faults import FaultPlan

_BENCHES: dict[str, SimBench] = {}


def output_response(model: str, settings: SimSettings) -> SourceResponse | None:
    """How an emulated ``model``'s voltage outputs settle: the documented response
    (:data:`labnet.core.settling.RESPONSES`), else the E36312A's from the simulated bench's
    ``supply_tau_s``/``supply_dead_s`` (None when both are 0: the outputs step at once)."""
    if model in RESPONSES:
        return RESPONSES[model]
    if model == "E36312A" and (settings.supply_tau_s > 0 or settings.supply_dead_s > 0):
        return SourceResponse(settings.supply_dead_s, settings.supply_tau_s, "the simulated bench's supply_tau_s")
    return None


class SimBench:
    """A breadboard model with its emulated instruments.

    Parameters
    ----------
    name : str
        The host part of the addresses (``sim://<name>``, ``TCPIP0::<name>::<device>::INSTR``).
    model : Breadboard
    faults : FaultPlan, optional
    board_timing : BoardTiming, optional
    """

    def __init__(self, name: str, model: Breadboard, faults: FaultPlan | None = None,
                 board_timing: BoardTiming | None = None) -> None:
        self.name = name
        self.model = model
        self.clock = model.clock
        self._faults = faults or FaultPlan()
        self.board = EmulatedBoard(model, self._faults, board_timing)
        self.instruments: dict[str, Any] = {}
        self._driven: dict[str, dict[str, float]] = {}
        self._injected: dict[str, dict[str, tuple[float, float]]] = {}

    @property
    def faults(self) -> FaultPlan:
        """The bench's fault plan, shared by the board and every instrument."""
        return self._faults

    @faults.setter
    def faults(self, plan: FaultPlan) -> None:
        self._faults = plan
        self.board.faults = plan
        for inst in self.instruments.values():
            inst.faults = plan

    def parts(self) -> dict[str, Any]:
        """The bench's stateful parts by role name (:class:`labnet.core.state.Stateful` leaves):
        the physical model (with its clock), the fault plan, the board and every instrument
        emulator by its VISA device name."""
        return {"model": self.model, "faults": self._faults, "board": self.board,
                "instruments": dict(self.instruments)}

    def state(self) -> dict[str, Any]:
        """The state of every part, by role name (see :meth:`parts`)."""
        return collect(self.parts())

    def restore(self, state: dict[str, Any]) -> None:
        """Restore every part from :meth:`state` output (same roles: checked by the caller)."""
        restore_parts(self.parts(), state)

    def add_instrument(self, device: str, model: str, prefix: str = "", **options: Any) -> Any:
        """Wire an emulated SCPI instrument (``"DAQ970A"``, ``"34970A"``, ``"E36312A"``,
        ``"Keithley2450"``) under VISA device name ``device``; source channels it drives are
        ``<prefix>.<n>`` in the rig's network."""
        from simulator.scpi_emu import make_emulator

        inst = make_emulator(model, self, device, prefix, **options)
        self.instruments[device] = inst
        response = output_response(model, self.model.settings)
        if response is not None:  # its outputs settle after a change (simulator.settling)
            for ch in self.model.network.source_channels.values():
                if ch.startswith(f"{prefix}."):
                    self.model.settling.set_response(ch, response)
        return inst

    def set_outputs(self, instrument: str, outputs: Mapping[str, float]) -> None:
        """An emulated source reports its enabled outputs (full channel name -> V)."""
        self._driven[instrument] = dict(outputs)
        merged: dict[str, float] = {}
        for d in self._driven.values():
            merged.update(d)
        self.model.drive(merged)

    def set_currents(self, instrument: str, outputs: Mapping[str, tuple[float, float]]) -> None:
        """An emulated SMU reports its outputs sourcing current (full channel name -> (A, VLIM V))."""
        self._injected[instrument] = dict(outputs)
        merged: dict[str, tuple[float, float]] = {}
        for d in self._injected.values():
            merged.update(d)
        self.model.inject(merged)


def register(bench: SimBench) -> SimBench:
    """Make ``bench`` reachable by its name (replaces an earlier bench of that name)."""
    _BENCHES[bench.name] = bench
    return bench


def unregister(name: str) -> None:
    _BENCHES.pop(name, None)


def get_bench(name: str) -> SimBench:
    try:
        return _BENCHES[name]
    except KeyError:
        raise KeyError(f"no simulated bench named {name!r} (registered: {sorted(_BENCHES) or 'none'})") from None


def benches() -> list[str]:
    return sorted(_BENCHES)
