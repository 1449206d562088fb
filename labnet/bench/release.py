"""Releasing clamped nodes through analog switches: the rig's side of ``[release] method = "switch"``.

With switches, a clamped node's source stays on behind its switch: a clamp sets the source's
level and then closes the switch; a release opens the switch and leaves the source at its
last level (no output-off, so no output relay operates and no off-state loads the node). The
safe state opens every switch before the sources go to 0 V and off.

:class:`SwitchRelease` is used by :class:`labnet.bench.rig.Rig`; a rig without switches
releases by output-off (the source's ``apply`` turns every undriven channel off).
"""

from __future__ import annotations

from collections.abc import Mapping

from labnet.bench.roles import Switches


class SwitchRelease:
    """The switch channel of each switched node, and the last level of the source behind it.

    Parameters
    ----------
    switches : Switches
        The board's switch role.
    channels : mapping node -> int
        Switch channel of each switched node.
    """

    def __init__(self, switches: Switches, channels: Mapping[str, int]) -> None:
        self.switches = switches
        self.channels = dict(channels)
        self._levels: dict[str, float] = {}  # node -> V its source holds behind the switch

    def open_released(self, held: Mapping[str, float]) -> None:
        """Before the sources change: open the switch of every switched node not in ``held``."""
        opening = {self.channels[n]: False for n in self.channels if n not in held}
        if opening:
            self.switches.set_switches(opening)

    def source_pattern(self, held: Mapping[str, float]) -> dict[str, float]:
        """What the sources drive (node -> V): ``held``, plus each released switched node's
        source at its last level (behind its open switch)."""
        out = dict(held)
        for n, v in self._levels.items():
            out.setdefault(n, v)
        return out

    def close_held(self, held: Mapping[str, float]) -> None:
        """After the sources are at their levels: close the switch of every switched node in ``held``."""
        closing = {self.channels[n]: True for n in self.channels if n in held}
        if closing:
            self.switches.set_switches(closing)
        for n in self.channels:
            if n in held:
                self._levels[n] = float(held[n])

    def open_all(self) -> None:
        """Every switch open; the sources behind them are no longer assumed on."""
        self._levels = {}
        self.switches.open_switches()


__all__ = ["SwitchRelease"]
