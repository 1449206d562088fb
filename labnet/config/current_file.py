"""Current-sourced inputs in a rig file: a ``[instruments.sources.<name>]`` table with
``function = "current"`` (a Keithley 2450 sourcing current) and the ``[network]
current_channels`` that name its channel.

Keys of such a table (besides ``model``, ``address``, ``retries``, ``off_state``):

* ``function`` — ``"voltage"`` (default) or ``"current"``; only the Keithley2450 sources current
  (the E36312A's constant-current mode is a supply's protection, not a programmable source).
* ``max_current_a`` — the largest |current| (A) the rig may source on it (required); it sets the
  fixed source range (Model 2450 Reference Manual, :SOURce[1]:<function>:RANGe, 6-75).
* ``vlim_v`` — the voltage limit VLIM (V; default ``[limits] max_source_v``, and never above it:
  VLIM is the largest voltage the source can put on its node, which the worst-case limit check
  takes as the node's range).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labnet.bench.catalog import SOURCES
from labnet.config.schema import Table
from labnet.core.errors import ConfigError
from labnet.core.network import Network

SOURCE_FUNCTIONS = ("voltage", "current")


def current_keys(s: Table, model: str, max_source_v: float) -> dict[str, Any]:
    """``function`` and, for a current source, ``max_current_a``/``vlim_v`` of one source table."""
    func = s.str("function", "voltage", choices=SOURCE_FUNCTIONS)
    if func == "voltage":
        for key in ("max_current_a", "vlim_v"):
            if s.has(key):
                raise s.error(key, 'only for function = "current" (a current source)')
        s.declare("max_current_a", "number", '(function = "current" only)')
        s.declare("vlim_v", "number", '(function = "current" only; default limits.max_source_v)')
        return {}
    facts = SOURCES[model]
    if not facts.ranges_a:
        raise s.error("function", f'"current": the {model} does not source current (only the Keithley2450 does)')
    if s.has("current_limit_a"):
        raise s.error("current_limit_a", 'the current limit of a voltage source; a current source has vlim_v')
    if s.raw("off_state", "HIMP") != "HIMP":
        raise s.error("off_state", 'a current source\'s output-off state must be "HIMP" (the node floats; '
                                   'NORM/ZERO would hold a current input at 0 V while it is off)')
    imax = s.float("max_current_a", lo=0.0, lo_open=True, hi=facts.ranges_a[-1])
    vlim = s.float("vlim_v", max_source_v, lo=facts.vlim_v[0], hi=facts.vlim_v[1])
    if vlim > max_source_v:
        raise s.error("vlim_v", f"{vlim} V exceeds limits.max_source_v ({max_source_v} V): the voltage limit is "
                                "the largest voltage the source may put on its node")
    return {"function": "current", "max_current_a": imax, "vlim_v": vlim}


def check_current_channels(file: str, network: Network, sources: Mapping[str, Any]) -> None:
    """Every ``network.current_channels`` entry names channel 1 of a current source, and no
    ``network.source_channels`` entry names one (``sources``: prefix -> VisaSpec)."""
    current = {p for p, v in sources.items() if v.options.get("function") == "current"}
    known = str(sorted(current)) if current else '(none: give a source table function = "current")'
    for node, full in network.current_channels.items():
        prefix, dot, ch = full.partition(".")
        if not dot or prefix not in current:
            raise ConfigError(file, f"network.current_channels.{node}",
                              f"expected <instrument>.1 with instrument one of the current sources {known}, got {full!r}")
        if ch != "1":
            raise ConfigError(file, f"network.current_channels.{node}",
                              f"a {sources[prefix].model} has one channel, 1; got {ch!r}")
    used = set(network.current_channels.values())
    for p in current:
        if f"{p}.1" not in used:
            raise ConfigError(file, f"instruments.sources.{p}", 'function = "current" but no '
                              "network.current_channels entry uses it")
    for node, full in network.source_channels.items():
        if full.partition(".")[0] in current:
            raise ConfigError(file, f"network.source_channels.{node}",
                              f"{full!r} is a current source (function = \"current\"); list the node under "
                              "network.current_channels")


def current_limits(network: Network, sources: Mapping[str, Any] | None) -> dict[str, tuple[float, float]]:
    """node -> (largest |I| A, VLIM V) of every current-driven node (``sources``: prefix -> VisaSpec)."""
    out: dict[str, tuple[float, float]] = {}
    for node, full in network.current_channels.items():
        opts = (sources or {})[full.partition(".")[0]].options
        out[node] = (float(opts["max_current_a"]), float(opts["vlim_v"]))
    return out


def max_currents(spec: Any) -> dict[str, float]:
    """node -> largest |I| (A) of every current-driven node of a rig (a RigSpec)."""
    sources = None if spec.instruments is None else spec.instruments.sources
    return {n: a for n, (a, _) in current_limits(spec.network, sources).items()}
