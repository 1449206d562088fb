"""How a clamped output node is released for the free state: facts and settings, no hardware.

Two ways (the rig file's ``[release]`` table, validated by :mod:`labnet.config.rigfile`):

* ``method = "output_off"`` — the node's source turns its output off. What an off output
  does to its node is the instrument's *off-state*: an E36312A channel that is off is a
  conductance ``1/off_resistance_ohm`` to 0 V (the rig file's per-instrument
  ``off_resistance_ohm``; omitted: the node floats, the simulator's ideal); a Keithley 2450
  in ``off_state = "HIMP"`` opens its output relay (the node floats; the relay operates at
  every release and clamp), ``"NORM"``/``"ZERO"`` hold the node at 0 V.
* ``method = "switch"`` — an analog switch in series between each clamped source and its
  node, driven by the digipot board (``X`` command, ``drivers/PROTOCOL.md``); the source stays
  on behind an open switch. A closed switch is ``r_on_ohm`` in series, an open one leaks
  ``leakage_a`` at ``leakage_test_v`` (modelled as the conductance ``leakage_a / leakage_test_v``).

Switch parts come from their datasheets (:data:`SWITCH_PARTS`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: ``[release] method`` values.
RELEASE_METHODS = ("output_off", "switch")


@dataclass(frozen=True)
class SwitchPart:
    """An analog switch (one SPST channel per clamped node).

    Attributes
    ----------
    name : str
    r_on_ohm : float
        On-resistance (Ω) used by the model (the datasheet's maximum at 25 °C: conservative).
    leakage_a : float
        Off leakage (A) at ``leakage_test_v`` across the open switch (datasheet maximum, 25 °C).
    leakage_test_v : float
        Voltage (V) across the open switch at which ``leakage_a`` is specified.
    t_on_s, t_off_s : float
        Turn-on / turn-off time (s), datasheet maximum: the board waits this long before it
        acknowledges an ``X`` command (the simulator charges it to the virtual clock).
    active_high : bool
        The switch conducts with a logic-1 control input.
    per_package : int
        Switches per package.
    source : str
        Datasheet and table the numbers come from.
    """

    name: str
    r_on_ohm: float
    leakage_a: float
    leakage_test_v: float
    t_on_s: float
    t_off_s: float
    active_high: bool
    per_package: int
    source: str

    @property
    def leak_siemens(self) -> float:
        """Conductance (S) of the open switch."""
        return self.leakage_a / self.leakage_test_v

    @property
    def on_siemens(self) -> float:
        """Conductance (S) of the closed switch."""
        return 1.0 / self.r_on_ohm

    @property
    def settle_s(self) -> float:
        """Longest switching time (s): what one ``X`` command waits."""
        return max(self.t_on_s, self.t_off_s)


#: Analog switches a rig file may name (``[release] switch_part``).
SWITCH_PARTS: Mapping[str, SwitchPart] = MappingProxyType({
    # Analog Devices ADG411/ADG412/ADG413 data sheet Rev. D, Table 2 (single supply VDD = 12 V,
    # VL = 5 V, 25 °C): RON 40 Ω typ / 80 Ω max; IS(OFF) ±0.25 nA max at VD = 12.2 V/1 V,
    # VS = 1 V/12.2 V (11.2 V across); tON 250 ns max, tOFF 125 ns max; Table 3: the ADG412
    # switch is ON with logic 1 (the ADG411, DG411's twin, with logic 0).
    "ADG412": SwitchPart("ADG412", 80.0, 0.25e-9, 11.2, 250e-9, 125e-9, True, 4,
                         "ADG411/ADG412/ADG413 data sheet Rev. D, Table 2 (12 V single supply), Table 3"),
})

#: Keithley 2450 output-off states (``:OUTPut:SMODe``, 2450 Reference Manual 2450-901-01,
#: section 2 "Output-off state" and section 6 ":OUTPut[1]:<function>:SMODe").
SMU_OFF_STATES = ("HIMP", "NORM", "ZERO")
#: Resistance (Ω) to 0 V the simulator gives a 2450 in NORM or ZERO off-state: the manual's
#: "voltage source selected and set to 0 V" — a voltage source, far below any edge.
SMU_ZERO_OFF_OHM = 0.1


@dataclass(frozen=True)
class Release:
    """How the rig releases its clamped nodes, and what every source's off-state is.

    Attributes
    ----------
    method : str
        ``"output_off"`` or ``"switch"``.
    switch_part : SwitchPart or None
        The switch on every switched node (``method = "switch"``).
    switches : mapping node -> int
        Board switch channel of each switched node (the rig's outputs).
    off_ohm : mapping source channel -> float
        Resistance (Ω) to 0 V of each source channel whose output-off state loads its node
        (full channel names, ``"psu1.3"``); channels not named float when off.
    relay_channels : tuple of str
        Source channels whose off-state opens an output relay (Keithley 2450 HIMP): each
        release and clamp by output-off operates the relay.
    """

    method: str = "output_off"
    switch_part: SwitchPart | None = None
    switches: Mapping[str, int] = field(default_factory=dict)
    off_ohm: Mapping[str, float] = field(default_factory=dict)
    relay_channels: tuple[str, ...] = ()

    @property
    def ideal(self) -> bool:
        """True when every release leaves its node floating (today's model): no switch, no
        loading off-state."""
        return not self.switches and not self.off_ohm

    @property
    def n_switches(self) -> int:
        """Switch channels the board needs (highest channel + 1)."""
        return max(self.switches.values()) + 1 if self.switches else 0

    def off_siemens(self, channel: str) -> float:
        """Conductance (S) to 0 V of ``channel`` while its output is off (0: floating)."""
        r = self.off_ohm.get(channel, math.inf)
        return 0.0 if math.isinf(r) else 1.0 / r

    def to_dict(self) -> dict[str, object]:
        return {"method": self.method, "switch_part": None if self.switch_part is None else self.switch_part.name,
                "switches": dict(self.switches), "off_resistance_ohm": dict(self.off_ohm),
                "relay_channels": list(self.relay_channels)}


__all__ = ["RELEASE_METHODS", "SMU_OFF_STATES", "SMU_ZERO_OFF_OHM", "SWITCH_PARTS", "Release", "SwitchPart"]
