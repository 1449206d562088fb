"""Instrument facts: the one catalog that rig-file validation and the drivers both read.

What each supported instrument can do — voltage ranges and maxima, NPLC settings, channel
layout, current limits, serial baud rates. :mod:`labnet.config.rigfile` validates a rig file
against it before anything is opened; the drivers (:mod:`drivers.daq970a`,
:mod:`drivers.sources`) take their own checks from it. The digipot *parts* (resistance,
taps, ratings) are in :mod:`labnet.core.parts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class MeterModel:
    """A scanning voltmeter with multiplexer slots.

    Attributes
    ----------
    name : str
        Model name as a rig file writes it.
    nplc : tuple of float
        Integration times it accepts (power-line cycles).
    ranges_v : tuple of float
        Fixed DC voltage ranges (V).
    slots : int
        Multiplexer slots (1 … slots).
    channels_per_slot : int
        Channels per multiplexer module (01 … channels_per_slot).
    nmr_db : mapping NPLC -> dB
        Normal-mode (line-frequency) rejection at each integration time: Agilent 34970A/34972A
        User's Guide, ch. 7 "Rejecting Power-Line Noise Voltages" (the DAQ970A User's Guide, ch. 4,
        repeats the text): 0 dB at 0.02 and 0.2 PLC, 60 dB at 1, 90 at 2, 95 at 10, 100 at 20,
        105 at 100, 110 dB at 200 PLC.
    bits : mapping NPLC -> bits
        A/D resolution at each integration time (same table): 15 bits at 0.02 PLC, 18 at 0.2, 20
        at 1, 21 at 2, 24 at 10, 25 at 20, 26 at 100 and 200 PLC; taken over the range's span with
        its 20 % overrange, one count is 2.4 · range / 2^bits (:meth:`lsb_v`).
    """

    name: str
    nplc: tuple[float, ...] = (0.02, 0.2, 1.0, 2.0, 10.0, 20.0, 100.0, 200.0)
    ranges_v: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 300.0)
    slots: int = 3
    channels_per_slot: int = 20
    nmr_db: Mapping[float, float] = field(default_factory=lambda: MappingProxyType(
        {0.02: 0.0, 0.2: 0.0, 1.0: 60.0, 2.0: 90.0, 10.0: 95.0, 20.0: 100.0, 100.0: 105.0, 200.0: 110.0}))
    bits: Mapping[float, int] = field(default_factory=lambda: MappingProxyType(
        {0.02: 15, 0.2: 18, 1.0: 20, 2.0: 21, 10.0: 24, 20.0: 25, 100.0: 26, 200.0: 26}))

    def lsb_v(self, nplc: float, range_v: float) -> float:
        """One count (V) at ``nplc`` on the ``range_v`` range (see ``bits``)."""
        return 2.4 * range_v / 2 ** self.bits[nplc]

    def channel_ok(self, channel: str) -> bool:
        """Whether ``channel`` is an ``SCC`` channel name (slot digit, two-digit channel), e.g. ``"101"``."""
        c = str(channel)
        return (len(c) == 3 and c.isdigit() and 1 <= int(c[0]) <= self.slots
                and 1 <= int(c[1:]) <= self.channels_per_slot)

    def channel_hint(self) -> str:
        return f"slot 1-{self.slots}, channel 01-{self.channels_per_slot:02d}, e.g. \"101\""


@dataclass(frozen=True)
class SourceModel:
    """A voltage source (supply or SMU).

    Attributes
    ----------
    name : str
        Model name as a rig file writes it.
    max_v : mapping of channel -> float
        The instrument's own maximum |V| per channel (V); its channel names.
    max_current_limit_a : float
        Largest current limit (compliance) it can be set to (A).
    ranges_v : tuple of float
        Fixed source voltage ranges (V), ascending; empty for a supply without ranges.
    bipolar : bool
        Whether it sources negative voltages too (an SMU); a supply such as the E36312A sources
        0 V and up only, so validation refuses a negative setpoint on its channels.
    ranges_a : tuple of float
        Fixed source *current* ranges (A), ascending, of an instrument that sources current
        (``function = "current"``); empty for one that sources voltage only.
    vlim_v : tuple of float
        (smallest, largest) voltage limit (V) of its current source.
    """

    name: str
    max_v: Mapping[str, float] = field(default_factory=dict)
    max_current_limit_a: float = 1.0
    ranges_v: tuple[float, ...] = ()
    bipolar: bool = False
    ranges_a: tuple[float, ...] = ()
    vlim_v: tuple[float, float] = (0.0, 0.0)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self.max_v)


#: Scanning voltmeters (``[instruments.meter] model``).
METERS: Mapping[str, MeterModel] = MappingProxyType({
    "DAQ970A": MeterModel("DAQ970A"),
    "34970A": MeterModel("34970A"),
})
#: Voltage sources (``[instruments.sources.*] model``): the E36312A triple supply (0-6 V / 5 A,
#: 0-25 V / 1 A, 0-25 V / 1 A: positive outputs only, as drivers.sources.E36312A enforces) and the
#: Keithley 2450 SMU (four-quadrant, ±200 V; it sources current too: Model 2450 Reference Manual
#: 2450-901-01 Rev. B, :SOURce[1]:<function>:RANGe (6-74/6-75) "The fixed current source ranges are
#: 10 nA, 100 nA, 1 µA, 10 µA, 100 µA, 1 mA, 10 mA, 100 mA, and 1 A"; :SOURce[1]:<function>:<x>LIMit
#: (6-71): the current source's voltage limit VLIM, default 21 V, at most 210 V; the smallest, 20 mV,
#: from the 2450 datasheet's voltage-limit accuracy table).
SOURCES: Mapping[str, SourceModel] = MappingProxyType({
    "E36312A": SourceModel("E36312A", MappingProxyType({"1": 6.0, "2": 25.0, "3": 25.0}), 1.0),
    "Keithley2450": SourceModel("Keithley2450", MappingProxyType({"1": 200.0}), 1.05,
                                (0.02, 0.2, 2.0, 20.0, 200.0), bipolar=True,
                                ranges_a=(1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0), vlim_v=(0.02, 210.0)),
})
#: Mains frequencies (Hz) a rig may declare (``[rig] mains_hz``): one power-line cycle, the unit
#: of the meters' NPLC integration time, is 1/mains_hz s.
MAINS_HZ = (50, 60)
#: The mains frequency of a rig that does not say (Hz).
MAINS_HZ_DEFAULT = 60
#: Serial baud rates the digipot board's firmware runs at (``[instruments.board] baud``).
BOARD_BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 250000, 500000, 1000000)
#: The digipot board's default baud rate.
BOARD_BAUD = 115200


__all__ = ["BOARD_BAUD", "BOARD_BAUD_RATES", "MAINS_HZ", "MAINS_HZ_DEFAULT", "METERS", "SOURCES", "MeterModel",
           "SourceModel"]
