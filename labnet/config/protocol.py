"""Protocol files: what a lab runs (``protocols/*.toml``), validated before anything is touched.

A training protocol::

    [protocol]
    name = "allostery"
    kind = "train"
    rig = "rigs/sim16.toml"     # relative to this file
    seed = 1

    [roles]                     # optional: other input/output nodes on the same wiring
    inputs = ["n1", "n2"]; outputs = ["n3", "n4"]

    [task]
    kind = "allostery"          # allostery | regression | classification
    inputs_v = [1.0, 0.3]; targets_v = [0.42, 0.2]

    [rule]
    kind = "sign"               # sign | stochastic | coupled
    eta = 0.5; alpha = 1e-3     # alpha in S/V²
    deadband_siemens = 0.0      # S: |Δk| below it moves no tap (sign rule)
    max_taps = 4
    formula = "coupled"         # coupled | power_efficient: Δk = (α/η)[(1−λ)(ΔV^F)² − (ΔV^C)²] | ep (β below)
    power_lambda = 0.0          # λ of the power-efficient rule, 0..1
    update_probability = 1.0    # desynchronous updates: each edge moves with this probability
    update_order = "simultaneous"; update_groups = 1  # random: 1/groups of the edges per step, random order

    [train]
    steps = 300
    batch = 1
    eval_every = 10
    target_error = 0.0          # V²; stop early below it
    settle_s = 0.01
    keep = "final"              # final | best: end in the last state or the best evaluated one
    measurement = "auto"        # auto | fixed | planned | planned-reread: NPLC per state from the rule's dead band
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from labnet.config.analysis_file import validate_extra
from labnet.config.rigfile import RigSpec, load_rig
from labnet.config.schema import Table, default, read_toml
from labnet.config.shipped import default_rig_path
from labnet.config.task_limits import check_nudge, check_task_levels, input_kind
from labnet.core.errors import ConfigError
from labnet.core.network import Network, check_name
from labnet.core.rules import BENCH_FORMULAS, RULE_KINDS, Rule
from labnet.core.tasks import Samples, Task, allostery, classification, load_iris, regression
from labnet.core.update_order import UPDATE_ORDERS
from labnet.experiments.settings import KEEP_CHOICES, MEASUREMENT_CHOICES, TrainSettings, planning_problem

PROTOCOL_KINDS = ("train",)
TASK_KINDS = ("allostery", "regression", "classification", "samples")
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
    if head.has("name"):  # it names the session folder: no path separator, NUL or empty name
        check_name(name, head.file, head.key("name"), "protocol name")
    kind = head.str("kind", choices=kinds) if default_kind is None else head.str("kind", default_kind, choices=kinds)
    seed = head.int("seed", 0, lo=0)
    rig_rel = head.str("rig", "")
    head.finish()
    if rig is not None:
        rig_path = Path(rig)
        if rig_path.is_dir():
            raise ConfigError(str(rig_path), "--rig", "a folder, not a rig file")
    elif rig_rel:
        rig_path = Path(rig_rel) if Path(rig_rel).is_absolute() else path.parent / rig_rel
        if not rig_path.exists():
            raise head.error("rig", f"rig file {rig_path} not found")
        if not rig_path.is_file():
            raise head.error("rig", f"{rig_path} is not a file")
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
                  seed: int | None = None, keep: str | None = None) -> Protocol:
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
    check_task_levels(make_task(task_table, network, np.random.default_rng(0), f), task_table, network,
                         rig_spec, f)  # validate now, against the rig's source limits too
    rt = top.table("rule")
    rt.refuse_renamed(RENAMED_RULE_KEYS)

    rd: Callable[[str], Any] = lambda name: default(Rule, name)  # noqa: E731
    rule = Rule(
        kind=rt.str("kind", rd("kind"), choices=RULE_KINDS),
        eta=rt.float("eta", rd("eta"), lo=0.0, hi=1.0, lo_open=True),
        alpha=rt.float("alpha", rd("alpha"), lo=0.0, lo_open=True),
        deadband_siemens=rt.float("deadband_siemens", rd("deadband_siemens"), lo=0.0),
        max_taps=rt.int("max_taps", rd("max_taps"), lo=1, hi=rig_spec.part.max_code),
        formula=rt.str("formula", rd("formula"), choices=BENCH_FORMULAS),
        power_lambda=rt.float("power_lambda", rd("power_lambda"), lo=0.0, hi=1.0),
        beta_siemens=rt.float("beta_siemens", rd("beta_siemens"), lo=0.0),
        update_probability=rt.float("update_probability", rd("update_probability"), lo=0.0, hi=1.0, lo_open=True),
        update_order=rt.str("update_order", rd("update_order"), choices=UPDATE_ORDERS),
        update_groups=rt.int("update_groups", rd("update_groups"), lo=1, hi=len(network.edges)), order_seed=file_seed)
    if rule.power_lambda and rule.formula != "power_efficient":
        raise rt.error("power_lambda", 'only used with formula = "power_efficient"')
    check_nudge(rt, rule, network)
    rt.finish()
    tt = top.table("train")

    td: Callable[[str], Any] = lambda name: default(TrainSettings, name)  # noqa: E731
    train = TrainSettings(
        steps=tt.int("steps", td("steps"), lo=0, hi=10_000_000),
        batch=tt.int("batch", td("batch"), lo=1, hi=100_000),
        eval_every=tt.int("eval_every", td("eval_every"), lo=1),
        target_error=tt.float("target_error", td("target_error"), lo=0.0),
        settle_s=tt.float("settle_s", td("settle_s"), lo=0.0, hi=60.0),
        eval_train_max=tt.int("eval_train_max", td("eval_train_max"), lo=0),
        keep=tt.str("keep", td("keep"), choices=KEEP_CHOICES),
        measurement=tt.str("measurement", td("measurement"), choices=MEASUREMENT_CHOICES),
    )
    if problem := planning_problem(train.measurement, rule.kind, rule.deadband_siemens, rule.formula):
        raise tt.error("measurement", problem)
    tt.finish()
    for k in ("analysis", "calibration"):
        top.declare(k, "table", {})  # optional tables (key reference)
    extra = {k: top.raw(k) for k in ("analysis", "calibration") if top.has(k)}
    if extra:  # [analysis] -> AnalysisSettings, [calibration] -> {"table": path}; the CLI seed wins
        extra = validate_extra(extra, f, network, rig_spec, file_seed if seed is None else seed)
    top.finish()
    if steps is not None:
        if not 0 <= steps <= 10_000_000:
            raise ConfigError("--steps", "steps", f"expected an integer in 0..10000000, got {steps}")
        train = TrainSettings(**{**train.__dict__, "steps": steps})
    if keep is not None and keep not in KEEP_CHOICES:
        raise ConfigError("--keep", "keep", f"expected one of {', '.join(KEEP_CHOICES)}, got {keep!r}")
    train = train if keep is None else TrainSettings(**{**train.__dict__, "keep": keep})
    if seed is not None:
        if seed < 0:
            raise ConfigError("--seed", "seed", f"expected a non-negative integer, got {seed}")
        file_seed, rule = seed, replace(rule, order_seed=seed)
    return Protocol(p, name, kind, file_seed, rig_spec, network, task_table, rule, train,
                    text=p.read_text(encoding="utf-8"), extra=extra)


def make_task(table: dict[str, Any], network: Network, rng: np.random.Generator, file: str) -> Task:
    """Build a Task from a protocol's ``[task]`` table, validating it against the network roles."""
    t = Table(table, file, "task")
    kind = t.str("kind", choices=TASK_KINDS)
    n_in, n_out = len(network.inputs), len(network.outputs)
    if n_in == 0 or n_out == 0:
        raise ConfigError(file, "roles", "the network needs at least one input and one output node for training")
    if kind != "allostery" and any(n in network.current_channels for n in network.inputs):
        raise t.error("kind", f"{kind!r} with current-driven inputs (network.current_channels): only allostery "
                              "tasks (inputs_a) drive inputs by current so far")
    if kind == "allostery":
        x = t.floats("inputs_a", length=n_in, lo=-1.05, hi=1.05) if input_kind(t, network) == "a" else \
            t.floats("inputs_v", length=n_in, lo=-100, hi=100)
        y = t.floats("targets_v", length=n_out, lo=-100, hi=100)
        t.finish()
        return allostery(np.array(x), np.array(y))
    if kind == "samples":
        return _samples_task(t, network, file)
    if kind == "regression":
        n_train = t.int("n_train", 100, lo=1, hi=1_000_000)
        n_test = t.int("n_test", 50, lo=1, hi=1_000_000)
        rng_in = t.floats("input_range_v", [0.0, 1.0], length=2, lo=-100, hi=100)
        if rng_in[0] >= rng_in[1]:
            raise t.error("input_range_v", f"expected [low, high] with low < high, got {rng_in}")
        weights = _weights(t, n_in, n_out) if t.has("weights") else None
        if weights is not None and (t.has("weight_range") or t.has("max_row_sum")):
            raise t.error("weights", "give either weights (a fixed map) or weight_range/max_row_sum (a random one)")
        w_rng = t.floats("weight_range", [0.05, 0.45], length=2, lo=0.0, hi=1.0)
        if w_rng[0] > w_rng[1]:
            raise t.error("weight_range", f"expected [low, high] with low <= high, got {w_rng}")
        row = t.float("max_row_sum", 0.8, lo=0.0, hi=1.0, lo_open=True)
        t.finish()
        task, _ = regression(n_in, n_out, n_train=n_train, n_test=n_test, rng=rng,
                             input_range_v=(rng_in[0], rng_in[1]), weight_range=(w_rng[0], w_rng[1]),
                             max_row_sum=row, weights=weights)
        return task
    return _classification(t, n_in, n_out, rng, file)


def _weights(t: Table, n_in: int, n_out: int) -> np.ndarray:
    """``task.weights``: the map W (n_out rows of n_in numbers). A passive network driven at its inputs
    (ground at 0 V) gives each output a weighted mean of the inputs and 0 V, so W ≥ 0, row sums ≤ 1."""
    raw = t.raw("weights")
    if not (isinstance(raw, list) and len(raw) == n_out and all(isinstance(r, list) and len(r) == n_in for r in raw)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for r in raw for v in r)):
        raise t.error("weights", f"expected {n_out} rows (one per output) of {n_in} numbers (one per input)")
    w = np.asarray(raw, dtype=float)
    if not np.isfinite(w).all() or (w < 0).any() or (w.sum(axis=1) > 1.0).any():
        raise t.error("weights", "a passive network realises only weights >= 0 with row sums <= 1, got "
                                 f"row sums {np.round(w.sum(axis=1), 6).tolist()}, min {w.min():g}")
    return w


def _classification(t: Table, n_in: int, n_out: int, rng: np.random.Generator, file: str) -> Task:
    ds = t.str("dataset", "iris", choices=["iris", "csv"])
    if ds == "csv":
        x, y, names, where = _csv_dataset(t, file)
    else:
        x, y, names = load_iris()
        where = "iris"
    if x.shape[1] != n_in:
        raise ConfigError(file, "roles", f"{where}: {x.shape[1]} features need {x.shape[1]} input nodes, "
                          f"the network has {n_in}")
    if len(names) > n_out and not t.has("patterns_v"):
        raise ConfigError(file, "roles", f"{where}: {len(names)} classes need {len(names)} output nodes for the "
                          f"default patterns (or give task.patterns_v), the network has {n_out}")
    n_test = t.int("n_test", 30, lo=1, hi=max(1, len(y) - 1))
    rng_in = t.floats("input_range_v", [0.0, 1.0], length=2, lo=-100, hi=100)
    pats = None
    if t.has("patterns_v"):
        raw = t.raw("patterns_v")
        rows, cols = len(names), n_out
        if not (isinstance(raw, list) and len(raw) == rows and all(isinstance(r, list) and len(r) == cols for r in raw)
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for r in raw for v in r)):
            raise t.error("patterns_v", f"expected {rows} rows of {cols} voltages (one target pattern per class)")
        pats = np.asarray(raw, dtype=float)
        if not np.all(np.isfinite(pats)):
            raise t.error("patterns_v", f"expected finite numbers, got {raw!r}"[:120])
    t.finish()
    return classification(x, y, names, rng=rng, n_test=n_test, input_range_v=(rng_in[0], rng_in[1]),
                          patterns_v=pats, n_outputs=n_out, data_file="" if ds == "iris" else str(Path(where).resolve()))


#: A session's copy of a user's data file (``dataset = "csv"``, ``kind = "samples"``; a resumed run reads it).
SESSION_DATA = "dataset.csv"


def _data_path(t: Table, file: str) -> Path:
    rel = Path(t.str("path"))
    path = rel if rel.is_absolute() else Path(file).parent / rel
    copy = Path(file).parent / SESSION_DATA
    if not path.exists() and copy.exists():  # a session folder: the run's own copy of the data
        path = copy
    return path


def _samples_task(t: Table, network: Network, file: str) -> Task:
    """``kind = "samples"``: your own samples, a CSV with ``x_<input node>`` and ``y_<output node>``
    columns (V) and an optional ``split`` column (``train``/``test``; no test rows: test = train)."""
    import pandas as pd

    path = _data_path(t, file)
    t.finish()
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise t.error("path", f"samples file {path} not found") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise t.error("path", f"cannot read {path} as CSV ({str(exc).splitlines()[0][:80]})") from None
    xs, ys = [f"x_{n}" for n in network.inputs], [f"y_{n}" for n in network.outputs]
    missing = [c for c in (*xs, *ys) if c not in df.columns]
    if missing:
        raise t.error("path", f"{path}: missing columns {missing} (one x_<node> per input, y_<node> per output)")
    vals = df[xs + ys]
    if not all(pd.api.types.is_numeric_dtype(vals[c]) for c in vals.columns) or not np.isfinite(
            vals.to_numpy(dtype=float)).all():
        raise t.error("path", f"{path}: the x_/y_ columns must hold finite voltages")
    split = df["split"].astype(str).to_numpy() if "split" in df.columns else np.full(len(df), "train")
    if not set(split) <= {"train", "test"} or "train" not in set(split):
        raise t.error("path", f"{path}: split must be 'train' or 'test' with at least one train row")
    x, y = df[xs].to_numpy(dtype=float), df[ys].to_numpy(dtype=float)
    tr, te = split == "train", split == "test"
    train = Samples(x[tr], y[tr])
    test = Samples(x[te], y[te]) if te.any() else train
    return Task("samples", train, test, data_file=str(path.resolve()))


def _csv_dataset(t: Table, file: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], str]:
    """``dataset = "csv"``: ``path`` (relative to the protocol file) with a header row, one column of
    class labels (``label_column``, default the last) and numeric feature columns (all the others)."""
    import pandas as pd

    path = _data_path(t, file)
    label = t.str("label_column", "")
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise t.error("path", f"data file {path} not found") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise t.error("path", f"cannot read {path} as CSV ({str(exc).splitlines()[0][:80]})") from None
    label = label or str(df.columns[-1])
    if label not in df.columns:
        raise t.error("label_column", f"{path} has no column {label!r} (columns: {list(map(str, df.columns))})")
    feats = df.drop(columns=[label])
    bad = [str(c) for c in feats.columns if not pd.api.types.is_numeric_dtype(feats[c])]
    if bad or feats.shape[1] == 0:
        raise t.error("path", f"{path}: feature columns must be numeric, got non-numeric {bad}" if bad
                      else f"{path}: no feature columns besides {label!r}")
    x = feats.to_numpy(dtype=float)
    bad_rows = np.flatnonzero(~np.isfinite(x).all(axis=1) | df[label].isna().to_numpy())
    if bad_rows.size:
        raise t.error("path", f"{path}: empty or non-finite value in line {int(bad_rows[0]) + 2}")
    names = tuple(dict.fromkeys(map(str, df[label])))
    if len(names) < 2 or len(df) < 3:
        raise t.error("path", f"{path}: need at least 2 classes and 3 rows, got {len(names)} classes, {len(df)} rows")
    y = np.array([names.index(str(v)) for v in df[label]])
    return x, y, names, str(path)
