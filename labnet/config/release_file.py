"""The rig file's release keys: how clamped output nodes are released, and each source's off-state.

::

    [release]                   # optional; default: method = "output_off"
    method = "switch"           # "output_off": the source's output-off releases its node;
                                # "switch": an analog switch per switched node, driven by the
                                # digipot board (drivers/PROTOCOL.md, command X)
    switch_part = "ADG412"      # labnet.core.release.SWITCH_PARTS (method = "switch")
    switch_channels = { n3 = 0, n4 = 1 }   # node -> board switch channel (method = "switch")

    [instruments.sources.psu1]
    off_resistance_ohm = 10.0   # E36312A: resistance of its output-off state to 0 V; omitted:
                                # the node floats (the simulator's ideal)
    [instruments.sources.smu]
    off_state = "HIMP"          # Keithley2450: :OUTP:SMOD HIMP (relay opens, the default), NORM, ZERO

Validation touches no instrument. A switch per node needs a free board pin: the firmware puts
switch k on the chip-select pin slot after the digipots' (``drivers/firmware/README.md``), so
the digipot chips plus the switches must fit the family's slots (:data:`BOARD_PIN_SLOTS`).
Releasing an output by a Keithley 2450 in HIMP opens its output relay at every release: the
2450 Reference Manual warns against switching it often, so the rig's ``warnings`` say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labnet.config.schema import Table
from labnet.core.network import Network
from labnet.core.parts import PartSpec
from labnet.core.release import RELEASE_METHODS, SMU_OFF_STATES, SMU_ZERO_OFF_OHM, SWITCH_PARTS, Release

#: Chip-select pin slots of the firmware per family (README pin table): digipot chips + switches.
BOARD_PIN_SLOTS = {"X9C": 16, "MCP41": 14, "MCP42": 14}
#: Largest number of switch channels (one byte of the X command).
MAX_SWITCHES = 8


def board_family(part: PartSpec) -> str | None:
    """The firmware family that drives ``part`` (None: no firmware build for it)."""
    if part.interface == "updown":
        return "X9C"
    if part.interface == "spi":
        return "MCP42" if part.name.upper().startswith("MCP42") else "MCP41"
    return None


def source_off_keys(s: Table, model: str) -> dict[str, Any]:
    """The off-state keys of one ``[instruments.sources.<name>]`` table (its model already read)."""
    out: dict[str, Any] = {}
    if model == "Keithley2450":
        if s.has("off_resistance_ohm"):
            raise s.error("off_resistance_ohm", "not for a Keithley2450: its off-state is set by off_state "
                                                f"({', '.join(SMU_OFF_STATES)})")
        out["off_state"] = s.str("off_state", "HIMP", choices=SMU_OFF_STATES)
    else:
        if s.has("off_state"):
            raise s.error("off_state", f"only for a Keithley2450 (a {model}'s off-state is off_resistance_ohm)")
        if s.has("off_resistance_ohm"):
            out["off_resistance_ohm"] = s.float("off_resistance_ohm", lo=0.0, lo_open=True, hi=1e12)
        else:  # for the key reference (labnet.config.keyref)
            s.declare("off_resistance_ohm", "number", "(none: the node floats when off)")
    return out


def load_release(top: Table, network: Network, part: PartSpec, sources: Mapping[str, Any] | None,
                 warnings: list[str]) -> Release:
    """The validated ``[release]`` table and the sources' off-states (``sources``: prefix ->
    VisaSpec, None for a rig without instruments); warnings are appended to ``warnings``."""
    t = top.table("release", required=False)
    method = t.str("method", "output_off", choices=RELEASE_METHODS)
    switch_part, switches = None, {}
    if method == "switch":
        name = t.str("switch_part", choices=sorted(SWITCH_PARTS))
        switch_part = SWITCH_PARTS[name]
        ch = t.table("switch_channels")
        if not ch.data:
            raise t.error("switch_channels", "expected at least one node = channel")
        for node in ch.data:
            if node not in network.source_channels:
                raise ch.error(node, f"not a node with a source channel (nodes: {sorted(network.source_channels)})")
            switches[node] = ch.int(node, lo=0, hi=MAX_SWITCHES - 1)
        ch.finish()
        if len(set(switches.values())) != len(switches):
            raise t.error("switch_channels", f"a switch channel is used twice: {switches}")
        missing = [n for n in network.outputs if n not in switches]
        if missing:
            raise t.error("switch_channels", f"every output needs a switch; missing {missing}")
        family = board_family(part)
        if family is not None:
            n_ch = max(network.edge_channels) + 1
            chips = (n_ch + 1) // 2 if family == "MCP42" else n_ch
            need = chips + max(switches.values()) + 1
            if need > BOARD_PIN_SLOTS[family]:
                raise t.error("switch_channels", f"{chips} {family} chips and {max(switches.values()) + 1} switches "
                              f"need {need} chip-select pins; the board has {BOARD_PIN_SLOTS[family]} "
                              f"(drivers/firmware/README.md: fewer digipot channels, or MCP42 parts: two a chip)")
    else:
        for key in ("switch_part", "switch_channels"):
            if t.has(key):
                raise t.error(key, 'only with method = "switch"')
    t.finish()
    off_ohm: dict[str, float] = {}
    relay: list[str] = []
    for node, full in network.source_channels.items():
        prefix = full.partition(".")[0]
        opts = (sources or {}).get(prefix)
        if opts is None:
            continue
        o = opts.options
        if "off_resistance_ohm" in o:
            off_ohm[full] = float(o["off_resistance_ohm"])
        elif o.get("off_state") in ("NORM", "ZERO"):
            off_ohm[full] = SMU_ZERO_OFF_OHM
        elif o.get("off_state") == "HIMP":
            relay.append(full)
            if node in network.outputs and node not in switches:
                warnings.append(
                    f"{top.file}: network.outputs: {node} is released by the output-off of a Keithley2450 in HIMP "
                    "off-state: its output relay opens and closes at every training step (2450 Reference Manual, "
                    "'High-impedance output-off state': do not use it for tests that turn the output off and on "
                    "frequently); release it by an analog switch ([release] method = \"switch\")")
    return Release(method, switch_part, switches, off_ohm, tuple(relay))


__all__ = ["BOARD_PIN_SLOTS", "MAX_SWITCHES", "board_family", "load_release", "source_off_keys"]
