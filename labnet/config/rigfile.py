"""Rig files: load and validate ``protocols/rigs/*.toml``, then build a :class:`~labnet.bench.rig.Rig`.

Validation (:func:`load_rig`) touches no instrument. Building (:func:`build_rig`) is the one
place in ``labnet`` that imports concrete drivers and the simulator.

A rig file::

    [rig]
    name = "sim16"
    kind = "simulator"          # "simulator" (emulated instruments) or "bench" (real ones);
                                # derived from the addresses when omitted
    transport = "wire"          # "wire": real drivers over (emulated) transports (default when
                                # [instruments] is given); "direct": the model without a wire

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

    [simulator]                 # simulator.breadboard.SimSettings
    seed = 16
    ...

    [instruments.board]         # the digipot board (drivers.digipot)
    address = "sim://sim16"     # pyserial port or URL: "/dev/ttyUSB0", "COM3", "sim://<bench>"
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
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from labnet.bench.rig import Limits, Rig
from labnet.config.schema import Table, read_toml
from labnet.core.errors import ConfigError
from labnet.core.network import Network
from labnet.core.parts import PartSpec, get_part

RIG_KINDS = ("simulator", "bench")
RIG_TRANSPORTS = ("wire", "direct")
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 250000, 500000, 1000000)
METER_MODELS = ("DAQ970A", "34970A")
NPLC_VALUES = (0.02, 0.2, 1.0, 2.0, 10.0, 20.0, 100.0, 200.0)
METER_RANGES_V = (0.1, 1.0, 10.0, 100.0, 300.0)
#: source model -> (channel -> the instrument's maximum V, maximum current limit A)
#: Default and largest ``retries`` of a SCPI instrument (``[instruments.meter]``, ``[instruments.sources.*]``).
SCPI_RETRIES, SCPI_RETRIES_MAX = 3, 20
SOURCE_MODELS: dict[str, tuple[dict[str, float], float]] = {
    "E36312A": ({"1": 6.0, "2": 25.0, "3": 25.0}, 1.0),
    "Keithley2450": ({"1": 200.0}, 1.05),
}


@dataclass(frozen=True)
class BoardSpec:
    """``[instruments.board]``: the digipot board's serial port."""

    address: str
    baud: int
    timeout_s: float
    retries: int

    @property
    def simulated(self) -> bool:
        return self.address.startswith("sim://")


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

    @property
    def simulated(self) -> bool:
        return self.kind == "simulator"


def load_rig(path: str | Path) -> RigSpec:
    """Read and validate a rig file; raise ConfigError naming file and key on any problem."""
    p = Path(path)
    data = read_toml(p)
    f = str(p)
    top = Table(data, f)
    rig = top.table("rig")
    name = rig.str("name", p.stem)
    kind_given = rig.has("kind")
    kind = rig.str("kind", "simulator", choices=RIG_KINDS)
    transport = rig.str("transport", "wire" if top.has("instruments") else "direct", choices=RIG_TRANSPORTS)
    rig.finish()
    network = Network.from_dict(top.raw("network"), file=f, key="network")
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
        sim = _sim_settings(top.table("simulator"))
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
    if transport == "wire" and instruments is None:
        raise ConfigError(f, "instruments", "missing required table (rig.transport = \"wire\" needs the instrument addresses)")
    if transport == "direct" and kind != "simulator":
        raise ConfigError(f, "rig.transport", "\"direct\" (no wire) exists only for simulated rigs")
    if kind == "simulator" and not top.has("simulator") and transport == "wire":
        raise ConfigError(f, "simulator", "missing required table (simulated instruments need the breadboard model)")
    top.finish()
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
        baud=b.int("baud", 115200),
        timeout_s=b.float("timeout_s", 0.5, lo=0.01, hi=60.0),
        retries=b.int("retries", 4, lo=0, hi=20),
    )
    if board.baud not in BAUD_RATES:
        raise b.error("baud", f"expected one of {list(BAUD_RATES)}, got {board.baud}")
    b.finish()
    m = t.table("meter")
    meter = VisaSpec(m.str("model", choices=METER_MODELS), _address(m),
                     {"nplc": m.float("nplc", 1.0), "range_v": m.float("range_v", 10.0),
                      "retries": m.int("retries", SCPI_RETRIES, lo=0, hi=SCPI_RETRIES_MAX)})
    if meter.options["nplc"] not in NPLC_VALUES:
        raise m.error("nplc", f"expected one of {list(NPLC_VALUES)}, got {meter.options['nplc']}")
    if meter.options["range_v"] not in METER_RANGES_V:
        raise m.error("range_v", f"expected one of {list(METER_RANGES_V)}, got {meter.options['range_v']}")
    m.finish()
    for node, ch in network.meter_channels.items():
        if not (len(ch) == 3 and ch.isdigit() and 1 <= int(ch[0]) <= 3 and 1 <= int(ch[1:]) <= 20):
            raise ConfigError(t.file, f"network.meter_channels.{node}",
                              f"expected a {meter.model} channel (slot 1-3, channel 01-20, e.g. \"101\"), got {ch!r}")
    st = t.table("sources")
    sources: dict[str, VisaSpec] = {}
    for prefix in st.data:
        s = st.table(prefix)
        model = s.str("model", choices=list(SOURCE_MODELS))
        hw_v, hw_a = SOURCE_MODELS[model]
        sources[prefix] = VisaSpec(model, _address(s), {
            "current_limit_a": s.float("current_limit_a", 0.01, lo=0.0, hi=hw_a, lo_open=True),
            "retries": s.int("retries", SCPI_RETRIES, lo=0, hi=SCPI_RETRIES_MAX)})
        s.finish()
    st.finish()
    t.finish()
    if not sources:
        raise ConfigError(t.file, "instruments.sources", "expected at least one source instrument table")
    for node, full in network.source_channels.items():
        prefix, dot, ch = full.partition(".")
        if not dot or prefix not in sources:
            raise ConfigError(t.file, f"network.source_channels.{node}",
                              f"expected <instrument>.<channel> with instrument one of {sorted(sources)}, got {full!r}")
        hw_v = SOURCE_MODELS[sources[prefix].model][0]
        if ch not in hw_v:
            raise ConfigError(t.file, f"network.source_channels.{node}",
                              f"{sources[prefix].model} {prefix!r} has channels {sorted(hw_v)}, got {ch!r}")
        if limits.channel_limit(full) > hw_v[ch]:
            raise ConfigError(t.file, "limits.max_source_v", f"{limits.channel_limit(full)} V on {full} exceeds the "
                              f"{sources[prefix].model}'s {hw_v[ch]} V maximum")
    return InstrumentsSpec(board, meter, sources)


def _sim_settings(t: Table) -> dict[str, Any]:
    from simulator.breadboard import SimSettings

    out: dict[str, Any] = {}
    for fld in fields(SimSettings):
        if not t.has(fld.name):
            continue
        if fld.type in ("bool", bool):
            out[fld.name] = t.bool(fld.name)
        elif fld.type in ("int", int):
            out[fld.name] = t.int(fld.name, lo=0)
        else:
            out[fld.name] = t.float(fld.name, lo=0.0)
    t.finish()
    return out


def build_rig(spec: RigSpec, *, sim_seed: int | None = None, network: Network | None = None) -> Rig:
    """Instantiate the rig's instruments (simulated or real) and wrap them in a Rig.

    ``sim_seed`` (a protocol's seed) seeds the simulator's run-to-run noise; the part draw is
    fixed by the rig file's ``[simulator] seed`` (the same board in every run), or by
    ``sim_seed`` if the rig file gives none. ``network`` replaces the rig's roles (same wiring) when a
    protocol assigns other inputs and outputs.
    """
    net = spec.network if network is None else network
    if spec.transport == "wire":
        return _build_wired(spec, net, sim_seed)
    if spec.kind == "simulator":
        from simulator.breadboard import Breadboard, SimSettings
        from simulator.direct import DirectDigipots, DirectMeter, DirectSources

        settings = dict(spec.sim)
        if "seed" not in settings and sim_seed is not None:
            settings["seed"] = sim_seed
        board = Breadboard(spec.network, spec.part, SimSettings(**settings), noise_seed=sim_seed)
        return Rig(
            net,
            spec.part,
            DirectDigipots(board),
            DirectSources(board),
            DirectMeter(board),
            spec.limits,
            clock=board.clock,
            name=spec.name,
            simulated=True,
            extra={"simulator": board.describe()},
        )
    raise ConfigError(str(spec.path), "rig.kind", f"rig kind {spec.kind!r} needs the instrument drivers (not available)")


def _model(spec: RigSpec, sim_seed: int | None) -> Any:
    from simulator.breadboard import Breadboard, SimSettings

    settings = dict(spec.sim)
    if "seed" not in settings and sim_seed is not None:
        settings["seed"] = sim_seed
    return Breadboard(spec.network, spec.part, SimSettings(**settings), noise_seed=sim_seed)


def _sim_host(spec: RigSpec) -> str:
    """The bench name the simulated addresses point at (all must agree)."""
    from urllib.parse import urlsplit

    from pyvisa import rname

    ins = spec.instruments
    assert ins is not None
    names = {("instruments.board.address", urlsplit(ins.board.address).netloc)}
    for key, v in [("instruments.meter.address", ins.meter)] + [(f"instruments.sources.{p}.address", s)
                                                                 for p, s in ins.sources.items()]:
        try:
            host = getattr(rname.parse_resource_name(v.resource), "host_address", None)
        except rname.InvalidResourceName:
            host = None
        if not host:
            raise ConfigError(str(spec.path), key, f"a simulated VISA address is TCPIP0::<bench>::<device>::INSTR@sim, "
                              f"got {v.address!r}")
        names.add((key, host))
    hosts = {h for _, h in names}
    if len(hosts) != 1:
        raise ConfigError(str(spec.path), "instruments", f"simulated addresses name different benches: {sorted(hosts)}")
    return hosts.pop()


def _build_wired(spec: RigSpec, net: Network, sim_seed: int | None) -> Rig:
    """Real drivers on real pyserial / pyvisa objects; beneath them the bench or the emulators."""
    import pyvisa
    import serial
    from pyvisa import rname

    from drivers.daq970a import DAQ970A, Keysight34970A
    from drivers.digipot import DigipotBoard
    from drivers.events import EventBuffer
    from drivers.sources import E36312A, Keithley2450, RoutedSources
    from labnet.bench.rig import WallClock
    from labnet.core.errors import InstrumentError

    ins = spec.instruments
    assert ins is not None
    extra: dict[str, Any] = {"transport": "wire"}
    clock: Any = WallClock()
    if spec.simulated:
        import simulator  # noqa: F401 - registers the sim:// pyserial handler
        from simulator.bench import SimBench, register
        from simulator.visa import library

        host = _sim_host(spec)
        model = _model(spec, sim_seed)
        bench = register(SimBench(host, model))
        devices = {"meter": (ins.meter, "")} | {p: (s, p) for p, s in ins.sources.items()}
        for _, (v, prefix) in devices.items():
            bench.add_instrument(rname.parse_resource_name(v.resource).lan_device_name, v.model, prefix)
        clock = model.clock
        extra["simulator"] = model.describe()
        extra["sim_bench"] = host
    opened: list[Any] = []
    managers: dict[str, Any] = {}
    pending = EventBuffer(clock.now)  # driver events while building; a session takes them (runner)

    def cannot(key: str, address: str, exc: BaseException) -> InstrumentError:
        return InstrumentError(f"{spec.path}: {key}: cannot open {address!r}: {exc}")

    def resource(v: Any, key: str) -> Any:
        try:
            if v.backend not in managers:
                managers[v.backend] = (pyvisa.ResourceManager(library()) if v.backend == "sim"
                                       else pyvisa.ResourceManager(f"@{v.backend}" if v.backend else ""))
            r = managers[v.backend].open_resource(v.resource)
        except (OSError, ValueError, pyvisa.errors.Error) as exc:
            raise cannot(key, v.address, exc) from exc
        opened.append(r)
        return r

    try:
        try:
            port = serial.serial_for_url(ins.board.address, baudrate=ins.board.baud, timeout=ins.board.timeout_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise cannot("instruments.board.address", ins.board.address, exc) from exc
        opened.append(port)
        board = DigipotBoard(port, timeout_s=ins.board.timeout_s, retries=ins.board.retries, sleep=clock.sleep,
                             on_event=pending)
        board.connect()
        need = max(net.edge_channels) + 1
        if board.n_channels < need or board.max_code != spec.part.max_code:
            raise ConfigError(str(spec.path), "parts.model", f"the board reports {board.n_channels} channels, max code "
                              f"{board.max_code}; the rig needs {need} channels of {spec.part.name} (max code "
                              f"{spec.part.max_code})")
        meter_cls = DAQ970A if ins.meter.model == "DAQ970A" else Keysight34970A
        meter = meter_cls(resource(ins.meter, "instruments.meter.address"), nplc=ins.meter.options["nplc"],
                          range_v=ins.meter.options["range_v"],
                          label=f"meter ({ins.meter.model})", retries=ins.meter.options["retries"],
                          sleep=clock.sleep, on_event=pending)
        drivers: dict[str, Any] = {}
        for p, v in ins.sources.items():
            cls = E36312A if v.model == "E36312A" else Keithley2450
            limits = {ch: spec.limits.channel_limit(f"{p}.{ch}") for ch in SOURCE_MODELS[v.model][0]}
            drivers[p] = cls(resource(v, f"instruments.sources.{p}.address"), max_v=limits,
                             current_limit_a=v.options["current_limit_a"],
                             label=f"source {p} ({v.model})", retries=v.options["retries"],
                             sleep=clock.sleep, on_event=pending)
            drivers[p].setup()
        sources = RoutedSources(drivers)
    except BaseException:
        for r in opened:
            try:
                r.close()
            except Exception:  # noqa: BLE001, S110 - closing what was opened, the first error matters
                pass
        raise
    return Rig(net, spec.part, board, sources, meter, spec.limits, clock=clock, name=spec.name,
               simulated=spec.simulated, extra=extra)


def dry_run_spec(spec: RigSpec) -> RigSpec:
    """The same rig on the simulator: a simulated rig as it is; a bench rig with every address
    replaced by its emulated twin (``sim://<rig>``, ``TCPIP0::<rig>::<device>::INSTR@sim``),
    using the rig file's ``[simulator]`` table (defaults where it has none). Nothing real is
    opened by building the returned spec."""
    from dataclasses import replace

    if spec.simulated:
        return spec
    ins = spec.instruments
    if ins is None:  # pragma: no cover - a bench rig always has instruments (load_rig checks)
        raise ConfigError(str(spec.path), "instruments", "missing required table")
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in spec.name) or "dryrun"
    sim_ins = InstrumentsSpec(
        replace(ins.board, address=f"sim://{host}"),
        replace(ins.meter, address=f"TCPIP0::{host}::meter::INSTR@sim"),
        {p: replace(s, address=f"TCPIP0::{host}::{p}::INSTR@sim") for p, s in ins.sources.items()},
    )
    return replace(spec, kind="simulator", instruments=sim_ins, transport="wire")


def wire_report(rig: Rig, steps: int) -> str:
    """Estimated bench time of a finished run on a simulated wired rig, with where it went."""
    from simulator.bench import get_bench
    from simulator.timing import Counters, report, snapshot

    name = rig.extra.get("sim_bench")
    t = rig.clock.now()
    lines = [f"estimated bench time: {t:.1f} s ({t / 60:.1f} min, {t / 3600:.2f} h) for {steps} steps"]
    if name:
        bench = get_bench(name)
        zero = Counters(0.0, 0, 0, 0, 0, 0, 0.0)
        r = report(zero, snapshot(bench), steps, bench.board.timing.baud)
        lines.append("  averaged over the run (evaluations and start-up included), " + r.text())
    return "\n".join(lines)


class StepTimer:
    """Engine sink for a simulated wired rig: the bench's wire counters at every finished
    training step, so a dry run can say what one typical step costs (median over the steps;
    a step that was followed by an evaluation includes it, the median does not)."""

    def __init__(self, bench_name: str) -> None:
        self.bench_name = bench_name
        self.snaps: list[Any] = []

    def __call__(self, event: Any) -> None:
        if type(event).__name__ == "StepDone":
            from simulator.bench import get_bench
            from simulator.timing import snapshot

            self.snaps.append(snapshot(get_bench(self.bench_name)))

    def text(self) -> str:
        from simulator.bench import get_bench
        from simulator.timing import report

        if len(self.snaps) < 2:
            return "  (too few training steps for a per-step estimate)"
        baud = get_bench(self.bench_name).board.timing.baud
        steps = [report(a, b, 1, baud) for a, b in zip(self.snaps, self.snaps[1:])]
        typical = sorted(steps, key=lambda r: r.modelled_s)[len(steps) // 2]
        return "  a typical training step, " + typical.text()


def step_timer(spec: RigSpec) -> StepTimer | None:
    """A :class:`StepTimer` for a simulated wired rig (None for other rigs)."""
    if not (spec.simulated and spec.transport == "wire"):
        return None
    return StepTimer(_sim_host(spec))
