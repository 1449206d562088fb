"""Building a rig from a validated rig file: the one place that instantiates instruments.

:func:`build_rig` turns a :class:`~labnet.config.rigfile.RigSpec` into a
:class:`~labnet.bench.rig.Rig` over the concrete drivers (real pyserial / pyvisa transports,
or the simulator's emulators beneath them) or over the simulator's model directly
(``transport = "direct"``). :func:`dry_run_spec`, :func:`wire_report` and :class:`StepTimer`
serve ``labnet run --dry-run`` (estimated bench time on the emulated wire).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pyvisa
import serial
from pyvisa import rname

import simulator  # noqa: F401 - registers the sim:// pyserial handler
from drivers.current_source import Keithley2450Current, RoutedCurrentSources
from drivers.daq970a import DAQ970A, Keysight34970A
from drivers.digipot import DigipotBoard
from drivers.events import EventBuffer
from drivers.sources import E36312A, Keithley2450, RoutedSources
from labnet.bench.catalog import SOURCES
from labnet.bench.rig import Rig, WallClock
from labnet.config.current_file import current_limits as limits_of_currents
from labnet.config.rigfile import InstrumentsSpec, RigSpec
from labnet.core.errors import ConfigError, InstrumentError
from labnet.core.network import Network
from labnet.core.nonideal import SimSettings
from simulator.bench import SimBench, get_bench, register
from simulator.breadboard import Breadboard
from simulator.direct import DirectDigipots, DirectMeter, DirectSources, DirectSwitches
from simulator.timing import Counters, report, snapshot
from simulator.visa import library


def build_rig(spec: RigSpec, *, sim_seed: int | None = None, network: Network | None = None) -> Rig:
    """Instantiate the rig's instruments (simulated or real) and wrap them in a Rig.

    ``sim_seed`` (a protocol's seed) seeds the simulator's run-to-run noise; the part draw is
    fixed by the rig file's ``[simulator] seed`` (the same board in every run), or by
    ``sim_seed`` if the rig file gives none. ``network`` replaces the rig's roles (same wiring) when a
    protocol assigns other inputs and outputs.
    """
    net = spec.network if network is None else network
    rig = _build(spec, net, sim_seed)
    rel = spec.release  # released nodes that a loading off-state pulls toward 0 V (the limit check)
    rig.off_loaded = frozenset(n for n, ch in net.source_channels.items() if ch in rel.off_ohm and n not in rel.switches)
    return rig


def _build(spec: RigSpec, net: Network, sim_seed: int | None) -> Rig:
    if spec.transport == "wire":
        return _build_wired(spec, net, sim_seed)
    if spec.kind == "simulator":
        settings = dict(spec.sim)
        if "seed" not in settings and sim_seed is not None:
            settings["seed"] = sim_seed
        board = Breadboard(spec.network, spec.part, SimSettings(**settings), noise_seed=sim_seed,
                           release=spec.release)
        switches = DirectSwitches(board) if spec.release.switches else None
        return Rig(
            net,
            spec.part,
            DirectDigipots(board),
            DirectSources(board),
            DirectMeter(board, mains_hz=spec.mains_hz),
            spec.limits,
            clock=board.clock,
            name=spec.name,
            simulated=True,
            extra={"simulator": board.describe(), **_release_extra(spec)},
            switches=switches,
            switch_channels=spec.release.switches or None,
        )
    raise ConfigError(str(spec.path), "rig.kind", f"rig kind {spec.kind!r} needs the instrument drivers (not available)")


def _model(spec: RigSpec, sim_seed: int | None) -> Any:
    settings = dict(spec.sim)
    if "seed" not in settings and sim_seed is not None:
        settings["seed"] = sim_seed
    return Breadboard(spec.network, spec.part, SimSettings(**settings), noise_seed=sim_seed, release=spec.release)


def _release_extra(spec: RigSpec) -> dict[str, Any]:
    """The session header's ``release`` entry: only for a rig that is not the ideal output-off one."""
    r = spec.release
    return {} if r.method == "output_off" and r.ideal else {"release": r.to_dict()}


def _sim_host(spec: RigSpec) -> str:
    """The bench name the simulated addresses point at (all must agree)."""
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


def register_sim_bench(spec: RigSpec, sim_seed: int | None = None) -> tuple[str, Breadboard]:
    """Register the simulated bench a wired simulated rig's addresses point at (its model and
    emulated instruments; nothing is opened); returns its name and model."""
    ins = spec.instruments
    assert ins is not None and spec.simulated
    host = _sim_host(spec)
    model = _model(spec, sim_seed)
    bench = register(SimBench(host, model))
    devices = {"meter": (ins.meter, "")} | {p: (s, p) for p, s in ins.sources.items()}
    for _, (v, prefix) in devices.items():
        device = rname.parse_resource_name(v.resource).lan_device_name  # type: ignore[attr-defined]  # a TCPIP INSTR name
        options: dict[str, Any] = {"mains_hz": spec.mains_hz} if v is ins.meter else {}
        if "off_resistance_ohm" in v.options:  # the E36312A's output-off state (labnet.config.release_file)
            options["off_resistance_ohm"] = v.options["off_resistance_ohm"]
        bench.add_instrument(device, v.model, prefix, **options)
    return host, model


def _build_wired(spec: RigSpec, net: Network, sim_seed: int | None) -> Rig:
    """Real drivers on real pyserial / pyvisa objects; beneath them the bench or the emulators."""
    ins = spec.instruments
    assert ins is not None
    extra: dict[str, Any] = {"transport": "wire", **_release_extra(spec)}
    clock: Any = WallClock()
    if spec.simulated:
        host, model = register_sim_bench(spec, sim_seed)
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
        if hasattr(port, "firmware_info"):  # simavr://: the firmware binary (its build hash) in the loop
            extra["firmware"] = port.firmware_info()
        need = max(net.edge_channels) + 1
        if board.n_switches < spec.release.n_switches:
            raise ConfigError(str(spec.path), "release.switch_channels", f"the board reports {board.n_switches} "
                              f"switches; the rig needs {spec.release.n_switches}")
        if board.n_channels < need or board.max_code != spec.part.max_code:
            raise ConfigError(str(spec.path), "parts.model", f"the board reports {board.n_channels} channels, max code "
                              f"{board.max_code}; the rig needs {need} channels of {spec.part.name} (max code "
                              f"{spec.part.max_code})")
        meter_cls = DAQ970A if ins.meter.model == "DAQ970A" else Keysight34970A
        meter = meter_cls(resource(ins.meter, "instruments.meter.address"), nplc=ins.meter.options["nplc"],
                          range_v=ins.meter.options["range_v"], mains_hz=spec.mains_hz,
                          label=f"meter ({ins.meter.model})", retries=ins.meter.options["retries"],
                          sleep=clock.sleep, on_event=pending)
        drivers: dict[str, Any] = {}
        currents: dict[str, Keithley2450Current] = {}
        for p, v in ins.sources.items():
            if v.options.get("function") == "current":
                currents[p] = Keithley2450Current(
                    resource(v, f"instruments.sources.{p}.address"), max_current_a=v.options["max_current_a"],
                    vlim_v=v.options["vlim_v"], off_state=v.options["off_state"], label=f"current source {p} ({v.model})",
                    retries=v.options["retries"], sleep=clock.sleep, on_event=pending)
                currents[p].setup()
                continue
            cls = E36312A if v.model == "E36312A" else Keithley2450
            limits = {ch: spec.limits.channel_limit(f"{p}.{ch}") for ch in SOURCES[v.model].channels}
            smod = {"off_state": v.options["off_state"]} if v.model == "Keithley2450" else {}
            drivers[p] = cls(resource(v, f"instruments.sources.{p}.address"), max_v=limits, **smod,
                             current_limit_a=v.options["current_limit_a"],
                             label=f"source {p} ({v.model})", retries=v.options["retries"],
                             sleep=clock.sleep, on_event=pending)
            drivers[p].setup()
        sources = RoutedSources(drivers)
        current_sources = RoutedCurrentSources(currents) if currents else None
        current_limits = limits_of_currents(net, ins.sources)
    except BaseException:
        for r in opened:
            try:
                r.close()
            except Exception:  # noqa: BLE001, S110 - closing what was opened, the first error matters
                pass
        raise
    return Rig(net, spec.part, board, sources, meter, spec.limits, clock=clock, name=spec.name,
               simulated=spec.simulated, extra=extra, switches=board if spec.release.switches else None,
               switch_channels=spec.release.switches or None, current_sources=current_sources,
               current_limits=current_limits)


def dry_run_spec(spec: RigSpec) -> RigSpec:
    """The same rig on the simulator: a simulated rig as it is; a bench rig with every address
    replaced by its emulated twin (``sim://<rig>``, ``TCPIP0::<rig>::<device>::INSTR@sim``),
    using the rig file's ``[simulator]`` table (defaults where it has none). Nothing real is
    opened by building the returned spec."""
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
            self.snaps.append(snapshot(get_bench(self.bench_name)))

    def text(self) -> str:
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


__all__ = ["StepTimer", "build_rig", "dry_run_spec", "register_sim_bench", "step_timer", "wire_report"]
