"""The emulated MCU wired to the breadboard model: wipers drive the physical model.

:class:`McuBoard` owns an :class:`~simulator.mcu.harness.McuProcess` for a
:class:`~simulator.breadboard.Breadboard` and, at every :meth:`McuBoard.sync` (the serial
port calls it after each read), applies the part models' wiper positions to the model,
charges the modelled clock and turns a datasheet violation into an error.

Modelled time: the MCU cycles simulated since the last sync (bytes at the baud rate both
ways, command execution; simavr 1.6 takes 100 us per SPI byte whatever the clock divider),
plus the USB-serial latency per reply line, plus ``boot_s`` per reset (the Uno bootloader's
wait, which is not simulated: the harness loads the application directly).
"""

from __future__ import annotations

from typing import Any

from labnet.core.errors import InstrumentError
from simulator.mcu.build import FirmwareBuild, build_firmware
from simulator.mcu.harness import F_CPU, McuProcess, TimingCheck


class PartViolation(InstrumentError):
    """A part model found the firmware outside its datasheet (timing minimum, command format)."""


def family_for(part: Any) -> str:
    """The firmware family of a :class:`~labnet.core.parts.PartSpec` (up/down -> X9C, SPI -> MCP41)."""
    if getattr(part, "interface", "") == "updown":
        return "X9C"
    return "MCP42" if str(getattr(part, "name", "")).upper().startswith("MCP42") else "MCP41"


class McuBoard:
    """The firmware binary on the emulated MCU, driving a breadboard model.

    Parameters
    ----------
    model : Breadboard
    family : str, optional
        ``"X9C"``, ``"MCP41"``, ``"MCP42"`` (default from the model's part).
    channels : int
        Channels the firmware is built for (default 16).
    usb_rtt_s, boot_s : float
        USB-serial latency per reply line and bootloader wait per reset (s, modelled).
    strict : bool
        Raise :class:`PartViolation` at the first datasheet violation (default).
    """

    def __init__(self, model: Any, family: str | None = None, channels: int = 16, usb_rtt_s: float = 1e-3,
                 boot_s: float = 1.6, strict: bool = True, firmware: FirmwareBuild | None = None) -> None:
        part = model.part
        self.model = model
        self.clock = model.clock
        fam = family or family_for(part)
        release = getattr(model, "release", None)
        n_sw = release.n_switches if release is not None else 0
        self.firmware = firmware or build_firmware(fam, channels, part.max_code, part.power_up_code, switches=n_sw)
        self._switch_node = {k: n for n, k in release.switches.items()} if release is not None else {}
        self.mcu = McuProcess(self.firmware)
        self.usb_rtt_s = usb_rtt_s
        self.boot_s = boot_s
        self.strict = strict
        self._edge = {int(ch): i for i, ch in enumerate(model.network.edge_channels)}
        self._cycles = 0
        self.lines = 0
        self.stores: list[tuple[int, int]] = []
        self._seen_errors = 0
        self.sync(0)

    @property
    def pty(self) -> str:
        return self.mcu.pty

    def sync(self, lines: int, waited_s: float = 0.0) -> None:
        """After a read: apply the events, charge ``lines`` reply latencies + the MCU time +
        ``waited_s`` (a read that timed out), raise on a new violation."""
        events = self.mcu.barrier()
        for ev in events:
            if ev.kind == "WIPER":
                ch, code = int(ev.fields[0]), int(ev.fields[1])
                e = self._edge.get(ch)
                if e is not None:
                    self.model.set_code(e, code)
            elif ev.kind == "SWITCH":  # an analog switch's control pin changed (switches.c)
                node = self._switch_node.get(int(ev.fields[0]))
                if node is not None:
                    self.model.set_switches({node: ev.fields[1] == "1"})
            elif ev.kind == "STORE":
                self.stores.append((int(ev.fields[0]), int(ev.fields[1])))
            elif ev.kind == "RESET":
                self.clock.charge(self.boot_s)
        self.clock.charge((self.mcu.cycles - self._cycles) / F_CPU + lines * self.usb_rtt_s + waited_s)
        self._cycles = self.mcu.cycles
        self.lines += lines
        if self.strict and len(self.mcu.errors) > self._seen_errors:
            new = self.mcu.errors[self._seen_errors:]
            self._seen_errors = len(self.mcu.errors)
            raise PartViolation("digipot part model: the firmware violates the datasheet: " + "; ".join(new[:3])
                                + (f" (+{len(new) - 3} more)" if len(new) > 3 else ""))

    def timing_checks(self) -> list[TimingCheck]:
        return self.mcu.timing_checks()

    def describe(self) -> dict[str, Any]:
        return self.mcu.describe()

    def close(self) -> None:
        self.mcu.close()
