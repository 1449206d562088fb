"""Which stateful objects a rig's run has, by role name: what a checkpoint saves and restores.

The session layer never sees a driver or the simulator: it gets a *parts* mapping
(role name -> :class:`labnet.core.state.Stateful`, or a nested mapping) from here,

* ``rig`` — the host's record (codes, held pattern);
* ``drivers`` — ``digipots``, ``meter`` and ``sources`` (a routed Sources role as one entry
  per instrument prefix), those that keep per-run state;
* ``simulator`` — on a simulated rig: ``model`` (the breadboard with its clock) and, on a
  wired one, ``faults``, ``board`` and ``instruments`` (every SCPI emulator by device name).

:func:`expected_layout` says which classes a rig file *will* give those roles, so a
checkpoint can be checked before anything is built or opened; :func:`state_parts` gathers
the objects of a built rig. A test builds every shipped rig and checks that both agree.
"""

from __future__ import annotations

from typing import Any

from drivers.current_source import Keithley2450Current, RoutedCurrentSources
from drivers.daq970a import DAQ970A, Keysight34970A
from drivers.digipot import DigipotBoard
from drivers.sources import E36312A, Keithley2450, RoutedSources
from labnet.bench.rig import Rig
from labnet.config.rigfile import RigSpec
from labnet.core.state import Stateful
from simulator.bench import SimBench, get_bench
from simulator.board import EmulatedBoard
from simulator.breadboard import Breadboard
from simulator.direct import DirectDigipots, DirectMeter, DirectSources
from simulator.faults import FaultPlan
from simulator.protocol_sim import Serial as SimSerial
from simulator.scpi_emu import EMULATOR_CLASSES

_METERS = {"DAQ970A": DAQ970A, "34970A": Keysight34970A}
_SOURCES = {"E36312A": E36312A, "Keithley2450": Keithley2450}


def _sim_bench(rig: Rig) -> SimBench | None:
    """The simulated bench behind a wired simulated rig (the one its board's port was opened
    onto: a later rig of the same name registers another bench under that name), or None."""
    port = getattr(rig.digipots, "port", None)
    if isinstance(port, SimSerial) and port.bench is not None:
        return port.bench
    name = rig.extra.get("sim_bench")
    if not name:
        return None
    try:
        return get_bench(str(name))
    except KeyError:
        return None


def sim_model(rig: Rig) -> Breadboard | None:
    """The simulator's physical model behind ``rig`` (None on a bench)."""
    bench = _sim_bench(rig)
    if bench is not None:
        return bench.model
    for role in (rig.digipots, rig.meter, rig.sources):
        if isinstance(role, (DirectDigipots, DirectMeter, DirectSources)):
            return role.board
    return None


def state_parts(rig: Rig) -> dict[str, Any]:
    """The stateful objects of ``rig``'s run by role name (see the module docstring)."""
    drivers: dict[str, Any] = {}
    for name, role in (("digipots", rig.digipots), ("meter", rig.meter), ("sources", rig.sources)):
        if isinstance(role, RoutedSources):
            drivers[name] = {p: inst for p, inst in role.instruments.items() if isinstance(inst, Stateful)}
            if isinstance(rig.current_sources, RoutedCurrentSources):  # current sources: source tables too
                drivers[name].update({p: inst for p, inst in rig.current_sources.instruments.items()
                                      if isinstance(inst, Stateful)})
        elif isinstance(role, Stateful):
            drivers[name] = role
    parts: dict[str, Any] = {"rig": rig, "drivers": drivers}
    bench = _sim_bench(rig)
    if bench is not None:
        parts["simulator"] = bench.parts()
    else:
        model = sim_model(rig)
        if model is not None:
            parts["simulator"] = {"model": model}
    return parts


def expected_layout(spec: RigSpec) -> dict[str, Any]:
    """The classes :func:`state_parts` will find on the rig ``spec`` builds (role -> class or
    nested roles), known before anything is built."""
    layout: dict[str, Any] = {"rig": Rig, "drivers": {}}
    ins = spec.instruments
    if spec.transport != "wire" or ins is None:
        if spec.simulated:
            layout["simulator"] = {"model": Breadboard}
        return layout
    layout["drivers"] = {"digipots": DigipotBoard, "meter": _METERS.get(ins.meter.model, DAQ970A),
                         "sources": {p: Keithley2450Current if s.options.get("function") == "current"
                                     else _SOURCES[s.model] for p, s in ins.sources.items()}}
    if spec.simulated:
        from pyvisa import rname

        devices = [ins.meter, *ins.sources.values()]
        layout["simulator"] = {
            "model": Breadboard, "faults": FaultPlan, "board": EmulatedBoard,
            "instruments": {str(getattr(rname.parse_resource_name(v.resource), "lan_device_name", "")):
                            EMULATOR_CLASSES[v.model] for v in devices},
        }
    return layout


__all__ = ["expected_layout", "sim_model", "state_parts"]
