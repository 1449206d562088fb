"""Protocol files: what a lab runs (``protocols/*.toml``), validated before anything is touched.

A training protocol::

    [protocol]
    name = "allostery"
    kind = "train"
    rig = "rigs/sim16.toml"     # relative to this file
    seed = 1

    [roles]                     # optional: other input/output nodes on the same wiring
    inputs = ["n1", "n2"]
    outputs = ["n3", "n4"]

    [task]
    kind = "allostery"          # allostery | regression | classification
    inputs_v = [1.0, 0.3]
    targets_v = [0.42, 0.2]

    [rule]
    kind = "sign"               # sign | stochastic | coupled
    eta = 0.5
    alpha = 1e-3                # S/V²
    deadband_siemens = 0.0      # S: |Δk| below it moves no tap (sign rule)
    max_taps = 4

    [train]
    steps = 300
    batch = 1
    eval_every = 10
    target_error = 0.0          # V²; stop early below it
    settle_s = 0.01
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labnet.config.analysis_file import validate_extra
from labnet.config.rigfile import RigSpec, load_rig
from labnet.config.schema import Table, default, read_toml
from labnet.config.shipped import default_rig_path
from labnet.core.errors import ConfigError
from labnet.core.network import Network
from labnet.core.rules import RULE_KINDS, Rule
from labnet.core.tasks import Task, allostery, classification_iris, regression
from labnet.experiments.settings import TrainSettings

PROTOCOL_KINDS = ("train",)
TASK_KINDS = ("allostery", "regression", "classification")
#: Keys renamed so their unit is unambiguous (old -> new), per table; an old key is an error naming the new one.
RENAMED_RULE_KEYS = {"deadband_s": "deadband_siemens"}


@dataclass
class Protocol:
    """A validated protocol file and the rig it runs on."""

    path: Path
    name: str
    kind: str
    seed: int
    rig: RigSpec
    network: Network
    task_table: dict[str, Any]
    rule: Rule
    train: TrainSettings
    text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def build_task(self) -> Task:
        """The task's samples, drawn from a generator seeded by the protocol's seed."""
        return make_task(self.task_table, self.network, np.random.default_rng([self.seed, 7]), str(self.path))


@dataclass(frozen=True)
class ProtocolHead:
    """The ``[protocol]`` table every protocol kind starts with."""

    name: str
    kind: str
    seed: int
    rig_path: Path


def read_head(top: Table, path: Path, kinds: Sequence[str], rig: str | Path | None = None, *,
              default_kind: str | None = None) -> ProtocolHead:
    """Read ``[protocol]`` (name, kind, seed, rig) and resolve the rig file.

    ``rig`` (a CLI ``--rig``) wins over the file's ``rig`` key, which is relative to the
    protocol file; without either the default simulated rig is used. A ``kind`` outside
    ``kinds`` or a rig file that does not exist is a ConfigError naming the key.
    """
    head = top.table("protocol")
    name = head.str("name", path.stem)
    kind = head.str("kind", choices=kinds) if default_kind is None else head.str("kind", default_kind, choices=kinds)
    seed = head.int("seed", 0, lo=0)
    rig_rel = head.str("rig", "")
    head.finish()
    if rig is not None:
        rig_path = Path(rig)
    elif rig_rel:
        rig_path = Path(rig_rel) if Path(rig_rel).is_absolute() else path.parent / rig_rel
        if not rig_path.exists():
            raise head.error("rig", f"rig file {rig_path} not found")
    else:
        rig_path = default_rig_path()
    return ProtocolHead(name, kind, seed, rig_path)


def read_roles(top: Table, network: Network, file: str) -> Network:
    """The rig's network, with the protocol's optional ``[roles]`` (inputs, outputs) applied."""
    if not top.has("roles"):
        return network
    roles = top.table("roles")
    out = network.with_roles(
        inputs=roles.strs("inputs", list(network.inputs)),
        outputs=roles.strs("outputs", list(network.outputs)),
        file=file,
        key="roles",
    )
    roles.finish()
    return out


def load_protocol(path: str | Path, *, rig: str | Path | None = None, steps: int | None = None,
                  seed: int | None = None) -> Protocol:
    """Read and validate a protocol (and its rig); CLI overrides are applied and checked too."""
    p = Path(path)
    f = str(p)
    top = Table(read_toml(p), f)
    head = read_head(top, p, PROTOCOL_KINDS, rig, default_kind="train")
    name, kind, file_seed = head.name, head.kind, head.seed
    rig_spec = load_rig(head.rig_path)
    network = read_roles(top, rig_spec.network, f)
    task_t = top.table("task")
    task_table = dict(task_t.data)
    _check_task_voltages(make_task(task_table, network, np.random.default_rng(0), f), task_table, network,
                         rig_spec, f)  # validate now, against the rig's source limits too
    rt = top.table("rule")
    rt.refuse_renamed(RENAMED_RULE_KEYS)

    def rd(name: str) -> Any:
        return default(Rule, name)

    rule = Rule(
        kind=rt.str("kind", rd("kind"), choices=RULE_KINDS),
        eta=rt.float("eta", rd("eta"), lo=0.0, hi=1.0, lo_open=True),
        alpha=rt.float("alpha", rd("alpha"), lo=0.0, lo_open=True),
        deadband_siemens=rt.float("deadband_siemens", rd("deadband_siemens"), lo=0.0),
        max_taps=rt.int("max_taps", rd("max_taps"), lo=1, hi=rig_spec.part.max_code),
    )
    rt.finish()
    tt = top.table("train")

    def td(name: str) -> Any:
        return default(TrainSettings, name)

    train = TrainSettings(
        steps=tt.int("steps", td("steps"), lo=0, hi=10_000_000),
        batch=tt.int("batch", td("batch"), lo=1, hi=100_000),
        eval_every=tt.int("eval_every", td("eval_every"), lo=1),
        target_error=tt.float("target_error", td("target_error"), lo=0.0),
        settle_s=tt.float("settle_s", td("settle_s"), lo=0.0, hi=60.0),
        eval_train_max=tt.int("eval_train_max", td("eval_train_max"), lo=0),
    )
    tt.finish()
    extra = {k: top.raw(k) for k in ("analysis", "calibration") if top.has(k)}
    if extra:  # [analysis] -> AnalysisSettings, [calibration] -> {"table": path}
        extra = validate_extra(extra, f, network, rig_spec, file_seed if seed is None else seed)
    top.finish()
    if steps is not None:
        if not 0 <= steps <= 10_000_000:
            raise ConfigError("--steps", "steps", f"expected an integer in 0..10000000, got {steps}")
        train = TrainSettings(**{**train.__dict__, "steps": steps})
    if seed is not None:
        if seed < 0:
            raise ConfigError("--seed", "seed", f"expected a non-negative integer, got {seed}")
        file_seed = seed
    return Protocol(p, name, kind, file_seed, rig_spec, network, task_table, rule, train,
                    text=p.read_text(encoding="utf-8"), extra=extra)


def _check_task_voltages(task: Task, table: dict[str, Any], network: Network, rig: RigSpec, file: str) -> None:
    """Refuse a task whose input or target voltages exceed the source channels' limits.

    Inputs are driven at the input nodes; outputs are clamped between their free value and
    the target, so targets must be drivable by the output nodes' sources as well.
    """
    ranges = table.get("input_range_v")
    for role, nodes, arrays, key in (
        ("input", network.inputs, (task.train.inputs, task.test.inputs), "task.inputs_v"),
        ("output", network.outputs, (task.train.targets, task.test.targets), "task.targets_v"),
    ):
        worst = np.max(np.abs(np.concatenate(arrays)), axis=0)
        if role == "input" and isinstance(ranges, list) and len(ranges) == 2:
            worst = np.maximum(worst, max(abs(float(ranges[0])), abs(float(ranges[1]))))
            key = "task.input_range_v"
        if role == "output" and task.patterns is not None:
            key = "task.patterns_v" if "patterns_v" in table else "task"
        for node, v in zip(nodes, np.broadcast_to(worst, (len(nodes),))):
            ch = network.source_channels.get(node)
            if ch is None:
                raise ConfigError(file, "roles", f"{role} node {node!r} has no source channel in rig {rig.path}")
            lim = rig.limits.channel_limit(ch)
            if v > lim:
                raise ConfigError(file, key, f"{v:g} V at {role} node {node!r} exceeds the {lim:g} V limit of its "
                                  f"source channel {ch} (rig file {rig.path})")


def make_task(table: dict[str, Any], network: Network, rng: np.random.Generator, file: str) -> Task:
    """Build a Task from a protocol's ``[task]`` table, validating it against the network roles."""
    t = Table(table, file, "task")
    kind = t.str("kind", choices=TASK_KINDS)
    n_in, n_out = len(network.inputs), len(network.outputs)
    if n_in == 0 or n_out == 0:
        raise ConfigError(file, "roles", "the network needs at least one input and one output node for training")
    if kind == "allostery":
        x = t.floats("inputs_v", length=n_in, lo=-100, hi=100)
        y = t.floats("targets_v", length=n_out, lo=-100, hi=100)
        t.finish()
        return allostery(np.array(x), np.array(y))
    if kind == "regression":
        n_train = t.int("n_train", 100, lo=1, hi=1_000_000)
        n_test = t.int("n_test", 50, lo=1, hi=1_000_000)
        rng_in = t.floats("input_range_v", [0.0, 1.0], length=2, lo=-100, hi=100)
        if rng_in[0] >= rng_in[1]:
            raise t.error("input_range_v", f"expected [low, high] with low < high, got {rng_in}")
        w_rng = t.floats("weight_range", [0.05, 0.45], length=2, lo=0.0, hi=1.0)
        if w_rng[0] > w_rng[1]:
            raise t.error("weight_range", f"expected [low, high] with low <= high, got {w_rng}")
        row = t.float("max_row_sum", 0.8, lo=0.0, hi=1.0, lo_open=True)
        t.finish()
        task, _ = regression(n_in, n_out, n_train=n_train, n_test=n_test, rng=rng,
                             input_range_v=(rng_in[0], rng_in[1]), weight_range=(w_rng[0], w_rng[1]),
                             max_row_sum=row)
        return task
    # classification
    ds = t.str("dataset", "iris", choices=["iris"])
    if n_in != 4 or n_out != 3:
        raise ConfigError(file, "roles", f"{ds}: expected 4 input and 3 output nodes, got {n_in} and {n_out}")
    n_test = t.int("n_test", 30, lo=1, hi=149)
    rng_in = t.floats("input_range_v", [0.0, 1.0], length=2, lo=-100, hi=100)
    pats = None
    if t.has("patterns_v"):
        raw = t.raw("patterns_v")
        arr = np.asarray(raw, dtype=object)
        if arr.shape != (3, 3) or not all(isinstance(v, (int, float)) for v in arr.ravel()):
            raise t.error("patterns_v", "expected 3 rows of 3 voltages (one target pattern per class)")
        pats = np.asarray(raw, dtype=float)
    t.finish()
    return classification_iris(rng=rng, n_test=n_test, input_range_v=(rng_in[0], rng_in[1]), patterns_v=pats)
