"""Rig files: load and validate ``protocols/rigs/*.toml`` into a :class:`RigSpec`.

Validation (:func:`load_rig`) touches no instrument and imports neither drivers nor the
simulator: instrument facts come from :mod:`labnet.bench.catalog`, the ``[simulator]`` table's
keys from :class:`labnet.core.nonideal.SimSettings`. Building a rig from the spec is
:func:`labnet.app.build.build_rig`.

Names: node names (``network.nodes``) and channel names (the values of
``network.meter_channels`` / ``network.source_channels``) become CSV column names and session
keys, so they are restricted to letters, digits, ``_``, ``.`` and ``-`` (``[A-Za-z0-9_.-]``),
1 to 64 characters (:data:`labnet.core.network.NAME_CHARS`, ``NAME_MAX_LEN``); a comma, quote,
space, newline, NUL or empty name is a one-line ConfigError naming the file and key.

A rig file::

    [rig]
    name = "sim16"
    kind = "simulator"          # "simulator" (emulated instruments) or "bench" (real ones);
                                # derived from the addresses when omitted
    transport = "wire"          # "wire": real drivers over (emulated) transports (default when
                                # [instruments] is given); "direct": the model without a wire
    mains_hz = 60               # optional: the bench's mains frequency, 50 or 60 (Hz; default
                                # 60). One power-line cycle (1/mains_hz s) is the unit of the
                                # meter's NPLC: its integration time, the timing floor and the
                                # simulator's modelled time all use it.

    [network]                   # labnet.Network.from_dict
    nodes = [...]
    edges = [[a, b], ...]
    ground = "n0"
    inputs = [...]
    outputs = [...]
    edge_channels = [...]       # digipot channel of each edge
    meter_channels = {node = "101", ...}
    source_channels = {node = "psu1.1", ...}

    [parts]
    model = "X9C103"
    initial_code = 49

    [limits]
    max_source_v = 1.0
    max_edge_current_a = 1e-3
    code_min = 10
    code_max = 99
    source_max_v = {"psu1.1" = 1.0}

    [simulator]                 # labnet.core.nonideal.SimSettings
    seed = 16
    ...

    [simulator.wiring]          # optional wiring faults (labnet.config.wiring_file), e.g.
    open_edges = [3]            # for testing `labnet doctor`

    [instruments.board]         # the digipot board (drivers.digipot)
    address = "sim://sim16"     # pyserial port or URL: "/dev/ttyUSB0", "COM3", "sim://<bench>"
                                # or "simavr://<bench>" (the firmware binary in simavr)
    baud = 115200
    timeout_s = 0.5             # optional: reply timeout (s)
    retries = 4                 # optional: retransmissions per request

    [instruments.meter]         # scanning voltmeter (drivers.daq970a)
    model = "DAQ970A"           # DAQ970A | 34970A
    address = "TCPIP0::sim16::daq::INSTR@sim"   # VISA resource name; "@sim": the simulator
    nplc = 1.0                  # backend, "@py": pyvisa-py, none: the system VISA library
    range_v = 10.0              # optional
    retries = 3                 # optional: repetitions of a timed-out, garbled or erroring READ?
                                # (or configuration) before the run stops

    [instruments.sources.psu1]  # channel "psu1.2" is channel 2 of this instrument
    model = "E36312A"           # E36312A | Keithley2450
    address = "USB0::0x2A8D::0x1102::MY59001234::INSTR"
    current_limit_a = 0.01
    retries = 3                 # optional: repetitions of an unverified setpoint (error in the
                                # queue, timeout, garbled reply) before the run stops
    off_resistance_ohm = 10.0   # optional (E36312A): its output-off state's resistance to 0 V
                                # (omitted: the node floats); Keithley2450: off_state = "HIMP"
                                # (default), "NORM" or "ZERO"

    [release]                   # optional: method = "output_off" (default) or "switch" with
                                # switch_part and switch_channels (labnet.config.release_file)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from labnet.bench.catalog import BOARD_BAUD, BOARD_BAUD_RATES, MAINS_HZ, MAINS_HZ_DEFAULT, METERS, SOURCES
from labnet.bench.rig import Limits
from labnet.config.current_file import check_current_channels, current_keys
from labnet.config.meter_range import check_meter_range
from labnet.config.release_file import load_release, source_off_keys
from labnet.config.response_file import response_keys
from labnet.config.schema import Table, read_toml
from labnet.config.wiring_file import load_wiring
from labnet.core.errors import ConfigError
from labnet.core.network import NETWORK_KEYS, Network, check_name
from labnet.core.nonideal import SimSettings, sim_ranges
from labnet.core.parts import PartSpec, get_part
from labnet.core.release import Release

log = logging.getLogger("labnet.config.rigfile")

RIG_KINDS = ("simulator", "bench")
RIG_TRANSPORTS = ("wire", "direct")
#: ``[simulator]`` keys renamed so their unit is unambiguous (old -> new; ``_k`` read as a conductance).
RENAMED_SIM_KEYS = {"drift_k": "drift_kelvin"}
#: Default and largest ``retries`` of a SCPI instrument (``[instruments.meter]``, ``[instruments.sources.*]``).
SCPI_RETRIES, SCPI_RETRIES_MAX = 3, 20
#: Defaults of ``[instruments.board]``: reply timeout (s) and retransmissions per request.
BOARD_TIMEOUT_S, BOARD_RETRIES = 0.5, 4
#: Defaults of ``[instruments.meter]`` (NPLC, fixed range in V) and of a source's ``current_limit_a`` (A).
METER_NPLC, METER_RANGE_V, SOURCE_CURRENT_LIMIT_A = 1.0, 10.0, 0.01


@dataclass(frozen=True)
class BoardSpec:
    """``[instruments.board]``: the digipot board's serial port."""

    address: str
    baud: int
    timeout_s: float
    retries: int

    @property
    def simulated(self) -> bool:
        return self.address.startswith(("sim://", "simavr://"))  # simavr://: the firmware in an emulated MCU


@dataclass(frozen=True)
class VisaSpec:
    """A SCPI instrument: model, VISA address (``resource[@backend]``) and options."""

    model: str
    address: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def resource(self) -> str:
        return self.address.rsplit("@", 1)[0] if "@" in self.address else self.address

    @property
    def backend(self) -> str:
        return self.address.rsplit("@", 1)[1] if "@" in self.address else ""

    @property
    def simulated(self) -> bool:
        return self.backend == "sim"


@dataclass(frozen=True)
class InstrumentsSpec:
    """The validated ``[instruments]`` table."""

    board: BoardSpec
    meter: VisaSpec
    sources: dict[str, VisaSpec]

    def simulated(self) -> list[bool]:
        return [self.board.simulated, self.meter.simulated, *(s.simulated for s in self.sources.values())]


@dataclass
class RigSpec:
    """A validated rig file."""

    path: Path
    name: str
    kind: str
    network: Network
    part: PartSpec
    limits: Limits
    initial_code: int | None
    sim: dict[str, Any] = field(default_factory=dict)
    instruments: InstrumentsSpec | None = None
    text: str = ""
    transport: str = "direct"
    #: how clamped outputs are released and each source's off-state (``[release]``, labnet.config.release_file)
    release: Release = field(default_factory=Release)
    #: things validation found worth saying that are not errors (one line each, naming the file and key)
    warnings: list[str] = field(default_factory=list)
    mains_hz: int = MAINS_HZ_DEFAULT

    @property
    def simulated(self) -> bool:
        return self.kind == "simulator"

    def unipolar_source(self, channel: str) -> str | None:
        """The model of the source instrument behind ``channel`` if it sources 0 V and up only
        (a negative setpoint there is refused before the run), else None (bipolar, or no wire)."""
        if self.instruments is None:
            return None
        prefix = channel.partition(".")[0]
        src = self.instruments.sources.get(prefix)
        if src is None or SOURCES[src.model].bipolar:
            return None
        return src.model


def load_rig(path: str | Path) -> RigSpec:
    """Read and validate a rig file; raise ConfigError naming file and key on any problem."""
    p = Path(path)
    data = read_toml(p)
    f = str(p)
    top = Table(data, f)
    rig = top.table("rig")
    name = rig.str("name", p.stem)
    if rig.has("name"):
        check_name(name, f, "rig.name", "rig name")
    kind_given = rig.has("kind")
    kind = rig.str("kind", "simulator", choices=RIG_KINDS)
    transport = rig.str("transport", "wire" if top.has("instruments") else "direct", choices=RIG_TRANSPORTS)
    rig.declare("mains_hz", "integer", MAINS_HZ_DEFAULT, choices=tuple(map(str, MAINS_HZ)))  # the reference's choices
    mains_hz = rig.int("mains_hz", MAINS_HZ_DEFAULT)
    if mains_hz not in MAINS_HZ:
        raise rig.error("mains_hz", f"expected one of {list(MAINS_HZ)} (Hz), got {mains_hz}")
    rig.finish()
    raw_network = top.raw("network")
    if isinstance(raw_network, Mapping):  # for the key reference (labnet.config.keyref)
        declared = Table(raw_network, f, "network")
        for key_name, (key_kind, dflt) in NETWORK_KEYS.items():
            if dflt == "required":
                declared.declare(key_name, key_kind)
            else:
                declared.declare(key_name, key_kind, dflt)
    network = Network.from_dict(raw_network, file=f, key="network")
    parts = top.table("parts")
    part = get_part(parts.str("model"), f, "parts.model")
    initial = parts.raw("initial_code", None)
    if initial is not None:
        initial = parts.int("initial_code", lo=0, hi=part.max_code)
    parts.finish()
    lim = top.table("limits")
    max_v = lim.float("max_source_v", lo=0.0, hi=100.0, lo_open=True)
    max_i = lim.float("max_edge_current_a", part.max_current_a, lo=0.0, hi=1.0, lo_open=True)
    if max_i > part.max_current_a:
        raise lim.error("max_edge_current_a", f"{max_i} A exceeds the {part.name} rating of {part.max_current_a} A")
    code_min = lim.int("code_min", 0, lo=0, hi=part.max_code)
    code_max = lim.int("code_max", part.max_code, lo=0, hi=part.max_code)
    if code_min >= code_max:
        raise lim.error("code_max", f"expected code_max > code_min ({code_min}), got {code_max}")
    per = lim.table("source_max_v", required=False)
    source_max = {}
    for ch in per.data:
        if ch not in network.source_channels.values():
            raise per.error(ch, f"unknown source channel (channels: {sorted(network.source_channels.values())})")
        source_max[ch] = per.float(ch, lo=0.0, hi=max_v)
    lim.finish()
    if initial is not None and not code_min <= initial <= code_max:
        raise ConfigError(f, "parts.initial_code", f"expected a code within limits {code_min}..{code_max}, got {initial}")
    sim: dict[str, Any] = {}
    if top.has("simulator"):
        sim = _sim_settings(top.table("simulator"), network, part)
    elif kind == "simulator":
        sim = {}
    instruments = None
    if top.has("instruments"):
        instruments = _instruments(top.table("instruments"), network, Limits(max_v, max_i, code_min, code_max, source_max))
        sims = instruments.simulated()
        if any(sims) and not all(sims):
            raise ConfigError(f, "instruments", "mixes simulated addresses (sim://, @sim) with real ones")
        derived = "simulator" if all(sims) else "bench"
        if not kind_given:
            kind = derived
        elif kind != derived:
            raise ConfigError(f, "rig.kind", f"kind {kind!r} but the instrument addresses are "
                              f"{'simulated' if derived == 'simulator' else 'real'}")
    if network.current_channels and (instruments is None or transport == "direct"):
        raise ConfigError(f, "network.current_channels", "current inputs need the instruments (a Keithley2450 "
                          'table with function = "current"; rig.transport = "wire")')
    if transport == "wire" and instruments is None:
        raise ConfigError(f, "instruments", "missing required table (rig.transport = \"wire\" needs the instrument addresses)")
    if transport == "direct" and kind != "simulator":
        raise ConfigError(f, "rig.transport", "\"direct\" (no wire) exists only for simulated rigs")
    if kind == "simulator" and not top.has("simulator") and transport == "wire":
        raise ConfigError(f, "simulator", "missing required table (simulated instruments need the breadboard model)")
    warnings: list[str] = []
    release = load_release(top, network, part, None if instruments is None else instruments.sources, warnings)
    top.finish()
    for w in warnings:
        log.warning("%s", w)
    return RigSpec(
        path=p,
        name=name,
        kind=kind,
        network=network,
        part=part,
        limits=Limits(max_v, max_i, code_min, code_max, source_max),
        initial_code=initial,
        sim=sim,
        instruments=instruments,
        text=p.read_text(encoding="utf-8"),
        transport=transport,
        release=release,
        warnings=warnings,
        mains_hz=mains_hz,
    )


def _address(t: Table, name: str = "address") -> str:
    a = t.str(name)
    if not a.strip() or a != a.strip():
        raise t.error(name, f"expected a non-empty address without surrounding spaces, got {a!r}")
    return a


def _instruments(t: Table, network: Network, limits: Limits) -> InstrumentsSpec:
    """Validate ``[instruments]`` against the network's channels and the limits."""
    b = t.table("board")
    board = BoardSpec(
        address=_address(b),
        baud=b.int("baud", BOARD_BAUD),
        timeout_s=b.float("timeout_s", BOARD_TIMEOUT_S, lo=0.01, hi=60.0),
        retries=b.int("retries", BOARD_RETRIES, lo=0, hi=20),
    )
    if board.baud not in BOARD_BAUD_RATES:
        raise b.error("baud", f"expected one of {list(BOARD_BAUD_RATES)}, got {board.baud}")
    b.finish()
    m = t.table("meter")
    meter = VisaSpec(m.str("model", choices=list(METERS)), _address(m),
                     {"nplc": m.float("nplc", METER_NPLC), "range_v": m.float("range_v", METER_RANGE_V),
                      "retries": m.int("retries", SCPI_RETRIES, lo=0, hi=SCPI_RETRIES_MAX)})
    mm = METERS[meter.model]
    if meter.options["nplc"] not in mm.nplc:
        raise m.error("nplc", f"expected one of {list(mm.nplc)}, got {meter.options['nplc']}")
    if meter.options["range_v"] not in mm.ranges_v:
        raise m.error("range_v", f"expected one of {list(mm.ranges_v)}, got {meter.options['range_v']}")
    m.finish()
    for node, ch in network.meter_channels.items():
        if not mm.channel_ok(ch):
            raise ConfigError(t.file, f"network.meter_channels.{node}",
                              f"expected a {meter.model} channel ({mm.channel_hint()}), got {ch!r}")
    st = t.table("sources")
    sources: dict[str, VisaSpec] = {}
    for prefix in st.data:
        s = st.table(prefix)
        model = s.str("model", choices=list(SOURCES))
        cur = current_keys(s, model, limits.max_source_v)
        sources[prefix] = VisaSpec(model, _address(s), {
            **({} if cur else {"current_limit_a": s.float("current_limit_a", SOURCE_CURRENT_LIMIT_A, lo=0.0,
                                                          hi=SOURCES[model].max_current_limit_a, lo_open=True)}),
            "retries": s.int("retries", SCPI_RETRIES, lo=0, hi=SCPI_RETRIES_MAX), **source_off_keys(s, model), **cur,
            **response_keys(s, bool(cur))})
        s.finish()
    st.finish()
    t.finish()
    if not sources:
        raise ConfigError(t.file, "instruments.sources", "expected at least one source instrument table")
    check_current_channels(t.file, network, sources)
    for node, full in network.source_channels.items():
        prefix, dot, ch = full.partition(".")
        if not dot or prefix not in sources:
            raise ConfigError(t.file, f"network.source_channels.{node}",
                              f"expected <instrument>.<channel> with instrument one of {sorted(sources)}, got {full!r}")
        hw_v = SOURCES[sources[prefix].model].max_v
        if ch not in hw_v:
            raise ConfigError(t.file, f"network.source_channels.{node}",
                              f"{sources[prefix].model} {prefix!r} has channels {sorted(hw_v)}, got {ch!r}")
        if limits.channel_limit(full) > hw_v[ch]:
            raise ConfigError(t.file, "limits.max_source_v", f"{limits.channel_limit(full)} V on {full} exceeds the "
                              f"{sources[prefix].model}'s {hw_v[ch]} V maximum")
    check_meter_range(m, meter.options["range_v"], network, limits, sources)
    return InstrumentsSpec(board, meter, sources)


def _sim_settings(t: Table, network: Network, part: PartSpec) -> dict[str, Any]:
    """The ``[simulator]`` table: any fields of :class:`~labnet.core.nonideal.SimSettings` (its defaults fill the
    rest), each number within :func:`~labnet.core.nonideal.sim_ranges` for ``part``; its
    ``[simulator.wiring]`` sub-table (wiring faults) is read by :mod:`labnet.config.wiring_file`."""
    t.refuse_renamed(RENAMED_SIM_KEYS)
    ranges = sim_ranges(part.max_code, part.tempco_ppm_per_k)
    out: dict[str, Any] = {}
    defaults = SimSettings()
    for fld in fields(SimSettings):
        kind = "boolean" if fld.type in ("bool", bool) else "integer" if fld.type in ("int", int) else "number"
        r = ranges.get(fld.name)
        if fld.name == "wiring":  # an optional sub-table: its keys are read (and documented) by wiring_file
            t.declare("wiring", "table", {})
        else:
            checks = {} if r is None else {"lo": r.lo, "hi": r.hi, "lo_open": r.lo_open or None,
                                           "hi_open": r.hi_open or None}
            t.declare(fld.name, kind, getattr(defaults, fld.name), **checks)
        if not t.has(fld.name):
            continue
        if fld.name == "wiring":
            out["wiring"] = load_wiring(t.table("wiring"), network)
        elif fld.type in ("bool", bool):
            out[fld.name] = t.bool(fld.name)
        elif fld.type in ("int", int):
            out[fld.name] = t.int(fld.name, lo=0)
        else:
            assert r is not None, f"SimSettings.{fld.name} has no range in sim_ranges"
            out[fld.name] = t.float(fld.name, lo=r.lo, hi=r.hi, lo_open=r.lo_open, hi_open=r.hi_open)
    t.finish()
    return out
