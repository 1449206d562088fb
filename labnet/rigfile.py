"""Rig files: load and validate ``protocols/rigs/*.toml``, then build a :class:`~labnet.rig.Rig`.

Validation (:func:`load_rig`) touches no instrument. Building (:func:`build_rig`) is the one
place in ``labnet`` that imports concrete drivers and the simulator.

A rig file::

    [rig]
    name = "sim16"
    kind = "simulator"          # "simulator": the model without a wire

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
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from labnet.errors import ConfigError
from labnet.network import Network
from labnet.parts import PartSpec, get_part
from labnet.rig import Limits, Rig
from labnet.schema import Table, read_toml

RIG_KINDS = ("simulator", "bench")


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
    instruments: dict[str, Any] = field(default_factory=dict)
    text: str = ""

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
    kind = rig.str("kind", "simulator", choices=RIG_KINDS)
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
    instruments = dict(top.raw("instruments", {}))
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
    )


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
