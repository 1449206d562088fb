"""A protocol's task against its rig's sources: input and target levels (V, or A at current-driven
inputs) within what the sources may apply, checked before anything opens."""

from __future__ import annotations

from typing import Any

import numpy as np

from labnet.config.current_file import current_limits
from labnet.config.rigfile import RigSpec
from labnet.config.schema import Table
from labnet.core.errors import ConfigError
from labnet.core.network import Network
from labnet.core.rules import Rule
from labnet.core.tasks import Task


def input_kind(t: Table, network: Network) -> str:
    """``"a"`` when the network's inputs are current-driven (the task gives ``inputs_a``, A), else
    ``"v"`` (``inputs_v``, V); inputs of both kinds in one network are refused."""
    cur = [n for n in network.inputs if n in network.current_channels]
    if cur and len(cur) != len(network.inputs):
        raise t.error("inputs_a", f"inputs {cur} are current-driven, {[n for n in network.inputs if n not in cur]} "
                                  "voltage-driven: a task drives all inputs the same way")
    if cur:
        if t.has("inputs_v"):
            raise t.error("inputs_v", f"the inputs {cur} are driven by current sources (network.current_channels): "
                                      "give inputs_a (A)")
        return "a"
    if t.has("inputs_a"):
        raise t.error("inputs_a", "the inputs are driven by voltage sources: give inputs_v (V); inputs_a needs "
                                  "network.current_channels in the rig file")
    t.declare("inputs_a", "list of numbers (A, one per input; current-driven inputs)", "(inputs_v)")
    return "v"


def check_task_levels(task: Task, table: dict[str, Any], network: Network, rig: RigSpec, file: str) -> None:
    """Refuse a task whose input or target levels the rig's sources would refuse.

    Inputs are driven at the input nodes; outputs are clamped between their free value and
    the target, so targets must be drivable by the output nodes' sources as well: within the
    channel's limit (V, absolute) and, on a source that sources 0 V and up only (the E36312A),
    not negative — what the driver would refuse mid-run is refused here, before anything opens.
    Current inputs (``inputs_a``, nodes in ``network.current_channels``) must lie within their
    source's ``max_current_a``.
    """
    cur = current_limits(network, None if rig.instruments is None else rig.instruments.sources)
    ranges = table.get("input_range_v")
    for role, nodes, arrays, key in (
        ("input", network.inputs, (task.train.inputs, task.test.inputs), "task.inputs_a" if cur else "task.inputs_v"),
        ("output", network.outputs, (task.train.targets, task.test.targets), "task.targets_v"),
    ):
        values = np.concatenate(arrays)
        hi, lo = np.max(values, axis=0), np.min(values, axis=0)
        if role == "input" and isinstance(ranges, list) and len(ranges) == 2:
            hi = np.maximum(hi, float(ranges[1]))
            lo = np.minimum(lo, float(ranges[0]))
            key = "task.input_range_v"
        if role == "output" and task.patterns is not None:
            key = "task.patterns_v" if "patterns_v" in table else "task"
        n = len(nodes)
        for node, v_hi, v_lo in zip(nodes, np.broadcast_to(hi, (n,)), np.broadcast_to(lo, (n,))):
            if node in cur and role == "output":  # equilibrium propagation: nudged by a current, not clamped
                continue
            if node in cur:
                a = max(abs(float(v_hi)), abs(float(v_lo)))
                if a > cur[node][0]:
                    raise ConfigError(file, key, f"{a:g} A at {role} node {node!r} exceeds max_current_a = "
                                      f"{cur[node][0]:g} A of its current source {network.current_channels[node]} "
                                      f"(rig file {rig.path})")
                continue
            ch = network.source_channels.get(node)
            if ch is None:
                raise ConfigError(file, "roles", f"{role} node {node!r} has no source channel in rig {rig.path}")
            lim = rig.limits.channel_limit(ch)
            v = max(abs(float(v_hi)), abs(float(v_lo)))
            if v > lim:
                raise ConfigError(file, key, f"{v:g} V at {role} node {node!r} exceeds the {lim:g} V limit of its "
                                  f"source channel {ch} (rig file {rig.path})")
            model = rig.unipolar_source(ch)
            if model is not None and v_lo < 0:
                raise ConfigError(file, key, f"{float(v_lo):g} V at {role} node {node!r} is negative: its source "
                                  f"channel {ch} ({model}, rig file {rig.path}) sources 0 V and up only")


def check_nudge(rt: Table, rule: Rule, network: Network) -> None:
    """The second state's outputs fit the rule: clamped (coupled learning, power-efficient) needs a
    voltage source at every output, nudged (``formula = "ep"``, β > 0) a current source."""
    cur = [o for o in network.outputs if o in network.current_channels]
    if rule.formula == "ep":
        if not rule.beta_siemens > 0:
            raise rt.error("beta_siemens", f'formula = "ep" needs the nudge β > 0 (S), got {rule.beta_siemens:g}')
        if len(cur) != len(network.outputs):
            raise rt.error("formula", f'"ep" nudges the outputs by currents: outputs '
                                      f"{[o for o in network.outputs if o not in cur]} have no current source "
                                      "(network.current_channels)")
        return
    if rule.beta_siemens:
        raise rt.error("beta_siemens", 'only used with formula = "ep"')
    if cur:
        raise rt.error("formula", f"{rule.formula!r} clamps the outputs with voltage sources; outputs {cur} are "
                                  'current-driven: use formula = "ep"')
