"""Keysight DAQ970A / 34970A scanning voltmeter: the :class:`~labnet.bench.roles.Meter` role.

Configured once (scan list, DC volts on a fixed range, NPLC, auto-zero once, no extra channel
delay — the protocol's ``settle_s`` already waited), then every state is one ``READ?`` that
returns all channels of the scan.

Known state: the configuration starts with ``*RST;*CLS;:TRIG:SOUR IMM;:TRIG:COUN 1`` — the
factory state (trigger source IMMediate, trigger count 1, reading format, scaling and alarms
off, sample count 1) plus the two trigger settings ``READ?`` depends on, stated explicitly.
A meter left by other software in BUS trigger (``READ?`` is a "trigger deadlock"), timer,
external or multi-sweep mode would otherwise hang or return several sweeps per ``READ?``
(Keysight DAQ970A/DAQ973A Programming Guide, TRIGger:SOURce, TRIGger:COUNt).

The instrument scans in ascending channel order whatever order the list was given in;
:meth:`read` returns the readings in the order ``configure`` was given.

Faults: the configuration is verified (error queue drained) and sent again if the queue was not
clean; every ``READ?`` is sent as ``READ?;:SYST:ERR?`` (the error queue checked in the same
exchange, no extra round trip) and taken again after a timeout (device clear and re-sync
first), a garbled or short reply, or an error in the queue — a bounded number of times
(``retries``, see :mod:`drivers.scpi`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from drivers.scpi import ScpiInstrument
from drivers.scpi_params import Choice, Command, Query, Range, floats
from drivers.scpi_text import channel_list, join_commands
from labnet.bench.catalog import MAINS_HZ, MAINS_HZ_DEFAULT, METERS
from labnet.core.errors import InstrumentError

PLC_S = 1 / MAINS_HZ_DEFAULT  # one power-line cycle at the default 60 Hz (s); see DAQ970A.plc_s
_MODEL = METERS["DAQ970A"]  # the 34970A has the same facts (labnet.bench.catalog)
NPLC_CHOICES = tuple(f"{x:g}" for x in _MODEL.nplc)
RANGE_CHOICES = tuple(f"{x:g}" for x in _MODEL.ranges_v)
OVERLOAD = 9.9e37


def _chanlist(name: str, v: Any) -> str:
    if not (isinstance(v, str) and v.startswith("(@") and v.endswith(")")):
        raise ValueError(f"{name}={v!r}: expected a channel list like (@101:110)")
    return v


class DAQ970A(ScpiInstrument):
    """Keysight DAQ970A (or 34970A/34972A) with a 20-channel multiplexer module.

    Parameters
    ----------
    resource : pyvisa-resource-like
    nplc : float
        Integration time in power-line cycles (one of ``METERS["DAQ970A"].nplc``,
        :mod:`labnet.bench.catalog`).
    range_v : float
        Fixed DC range (V), one of ``METERS["DAQ970A"].ranges_v``.
    channel_delay_s : float
        Extra delay after closing each channel (s); 0 because the engine settles first.
    mains_hz : int
        Mains frequency of the bench (50 or 60 Hz): one PLC is 1/mains_hz s (the rig's
        ``[rig] mains_hz``); only the timing floor and the reply timeout depend on it.
    """

    models: tuple[str, ...] = ("DAQ970A", "DAQ973A", "34970A", "34972A")
    fatal_errors = {-214: "the trigger source was changed to BUS since configure(): READ? cannot trigger a scan "
                          "(a trigger deadlock, DAQ970A Programming Guide, TRIGger:SOURce); configure() sets TRIG:SOUR IMM"}

    conf_volt_dc = Command("CONF:VOLT:DC {range_v},{chanlist}", "DC volts on a fixed range (V).",
                           range_v=Choice(*RANGE_CHOICES), chanlist=_chanlist)
    set_nplc = Command("VOLT:DC:NPLC {nplc},{chanlist}", "Integration time (power-line cycles).",
                       nplc=Choice(*NPLC_CHOICES), chanlist=_chanlist)
    set_autozero = Command("ZERO:AUTO {mode},{chanlist}", "Auto-zero: OFF, ONCE or ON.",
                           mode=Choice("OFF", "ONCE", "ON"), chanlist=_chanlist)
    set_channel_delay = Command("ROUT:CHAN:DEL {delay_s:g},{chanlist}", "Delay after closing a channel (s).",
                                delay_s=Range(0.0, 60.0), chanlist=_chanlist)
    set_scan = Command("ROUT:SCAN {chanlist}", "The scan list.", chanlist=_chanlist)
    read_scan = Query("READ?", floats, "Trigger one scan and return every reading (V).")
    trigger_source = Command("TRIG:SOUR {source}", "Trigger source of a sweep.",
                             source=Choice("IMM", "BUS", "EXT", "TIM"))
    trigger_count = Command("TRIG:COUN {count}", "Sweeps per READ?.", count=Choice("1"))

    def __init__(self, resource: Any, nplc: float = 1.0, range_v: float = 10.0, channel_delay_s: float = 0.0,
                 label: str = "meter", timeout_s: float = 10.0, mains_hz: int = MAINS_HZ_DEFAULT,
                 **retry: Any) -> None:
        if isinstance(mains_hz, bool) or mains_hz not in MAINS_HZ:
            raise ValueError(f"mains_hz={mains_hz!r}: expected one of {', '.join(map(str, MAINS_HZ))}")
        Choice(*NPLC_CHOICES)("nplc", f"{nplc:g}")
        Choice(*RANGE_CHOICES)("range_v", f"{range_v:g}")
        Range(0.0, 60.0)("channel_delay_s", channel_delay_s)
        super().__init__(resource, label, timeout_s, **retry)
        self.nplc = float(nplc)
        self.range_v = float(range_v)
        self.channel_delay_s = float(channel_delay_s)
        self.mains_hz = int(mains_hz)
        #: One power-line cycle (s).
        self.plc_s = 1.0 / self.mains_hz
        self._order: list[int] = []
        self._in_order = False
        self._channels: list[str] = []

    def configure(self, channels: Sequence[str]) -> None:
        """Set up the scan list once; raises before sending if a channel is not ``SCC``
        (slot 1-3, channel 01-20) or appears twice."""
        chans = [str(c) for c in channels]
        if not chans:
            raise ValueError("meter: empty channel list")
        for c in chans:
            if not _MODEL.channel_ok(c):
                raise ValueError(f"meter channel {c!r}: expected {_MODEL.channel_hint()}")
        if len(set(chans)) != len(chans):
            raise ValueError(f"meter channels repeated: {chans}")
        if not self.idn_info:
            self.idn()
        lst = channel_list(chans)

        known = join_commands(["*RST", "*CLS", type(self).trigger_source.format(source="IMM"),
                               type(self).trigger_count.format(count="1")])

        def steps() -> None:
            self.write(known)
            self.conf_volt_dc(range_v=f"{self.range_v:g}", chanlist=lst)
            self.set_nplc(nplc=f"{self.nplc:g}", chanlist=lst)
            self.set_autozero(mode="ONCE", chanlist=lst)
            self.set_channel_delay(delay_s=self.channel_delay_s, chanlist=lst)
            self.set_scan(chanlist=lst)

        self.configure_verified("configuring the scan", steps)
        scan_order = sorted(chans, key=int)
        self._order = [scan_order.index(c) for c in chans]
        self._in_order = self._order == list(range(len(chans)))
        self._channels = chans
        # a long scan must not look like a dead instrument: wait at least twice its integration time
        need = 2 * self.scan_time_s() + 1.0
        if need > self.timeout_s:
            self.timeout_s = need
            self.resource.timeout = need * 1000.0

    def read(self) -> np.ndarray:
        """One scan: voltages (V) of the configured channels in configure order."""
        if not self._channels:
            raise InstrumentError(f"{self.label}: read() before configure()")
        n = len(self._channels)

        def parse(reply: str) -> list[float]:
            vals = floats(reply)
            if len(vals) != n:
                raise ValueError(f"READ? returned {len(vals)} readings for {n} channels")
            return vals

        vals = self.ask_checked("READ?", parse)
        arr = np.array(vals if self._in_order else [vals[i] for i in self._order], dtype=float)
        if any(map(OVERLOAD.__le__, map(abs, vals))):  # |x| >= OVERLOAD for some reading
            bad = [self._channels[i] for i in np.flatnonzero(np.abs(arr) >= OVERLOAD)]
            raise InstrumentError(f"{self.label}: overload on channel(s) {', '.join(bad)} (range {self.range_v:g} V)")
        return arr

    def integration(self, nplc: float) -> None:
        """Change the integration time of the configured scan list (``VOLT:DC:NPLC``), e.g. between
        states; raises before sending if ``nplc`` is not one of the meter's values."""
        Choice(*NPLC_CHOICES)("nplc", f"{nplc:g}")
        if not self._channels:
            raise InstrumentError(f"{self.label}: integration() before configure()")
        if float(nplc) == self.nplc:
            return
        self.set_nplc(nplc=f"{nplc:g}", chanlist=channel_list(self._channels))
        self.nplc = float(nplc)

    def scan_time_s(self) -> float:
        """Integration time of one scan (s): channels x NPLC x 1 PLC (1/mains_hz) — the floor of ``read``."""
        return len(self._channels) * self.nplc * self.plc_s

    def identity(self) -> dict[str, Any]:
        return {**self.idn_info, "nplc": self.nplc, "range_v": self.range_v, "mains_hz": self.mains_hz}


class Keysight34970A(DAQ970A):
    """The older 34970A/34972A: same commands for this subset."""

    models = ("34970A", "34972A")
