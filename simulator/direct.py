"""Simulated instruments that skip the wire: role implementations called directly on the model.

For large in-silico studies and fast tests. They share the one physical model
(:class:`~simulator.breadboard.Breadboard`) with the emulated transports, and charge the
virtual clock roughly what the bench would take.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from simulator.breadboard import Breadboard

PLC_S = 1 / 60


class DirectDigipots:
    """Digipots role: channel numbers are mapped to edges through the network's wiring."""

    def __init__(self, board: Breadboard, write_s: float = 1e-3) -> None:
        self.board = board
        self.write_s = write_s
        self._edge_of_channel = {ch: i for i, ch in enumerate(board.network.edge_channels)}

    def _edges(self, channels: Sequence[int]) -> list[int]:
        return [self._edge_of_channel[int(c)] for c in channels]

    def write_codes(self, channels: Sequence[int], codes: Sequence[int]) -> None:
        self.board.set_codes(self._edges(channels), codes)
        self.board.clock.charge(self.write_s)

    def read_codes(self, channels: Sequence[int]) -> np.ndarray:
        return self.board.codes[self._edges(channels)].copy()

    def identity(self) -> dict[str, Any]:
        return {"model": "simulated digipot bank (direct)", "part": self.board.part.name}

    def close(self) -> None:
        pass


class DirectSources:
    """Sources role on the model; also measures delivered current like an SMU."""

    def __init__(self, board: Breadboard, switch_s: float = 5e-3) -> None:
        self.board = board
        self.switch_s = switch_s
        self.channels = tuple(sorted(board.network.source_channels.values()))

    def apply(self, voltages: Mapping[str, float]) -> None:
        self.board.drive(voltages)
        self.board.clock.charge(self.switch_s)

    def safe_state(self) -> None:
        self.board.drive({})

    def read_currents(self, channels: Sequence[str]) -> np.ndarray:
        return self.board.source_currents(channels)

    def identity(self) -> dict[str, Any]:
        return {"model": "simulated sources (direct)", "channels": list(self.channels)}

    def close(self) -> None:
        self.board.drive({})


class DirectSwitches:
    """Switches role on the model: switch channel k is the switch of the node the rig's
    release names for it; each change charges the switch part's switching time."""

    def __init__(self, board: Breadboard) -> None:
        self.board = board
        self._node = {k: n for n, k in board.release.switches.items()}
        self.n_switches = board.release.n_switches

    def set_switches(self, closed: Mapping[int, bool]) -> None:
        self.board.set_switches({self._node[int(k)]: bool(c) for k, c in closed.items()})
        part = self.board.release.switch_part
        if part is not None:
            self.board.clock.charge(part.settle_s)

    def open_switches(self) -> None:
        self.board.reset_switches()


class DirectMeter:
    """Meter role on the model: one scan of the configured channels per ``read``."""

    def __init__(self, board: Breadboard, nplc: float = 1.0, switch_s: float = 1e-3, mains_hz: float = 60.0) -> None:
        self.board = board
        self.nplc = nplc
        self.plc_s = 1.0 / mains_hz  # one power-line cycle (s)
        self.switch_s = switch_s
        self._channels: list[str] = []

    def configure(self, channels: Sequence[str]) -> None:
        for ch in channels:
            self.board.node_of_meter(ch)
        self._channels = list(channels)

    def read(self) -> np.ndarray:
        out = self.board.meter_read(self._channels, self.nplc)
        self.board.clock.charge(len(self._channels) * (self.nplc * self.plc_s + self.switch_s))
        return out

    def identity(self) -> dict[str, Any]:
        return {"model": "simulated scanning meter (direct)", "nplc": self.nplc}

    def close(self) -> None:
        pass
