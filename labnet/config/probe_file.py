"""Probe protocol files (``[protocol] kind = "probe"``, ``[probe]``), validated.

A bare rig file is a probe protocol too: it runs with the default
:class:`~labnet.experiments.settings.ProbeSettings` at the network's inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labnet.config.protocol import read_head, read_roles
from labnet.config.rigfile import RigSpec, load_rig
from labnet.config.schema import Table, default, read_toml
from labnet.config.tables import load_bound_table
from labnet.core.network import Network
from labnet.experiments.settings import ProbeSettings


def parse_probe_settings(t: Table, network: Network, max_v: float, rig: RigSpec | None = None) -> ProbeSettings:
    """Validate a ``[probe]`` table against the network and the rig's voltage limit ``max_v`` (V)
    (and, given the ``rig``, its sources' polarity: ``v_min < 0`` is refused when a driven node's
    source sources 0 V and up only)."""
    drive = tuple(t.strs("drive", list(network.inputs)))
    for n in drive:
        if n in network.current_channels:
            raise t.error("drive", f"node {n!r} is driven by a current source (network.current_channels): the probe "
                                   "applies random voltages; list nodes with voltage sources")
        if n not in network.source_channels:
            raise t.error("drive", f"node {n!r} has no source channel")
    if len(set(drive)) != len(drive) or not drive:
        raise t.error("drive", f"expected distinct source nodes, got {list(drive)}")

    def d(name: str) -> Any:
        return default(ProbeSettings, name)

    v_min = t.float("v_min", d("v_min"), lo=-max_v, hi=max_v)
    v_max = t.float("v_max", min(d("v_max"), max_v), lo=-max_v, hi=max_v)
    if v_max <= v_min:
        raise t.error("v_max", f"expected v_max > v_min ({v_min}), got {v_max}")
    for n in drive:
        model = None if rig is None else rig.unipolar_source(network.source_channels[n])
        if model is not None and v_min < 0:
            raise t.error("v_min", f"{v_min:g} V is negative: node {n!r}'s source channel "
                          f"{network.source_channels[n]} ({model}) sources 0 V and up only")
    s = ProbeSettings(
        samples=t.int("samples", d("samples"), lo=3, hi=1_000_000),
        drive=drive,
        v_min=v_min,
        v_max=v_max,
        settle_s=t.float("settle_s", d("settle_s"), lo=0.0, hi=60.0),
        bootstrap=t.int("bootstrap", d("bootstrap"), lo=0, hi=100_000),
    )
    t.finish()
    return s


@dataclass
class ProbeProtocol:
    """A validated ``kind = "probe"`` protocol (or defaults for a bare rig file)."""

    path: Path | None
    name: str
    seed: int
    rig: RigSpec
    network: Network
    settings: ProbeSettings
    calibration: Path | None = None
    text: str = ""


def load_probe_protocol(path: str | Path, *, rig: str | Path | None = None) -> ProbeProtocol:
    """Read a probe protocol (``[protocol] kind = "probe"``, ``[probe]``, optional ``[roles]``
    and ``[calibration] table``), or a rig file with default settings."""
    p = Path(path)
    data = read_toml(p)
    if "protocol" not in data:
        spec = load_rig(p if rig is None else rig)
        return ProbeProtocol(None, "probe", 0, spec, spec.network,
                             parse_probe_settings(Table({}, str(p), "probe"), spec.network, spec.limits.max_source_v,
                                                  spec))
    f = str(p)
    top = Table(data, f)
    head = read_head(top, p, ["probe"], rig)
    name, seed = head.name, head.seed
    spec = load_rig(head.rig_path)
    network = read_roles(top, spec.network, f)
    settings = parse_probe_settings(top.table("probe", required=False), network, spec.limits.max_source_v, spec)
    cal = None
    if top.has("calibration"):
        ct = top.table("calibration")
        cal = p.parent / ct.str("table")
        ct.finish()
        if not cal.exists():
            raise ct.error("table", f"calibration table {cal} not found")
        load_bound_table(cal, spec, seed)  # undamaged and of this rig, before anything is opened
    top.finish()
    return ProbeProtocol(p, name, seed, spec, network, settings, cal, p.read_text(encoding="utf-8"))


__all__ = ["ProbeProtocol", "load_probe_protocol", "parse_probe_settings"]
