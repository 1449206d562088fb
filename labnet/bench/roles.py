"""The three hardware roles a rig is made of, as typing Protocols.

Real drivers (``drivers/``) and the simulator's direct instruments (``simulator/``) implement
these; the engine only ever sees them through :class:`labnet.bench.rig.Rig`. Channels are the
instrument's own names (digipot channel numbers, meter channels like ``"101"``, source
channels like ``"1"``); the rig maps nodes and edges onto them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Digipots(Protocol):
    """A bank of digipot channels that take integer tap codes."""

    def write_codes(self, channels: Sequence[int], codes: Sequence[int]) -> None:
        """Set ``codes[i]`` on ``channels[i]`` (all in as few exchanges as the hardware allows)."""

    def read_codes(self, channels: Sequence[int]) -> np.ndarray:
        """Present codes of ``channels`` (read back where the part can, host-tracked otherwise)."""

    def identity(self) -> dict[str, Any]:
        """What the board reports about itself (model, firmware, serial), for the session header."""

    def close(self) -> None: ...


@runtime_checkable
class Sources(Protocol):
    """Voltage sources on named channels; a channel not being driven has its output off."""

    channels: tuple[str, ...]

    def apply(self, voltages: Mapping[str, float]) -> None:
        """Drive exactly the given channels at the given voltages (V), outputs on; turn every
        other channel's output off."""

    def safe_state(self) -> None:
        """All channels to 0 V and outputs off. Must work even after earlier errors."""

    def identity(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@runtime_checkable
class Switches(Protocol):
    """Analog switches between sources and the nodes they clamp (the digipot board's ``X``
    command): a closed switch connects its node to the source behind it."""

    n_switches: int

    def set_switches(self, closed: Mapping[int, bool]) -> None:
        """Close (True) or open (False) the given switch channels; the others keep their state.
        Returns once the switches have settled."""

    def open_switches(self) -> None:
        """Every switch open (the safe state). Must work even after earlier errors."""


@runtime_checkable
class CurrentSensing(Protocol):
    """Sources that also measure the current they deliver (SMUs, most bench supplies)."""

    def read_currents(self, channels: Sequence[str]) -> np.ndarray:
        """Current (A) delivered by each channel into the network, shape (len(channels),)."""


@runtime_checkable
class Meter(Protocol):
    """A scanning voltmeter: configure a channel list once, read all of it per state."""

    def configure(self, channels: Sequence[str]) -> None:
        """Set the scan list (and integration time) for later ``read`` calls."""

    def read(self) -> np.ndarray:
        """One scan: voltages (V) of the configured channels, in their order."""

    def identity(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """Time as the rig sees it: wall time on a bench, modelled time in the simulator."""

    def now(self) -> float:
        """Seconds since the rig was opened."""

    def sleep(self, seconds: float) -> None: ...


@runtime_checkable
class CurrentSources(Protocol):
    """Current sources on named channels (e.g. a Keithley 2450 sourcing current), each with a
    voltage limit; a channel not being driven has its output off."""

    channels: tuple[str, ...]

    def apply_currents(self, currents: Mapping[str, float], vlim: Mapping[str, float]) -> None:
        """Drive exactly the given channels at the given currents (A) with voltage limits (V, > 0),
        outputs on; turn every other channel's output off."""

    def read_voltages(self, channels: Sequence[str]) -> np.ndarray:
        """Voltage (V) at each channel's terminal, shape (len(channels),)."""

    def tripped(self, channels: Sequence[str]) -> np.ndarray:
        """Whether each channel's voltage limit has tripped (bool, shape (len(channels),))."""

    def safe_state(self) -> None:
        """All channels to 0 A and outputs off. Must work even after earlier errors."""

    def identity(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
