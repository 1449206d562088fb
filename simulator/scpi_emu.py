"""Emulated SCPI instruments on the one physical model: DAQ970A/34970A, E36312A, Keithley 2450.

Each answers the SCPI subset the drivers use, with the real instruments' manners:

* short and long mnemonics (``VOLT`` / ``VOLTAGE``), optional nodes (``[SENSe:]``,
  ``[SOURce:]`` where the instrument has them), several commands per message (``;`` and
  ``;:``), channel lists ``(@101:105,107)``;
* an error queue of at most 20 entries with real SCPI error numbers: ``-113,"Undefined
  header"``, ``-102,"Syntax error"``, ``-108,"Parameter not allowed"``, ``-109,"Missing
  parameter"``, ``-222,"Data out of range"``, ``-224,"Illegal parameter value"`` (a discrete
  value not in its list), ``-221,"Settings conflict"``, ``-214,"Trigger deadlock"`` (the DAQ's
  ``READ?`` with the BUS trigger source), ``-211,"Trigger ignored"``, ``-285`` (the 2450's TSP
  parser), ``-410,"Query INTERRUPTED"``, ``-420,"Query UNTERMINATED"``, ``-350,"Queue
  overflow"``;
* after a command error (-100..-199) the rest of the program message is discarded (IEEE
  488.2 parser); after an execution error (-2xx) the next message unit still runs;
* channel lists bounded: a channel number above 999 is -222 before any range is expanded;
* modelled time on the bench's virtual clock: each message costs ``write_s`` (USB-TMC
  transfer and parsing), each reply ``read_s``; ``READ?`` is ready after the scan time
  (channels x (NPLC x 1 PLC + switching) + trigger overhead; 1 PLC = 1/``mains_hz``), times
  the sweeps of ``TRIG:COUN`` (:mod:`simulator.daq_emu` has the trigger model).

The DAQ scans in ascending channel order whatever order the list was written in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator.daq_emu import DAQ970AEmulator
from simulator.scpi_core import ERRORS, PLC_S, ScpiEmulator, ScpiError, VisaTimeout, VisaTiming
from simulator.source_emu import E36312AEmulator, Keithley2450Emulator

EMULATORS: dict[str, Callable[..., ScpiEmulator]] = {
    "DAQ970A": lambda bench, device, prefix, **o: DAQ970AEmulator(bench, device, prefix, model="DAQ970A", **o),
    "34970A": lambda bench, device, prefix, **o: DAQ970AEmulator(bench, device, prefix, model="34970A", **o),
    "E36312A": E36312AEmulator,
    "Keithley2450": Keithley2450Emulator,
}

#: The class each model's emulator is (what a checkpoint's layout names).
EMULATOR_CLASSES: dict[str, type[ScpiEmulator]] = {"DAQ970A": DAQ970AEmulator, "34970A": DAQ970AEmulator,
                                                   "E36312A": E36312AEmulator, "Keithley2450": Keithley2450Emulator}


def make_emulator(model: str, bench: Any, device: str, prefix: str = "", **options: Any) -> ScpiEmulator:
    try:
        factory = EMULATORS[model]
    except KeyError:
        raise ValueError(f"no emulator for instrument model {model!r} (known: {', '.join(EMULATORS)})") from None
    return factory(bench, device, prefix, **options)


__all__ = ["DAQ970AEmulator", "E36312AEmulator", "EMULATORS", "EMULATOR_CLASSES", "ERRORS", "Keithley2450Emulator",
           "PLC_S", "ScpiEmulator", "ScpiError", "VisaTimeout", "VisaTiming", "make_emulator"]
