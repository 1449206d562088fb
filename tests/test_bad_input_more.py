"""More bad input (issue 13, deliverable 6): every file labnet reads and the command line.

Same contract as tests/test_bad_input.py, whose spy this suite reuses (and extends to the
calibrate, probe and sweep commands): exit code 2, exactly one line on stderr
(``labnet: error: ...``) naming the file (or the argument) and the key, no traceback, and no
rig, simulator model, serial port, VISA resource manager or Dask cluster created.

Each case mutates one of five base files written into a fresh folder — a training protocol
(``p.toml``), the default rig (``rig.toml``, a copy of protocols/rigs/sim16.toml), a probe
protocol (``probe.toml``), a calibrate protocol (``cal.toml``) and a sweep (``sweep.toml``) —
or passes bad command-line arguments. Cases named ``*-validate`` run ``labnet validate``: what
a run would refuse, validation refuses too (issue 16's ``inputs_v = [1.0, -0.3]``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_bad_input import PROTOCOL, SIM16, Spy, _check, _run, after_line, sub

PROBE = """
[protocol]
name = "probe"
kind = "probe"
rig = "rig.toml"
seed = 1

[probe]
samples = 20
drive = ["n1", "n2", "n5", "n7"]
v_min = 0.0
v_max = 0.5
settle_s = 0.001
bootstrap = 50
"""

CAL = """
[protocol]
name = "cal"
kind = "calibrate"
rig = "rig.toml"
seed = 1

[calibration]
codes = [10, 28, 46, 63, 81, 99]
pairs = true
current_fraction = 0.5
scans = 2
settle_s = 0.001
scale = "source_current"
correction = "auto"
meter_input_ohm = 1e7
"""

SWEEP = """
[sweep]
name = "tiny"
seed = 0
chunk = 4

[base]
network = "random"
nodes = 12
edges = 20
steps = 10
eta = 0.5

[[axis]]
grid = { demand = [0.3, 0.6] }

[[axis]]
seeds = 2
"""

CLASSIFY = """
[roles]
inputs = ["n3", "n2", "n6", "n5"]
outputs = ["n1", "n4", "n7"]
"""

P, R, PR, C, S = "p.toml", "rig.toml", "probe.toml", "cal.toml", "sweep.toml"
BASES = {P: PROTOCOL, R: SIM16.read_text(), PR: PROBE, C: CAL, S: SWEEP}
ARGV = {
    P: ("run", "{tmp}/p.toml", "--quiet", "--out", "{tmp}/sessions"),
    R: ("run", "{tmp}/p.toml", "--quiet", "--out", "{tmp}/sessions"),
    PR: ("probe", "{tmp}/probe.toml", "--out", "{tmp}/sessions"),
    C: ("calibrate", "{tmp}/cal.toml", "--out", "{tmp}/sessions"),
    S: ("sweep", "{tmp}/sweep.toml", "--quiet", "--workers", "1", "--out", "{tmp}/sw"),
}
VALIDATE = ("validate", "{tmp}/p.toml")


@dataclass(frozen=True)
class Case:
    """A malformed input: which base file is changed and how, the command, what the line names."""

    id: str
    file: str = P
    change: Callable[[str], str] | None = None
    expect: tuple[str, ...] = ()
    argv: tuple[str, ...] | None = None  # default: the command that reads ``file``


def regression(extra: str = "") -> Callable[[str], str]:
    return sub('kind = "allostery"\ninputs_v = [1.0, 0.3]\ntargets_v = [0.25, 0.15]',
               'kind = "regression"\n' + extra)


def classification(extra: str = "") -> Callable[[str], str]:
    def f(text: str) -> str:
        text = sub('kind = "allostery"\ninputs_v = [1.0, 0.3]\ntargets_v = [0.25, 0.15]',
                   'kind = "classification"\ndataset = "iris"\ninput_range_v = [0.3, 1.0]\n' + extra)(text)
        return text.replace("[task]", CLASSIFY.strip() + "\n\n[task]", 1)

    return f


def both(*fs: Callable[[str], str]) -> Callable[[str], str]:
    def f(text: str) -> str:
        for g in fs:
            text = g(text)
        return text

    return f


def drop_table(header: str) -> Callable[[str], str]:
    """Remove the table ``[header]`` and its keys (up to the next table)."""

    def f(text: str) -> str:
        lines = text.splitlines()
        i = lines.index(f"[{header}]")
        j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("[")), len(lines))
        return "\n".join(lines[:i] + lines[j:]) + "\n"

    return f


IN, TG = "inputs_v = [1.0, 0.3]", "targets_v = [0.25, 0.15]"
EDGE = '["n6", "n7"],'
CHANNELS = "edge_channels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]"

CASES = [
    # ================================================================ training protocol: [task]
    Case("inputs-bool", change=sub(IN, "inputs_v = [true, 1.0]"), expect=(P, "task.inputs_v", "list of numbers")),
    Case("inputs-inf", change=sub(IN, "inputs_v = [inf, 0.3]"), expect=(P, "task.inputs_v", "finite")),
    Case("inputs-minus-inf", change=sub(IN, "inputs_v = [1.0, -inf]"), expect=(P, "task.inputs_v", "finite")),
    Case("inputs-nan-validate", change=sub(IN, "inputs_v = [1.0, nan]"), argv=VALIDATE,
         expect=(P, "task.inputs_v", "finite")),
    Case("targets-nan", change=sub(TG, "targets_v = [nan, 0.15]"), expect=(P, "task.targets_v", "finite")),
    Case("targets-bool", change=sub(TG, "targets_v = [0.25, false]"), expect=(P, "task.targets_v", "list of numbers")),
    Case("targets-inf", change=sub(TG, "targets_v = [0.25, inf]"), expect=(P, "task.targets_v", "finite")),
    Case("inputs-negative", change=sub(IN, "inputs_v = [1.0, -0.3]"), expect=(P, "task.inputs_v", "negative")),
    Case("inputs-negative-validate", change=sub(IN, "inputs_v = [1.0, -0.3]"), argv=VALIDATE,
         expect=(P, "task.inputs_v", "negative", "psu1.2")),
    Case("targets-negative-validate", change=sub(TG, "targets_v = [-0.25, 0.15]"), argv=VALIDATE,
         expect=(P, "task.targets_v", "negative")),
    Case("inputs-string-item", change=sub(IN, 'inputs_v = ["1.0", 0.3]'), expect=(P, "task.inputs_v", "list of numbers")),
    Case("inputs-nested", change=sub(IN, "inputs_v = [[1.0], 0.3]"), expect=(P, "task.inputs_v", "list of numbers")),
    Case("inputs-empty", change=sub(IN, "inputs_v = []"), expect=(P, "task.inputs_v", "2 values")),
    Case("inputs-too-many", change=sub(IN, "inputs_v = [1.0, 0.3, 0.2]"), expect=(P, "task.inputs_v", "2 values")),
    Case("inputs-table", change=sub(IN, "inputs_v = { a = 1.0 }"), expect=(P, "task.inputs_v", "list of numbers")),
    Case("task-missing", change=drop_table("task"), expect=(P, "task", "missing required key")),
    Case("task-unknown-key", change=sub(TG, TG + "\nweights = [1.0]"), expect=(P, "task.weights", "unknown key")),
    Case("task-kind-number", change=sub('kind = "allostery"', "kind = 1"), expect=(P, "task.kind", "string")),
    Case("regression-range-equal", change=regression("input_range_v = [0.5, 0.5]"),
         expect=(P, "task.input_range_v", "low < high")),
    Case("regression-range-negative", change=regression("input_range_v = [-0.5, 0.5]"), argv=VALIDATE,
         expect=(P, "task.input_range_v", "negative")),
    Case("regression-range-nan", change=regression("input_range_v = [nan, 0.5]"),
         expect=(P, "task.input_range_v", "finite")),
    Case("regression-n-train-zero", change=regression("n_train = 0"), expect=(P, "task.n_train", ">= 1")),
    Case("regression-weights-inverted", change=regression("weight_range = [0.4, 0.1]"),
         expect=(P, "task.weight_range", "low <= high")),
    Case("regression-row-sum-zero", change=regression("max_row_sum = 0.0"), expect=(P, "task.max_row_sum", "> 0")),
    Case("classification-two-inputs", change=sub('kind = "allostery"\ninputs_v = [1.0, 0.3]\ntargets_v = [0.25, 0.15]',
                                                'kind = "classification"'), expect=(P, "roles", "4 input")),
    Case("classification-dataset", change=both(classification(), sub('dataset = "iris"', 'dataset = "mnist"')),
         expect=(P, "task.dataset", "one of")),
    Case("classification-patterns-shape", change=classification("patterns_v = [[0.1, 0.2], [0.2, 0.3]]"),
         expect=(P, "task.patterns_v", "3 rows of 3")),
    Case("classification-patterns-bool", change=classification(
        "patterns_v = [[true, 0.2, 0.3], [0.2, 0.3, 0.4], [0.3, 0.4, 0.5]]"), expect=(P, "task.patterns_v", "3 rows of 3")),
    Case("classification-patterns-nan", change=classification(
        "patterns_v = [[nan, 0.2, 0.3], [0.2, 0.3, 0.4], [0.3, 0.4, 0.5]]"), expect=(P, "task.patterns_v", "finite")),
    Case("classification-patterns-negative", change=classification(
        "patterns_v = [[-0.1, 0.2, 0.3], [0.2, 0.3, 0.4], [0.3, 0.4, 0.5]]"), argv=VALIDATE,
        expect=(P, "task.patterns_v", "negative")),
    Case("classification-patterns-over-limit", change=classification(
        "patterns_v = [[0.1, 0.2, 3.0], [0.2, 0.3, 0.4], [0.3, 0.4, 0.5]]"), expect=(P, "task.patterns_v", "limit")),
    Case("classification-n-test-too-many", change=classification("n_test = 150"), expect=(P, "task.n_test", "<= 149")),
    # ================================================================ training protocol: other tables
    Case("protocol-unknown-key", change=sub("seed = 1", 'seed = 1\ncolour = "red"'), expect=(P, "protocol.colour", "unknown key")),
    Case("top-unknown-table", change=lambda t: t + "\n[extras]\nx = 1\n", expect=(P, "extras", "unknown key")),
    Case("protocol-name-number", change=sub('name = "bad"', "name = 5"), expect=(P, "protocol.name", "string")),
    Case("protocol-name-nul", change=sub('name = "bad"', 'name = "b\\u0000d"'), expect=(P, "protocol.name", "A-Za-z0-9_.-")),
    Case("protocol-name-path", change=sub('name = "bad"', 'name = "../../escape"'),
         expect=(P, "protocol.name", "A-Za-z0-9_.-")),
    Case("protocol-name-empty", change=sub('name = "bad"', 'name = ""'), expect=(P, "protocol.name", "1 to 64")),
    Case("protocol-not-table", change=lambda t: "protocol = 3\n" + t.replace("[protocol]\n", "[old]\n"),
         expect=(P, "protocol", "table")),
    Case("seed-float", change=sub("seed = 1", "seed = 1.5"), expect=(P, "protocol.seed", "integer")),
    Case("seed-bool", change=sub("seed = 1", "seed = true"), expect=(P, "protocol.seed", "integer")),
    Case("rig-not-string", change=sub('rig = "rig.toml"', "rig = 3"), expect=(P, "protocol.rig", "string")),
    Case("rig-is-folder", change=sub('rig = "rig.toml"', 'rig = "."'), expect=("protocol.rig", "not a file")),
    Case("steps-float", change=sub("steps = 3", "steps = 3.0"), expect=(P, "train.steps", "integer")),
    Case("steps-bool", change=sub("steps = 3", "steps = true"), expect=(P, "train.steps", "integer")),
    Case("steps-huge", change=sub("steps = 3", "steps = 100000000"), expect=(P, "train.steps", "<= 10000000")),
    Case("batch-huge", change=sub("batch = 1", "batch = 1000000"), expect=(P, "train.batch", "<= 100000")),
    Case("settle-negative", change=sub("settle_s = 0.001", "settle_s = -0.001"), expect=(P, "train.settle_s", ">= 0")),
    Case("settle-nan", change=sub("settle_s = 0.001", "settle_s = nan"), expect=(P, "train.settle_s", "finite")),
    Case("settle-inf", change=sub("settle_s = 0.001", "settle_s = inf"), expect=(P, "train.settle_s", "finite")),
    Case("target-error-negative", change=sub("steps = 3", "steps = 3\ntarget_error = -1.0"),
         expect=(P, "train.target_error", ">= 0")),
    Case("eval-train-max-negative", change=sub("steps = 3", "steps = 3\neval_train_max = -1"),
         expect=(P, "train.eval_train_max", ">= 0")),
    Case("train-missing", change=lambda t: t.replace("[train]", "[old_train]"), expect=(P, "train", "missing required key")),
    Case("eta-string", change=sub("eta = 0.5", 'eta = "half"'), expect=(P, "rule.eta", "number")),
    Case("eta-nan", change=sub("eta = 0.5", "eta = nan"), expect=(P, "rule.eta", "finite")),
    Case("alpha-inf", change=sub("alpha = 1e-3", "alpha = inf"), expect=(P, "rule.alpha", "finite")),
    Case("deadband-negative", change=sub("deadband_siemens = 1e-7", "deadband_siemens = -1e-7"),
         expect=(P, "rule.deadband_siemens", ">= 0")),
    Case("max-taps-over-part", change=sub("max_taps = 4", "max_taps = 500"), expect=(P, "rule.max_taps", "<= 99")),
    Case("max-taps-float", change=sub("max_taps = 4", "max_taps = 2.5"), expect=(P, "rule.max_taps", "integer")),
    Case("rule-unknown-key", change=sub("max_taps = 4", "max_taps = 4\nmomentum = 0.9"),
         expect=(P, "rule.momentum", "unknown key")),
    Case("roles-not-list", change=lambda t: t + '\n[roles]\ninputs = "n1"\n', expect=(P, "roles.inputs", "list")),
    Case("roles-duplicate-input", change=lambda t: t + '\n[roles]\ninputs = ["n1", "n1"]\n', expect=(P, "roles", "n1")),
    Case("roles-input-is-output", change=lambda t: t + '\n[roles]\ninputs = ["n1", "n3"]\n', expect=(P, "roles", "n3")),
    Case("roles-ground-input", change=lambda t: t + '\n[roles]\ninputs = ["n0", "n2"]\n', expect=(P, "roles", "n0")),
    Case("roles-no-source", change=lambda t: t + '\n[roles]\ninputs = ["n8", "n2"]\n', expect=(P, "roles", "n8")),
    Case("roles-unknown-key", change=lambda t: t + '\n[roles]\nnodes = ["n1"]\n', expect=(P, "roles.nodes", "unknown key")),
    Case("analysis-unknown-key", change=lambda t: t + "\n[analysis]\ntrack = 1\n", expect=(P, "analysis.track", "unknown key")),
    Case("analysis-track-every-zero", change=lambda t: t + "\n[analysis]\ntrack_every = 0\n",
         expect=(P, "analysis.track_every", ">= 1")),
    Case("analysis-probe-v-over-limit", change=lambda t: t + "\n[analysis]\nprobe_v_max = 5.0\n",
         expect=(P, "analysis.probe_v_max", "<= 1.0")),
    Case("analysis-probe-drive-ground", change=lambda t: t + '\n[analysis]\nprobe_drive = ["n0"]\n',
         expect=(P, "analysis.probe_drive", "n0")),
    Case("analysis-probe-drive-duplicate", change=lambda t: t + '\n[analysis]\nprobe_drive = ["n1", "n1"]\n',
         expect=(P, "analysis.probe_drive", "distinct")),
    Case("analysis-not-table", change=lambda t: "analysis = 1\n" + t, expect=(P, "analysis", "table")),
    Case("calibration-table-missing", change=lambda t: t + '\n[calibration]\ntable = "nope.csv"\n',
         expect=(P, "calibration.table", "not found")),
    Case("calibration-table-number", change=lambda t: t + "\n[calibration]\ntable = 3\n",
         expect=(P, "calibration.table", "string")),
    Case("protocol-file-not-utf8", change=lambda t: t.replace('name = "bad"', 'name = "b\udcffd"'),
         expect=(P, "cannot read file")),
    Case("protocol-file-nul-byte", change=lambda t: t.replace("seed = 1", "seed = 1\x00"), expect=(P, "malformed TOML")),
    Case("protocol-file-empty", change=lambda t: "", argv=VALIDATE, expect=(P, "neither a protocol")),
    # ================================================================ rig file
    Case("rig-name-nul", file=R, change=sub('name = "sim16"', 'name = "sim\\u000016"'), expect=(R, "rig.name", "A-Za-z0-9_.-")),
    Case("rig-transport", file=R, change=sub('transport = "wire"', 'transport = "usb"'), expect=(R, "rig.transport", "one of")),
    Case("rig-unknown-key", file=R, change=sub('transport = "wire"', 'transport = "wire"\nowner = "me"'),
         expect=(R, "rig.owner", "unknown key")),
    Case("rig-not-table", file=R, change=lambda t: "rig = 1\n" + t.replace("[rig]\n", "[old]\n"),
         expect=(R, "rig", "table")),
    Case("parts-missing", file=R, change=drop_table("parts"), expect=(R, "parts", "missing")),
    Case("limits-missing", file=R, change=drop_table("limits"), expect=(R, "limits", "missing")),
    Case("network-missing", file=R, change=drop_table("network"), expect=(R, "network", "missing")),
    Case("nodes-duplicate", file=R, change=sub('nodes = ["n0", "n1",', 'nodes = ["n0", "n1", "n1",'),
         expect=(R, "network", "n1")),
    Case("nodes-not-list", file=R, change=sub('nodes = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9"]',
                                             'nodes = "n0 n1"'), expect=(R, "network.nodes", "list")),
    Case("edge-unknown-node", file=R, change=sub(EDGE, EDGE + '\n    ["n6", "n77"],'), expect=(R, "network", "n77")),
    Case("edge-three-nodes", file=R, change=sub(EDGE, '["n6", "n7", "n8"],'), expect=(R, "network.edges[15]", "pair")),
    Case("edge-numbers", file=R, change=sub(EDGE, "[6, 7],"), expect=(R, "network.edges[15]", "pair")),
    Case("edges-empty", file=R, change=lambda t: t[:t.index("edges = [")] + "edges = []\n" + t[t.index("ground ="):],
         expect=(R, "network")),
    Case("ground-unknown", file=R, change=sub('ground = "n0"', 'ground = "n42"'), expect=(R, "network", "n42")),
    Case("ground-number", file=R, change=sub('ground = "n0"', "ground = 0"), expect=(R, "network.ground", "node name")),
    Case("edge-channels-short", file=R, change=sub(CHANNELS, CHANNELS.replace(", 15]", "]")),
         expect=(R, "network", "edge_channels")),
    Case("edge-channels-duplicate", file=R, change=sub(CHANNELS, CHANNELS.replace("[0, 1,", "[1, 1,")),
         expect=(R, "network", "edge_channels")),
    Case("edge-channels-negative", file=R, change=sub(CHANNELS, CHANNELS.replace("[0, 1,", "[-1, 1,")),
         expect=(R, "network", "edge_channels")),
    Case("edge-channels-bool", file=R, change=sub(CHANNELS, CHANNELS.replace("[0, 1,", "[false, 1,")),
         expect=(R, "network.edge_channels", "integers")),
    Case("meter-channel-duplicate", file=R, change=sub('n9 = "110"', 'n9 = "101"'), expect=(R, "meter_channels", "101")),
    Case("meter-channel-slot", file=R, change=sub('n9 = "110"', 'n9 = "410"'), expect=(R, "network.meter_channels.n9", "slot")),
    Case("meter-channel-unknown-node", file=R, change=sub('n9 = "110"', 'n9 = "110", n42 = "111"'),
         expect=(R, "meter_channels", "n42")),
    Case("source-channel-duplicate", file=R, change=sub('n7 = "smu.1"', 'n7 = "psu1.1"'),
         expect=(R, "source_channels", "psu1.1")),
    Case("source-channel-on-ground", file=R, change=sub('n7 = "smu.1"', 'n0 = "smu.1"'),
         expect=(R, "source_channels", "n0")),
    Case("source-channel-instrument", file=R, change=sub('n7 = "smu.1"', 'n7 = "psu9.1"'),
         expect=(R, "network.source_channels.n7", "instrument")),
    Case("source-channel-number", file=R, change=sub('n7 = "smu.1"', 'n7 = "smu.4"'),
         expect=(R, "network.source_channels.n7", "channels")),
    Case("part-not-string", file=R, change=sub('model = "X9C103"', "model = 103"), expect=(R, "parts.model", "string")),
    Case("initial-code-negative", file=R, change=sub("initial_code = 49", "initial_code = -1"),
         expect=(R, "parts.initial_code", ">= 0")),
    Case("initial-code-float", file=R, change=sub("initial_code = 49", "initial_code = 49.5"),
         expect=(R, "parts.initial_code", "integer")),
    Case("initial-code-over-part", file=R, change=sub("initial_code = 49", "initial_code = 150"),
         expect=(R, "parts.initial_code", "<= 99")),
    Case("parts-unknown-key", file=R, change=sub("initial_code = 49", "initial_code = 49\ncount = 16"),
         expect=(R, "parts.count", "unknown key")),
    Case("max-source-nan", file=R, change=sub("max_source_v = 1.0", "max_source_v = nan"),
         expect=(R, "limits.max_source_v", "finite")),
    Case("max-source-negative", file=R, change=sub("max_source_v = 1.0", "max_source_v = -1.0"),
         expect=(R, "limits.max_source_v", "> 0")),
    Case("max-source-over-hardware", file=R, change=sub("max_source_v = 1.0", "max_source_v = 10.0"),
         expect=(R, "limits.max_source_v", "6.0 V maximum")),
    Case("max-current-bool", file=R, change=sub("max_edge_current_a = 1e-3", "max_edge_current_a = true"),
         expect=(R, "limits.max_edge_current_a", "number")),
    Case("code-max-over-part", file=R, change=sub("code_max = 99", "code_max = 200"), expect=(R, "limits.code_max", "<= 99")),
    Case("code-min-negative", file=R, change=sub("code_min = 10", "code_min = -1"), expect=(R, "limits.code_min", ">= 0")),
    Case("channel-limit-negative", file=R, change=after_line("code_max", 'source_max_v = { "psu1.1" = -0.5 }'),
         expect=(R, "limits.source_max_v.psu1.1", ">= 0")),
    Case("limits-unknown-key", file=R, change=after_line("code_max", "max_power_w = 1.0"),
         expect=(R, "limits.max_power_w", "unknown key")),
    # ---------------------------------------------------------------- [simulator]: at validation, not in the model
    Case("sim-wiper-spread-over-one", file=R, change=sub("wiper_spread = 0.25", "wiper_spread = 1.5"),
         expect=(R, "simulator.wiper_spread", "< 1")),
    Case("sim-inl-huge", file=R, change=sub("inl_taps = 0.5", "inl_taps = 1000.0"), expect=(R, "simulator.inl_taps", "<=")),
    Case("sim-drift-period-zero", file=R, change=sub("drift_period_s = 3600.0", "drift_period_s = 0.0"),
         expect=(R, "simulator.drift_period_s", "> 0")),
    Case("sim-drift-huge", file=R, change=sub("drift_kelvin = 0.5", "drift_kelvin = 1e9"),
         expect=(R, "simulator.drift_kelvin", "<=")),
    Case("sim-gain-error-over-one", file=R, change=sub("source_gain_error = 5e-4", "source_gain_error = 1.5"),
         expect=(R, "simulator.source_gain_error", "< 1")),
    Case("sim-tolerance-number", file=R, change=sub("tolerance = true", "tolerance = 2"),
         expect=(R, "simulator.tolerance", "true or false")),
    Case("sim-seed-negative", file=R, change=sub("seed = 17", "seed = -17"), expect=(R, "simulator.seed", ">= 0")),
    Case("sim-seed-float", file=R, change=sub("seed = 17", "seed = 17.5"), expect=(R, "simulator.seed", "integer")),
    Case("sim-noise-inf", file=R, change=sub("meter_noise_v = 2e-5", "meter_noise_v = inf"),
         expect=(R, "simulator.meter_noise_v", "finite")),
    Case("sim-noise-huge", file=R, change=sub("meter_noise_v = 2e-5", "meter_noise_v = 1e6"),
         expect=(R, "simulator.meter_noise_v", "<=")),
    Case("sim-offset-huge", file=R, change=sub("source_offset_v = 1e-3", "source_offset_v = 50.0"),
         expect=(R, "simulator.source_offset_v", "<=")),
    Case("sim-input-ohm-negative", file=R, change=sub("meter_input_ohm = 1e7", "meter_input_ohm = -1e7"),
         expect=(R, "simulator.meter_input_ohm", ">= 0")),
    Case("sim-not-table", file=R, change=lambda t: "simulator = 1\n" + t.replace("[simulator]", "[old_sim]"),
         expect=(R, "simulator", "table")),
    # ---------------------------------------------------------------- [instruments]
    Case("board-baud", file=R, change=sub("baud = 115200", "baud = 12345"), expect=(R, "instruments.board.baud", "one of")),
    Case("board-timeout-zero", file=R, change=sub("timeout_s = 0.5", "timeout_s = 0.0"),
         expect=(R, "instruments.board.timeout_s", ">= 0.01")),
    Case("board-retries-huge", file=R, change=sub("retries = 4", "retries = 1000"),
         expect=(R, "instruments.board.retries", "<= 20")),
    Case("board-address-empty", file=R, change=sub('address = "sim://sim16"', 'address = ""'),
         expect=(R, "instruments.board.address", "non-empty")),
    Case("board-address-spaces", file=R, change=sub('address = "sim://sim16"', 'address = " sim://sim16"'),
         expect=(R, "instruments.board.address", "spaces")),
    Case("board-address-missing", file=R, change=sub('address = "sim://sim16"', ""),
         expect=(R, "instruments.board.address", "missing")),
    Case("board-unknown-key", file=R, change=sub("baud = 115200", "baud = 115200\nparity = 'N'"),
         expect=(R, "instruments.board.parity", "unknown key")),
    Case("meter-model", file=R, change=sub('model = "DAQ970A"', 'model = "DAQ6510"'),
         expect=(R, "instruments.meter.model", "one of")),
    Case("meter-nplc", file=R, change=sub("nplc = 1.0", "nplc = 3.0"), expect=(R, "instruments.meter.nplc", "one of")),
    Case("meter-range", file=R, change=sub("range_v = 1.0 ", "range_v = 5.0 "),
         expect=(R, "instruments.meter.range_v", "one of")),
    Case("meter-address-number", file=R, change=sub('address = "TCPIP0::sim16::daq::INSTR@sim"', "address = 5"),
         expect=(R, "instruments.meter.address", "string")),
    Case("source-model", file=R, change=sub('model = "Keithley2450"', 'model = "Keithley2400"'),
         expect=(R, "instruments.sources.smu.model", "one of")),
    Case("source-current-limit-zero", file=R, change=sub("current_limit_a = 0.001", "current_limit_a = 0.0"),
         expect=(R, "instruments.sources.smu.current_limit_a", "> 0")),
    Case("source-current-limit-over", file=R, change=sub("current_limit_a = 0.001", "current_limit_a = 2.0"),
         expect=(R, "instruments.sources.smu.current_limit_a", "<= 1.05")),
    Case("instruments-mixed", file=R, change=sub("TCPIP0::sim16::smu::INSTR@sim", "USB0::0x05E6::0x2450::04096331::INSTR"),
         expect=(R, "instruments", "mixes")),
    Case("rig-kind-bench-sim-addresses", file=R, change=sub('kind = "simulator"', 'kind = "bench"'),
         expect=(R, "rig.kind", "simulated")),
    Case("rig-file-nul-byte", file=R, change=lambda t: t.replace("code_max = 99", "code_max = 99\x00"),
         expect=(R, "malformed TOML")),
    Case("rig-validate-sim-spread", file=R, change=sub("wiper_spread = 0.25", "wiper_spread = 1.0"),
         argv=("validate", "{tmp}/rig.toml"), expect=(R, "simulator.wiper_spread", "< 1")),
    # ================================================================ probe protocol
    Case("probe-v-inverted", file=PR, change=sub("v_min = 0.0", "v_min = 0.6"), expect=(PR, "probe.v_max", "v_max > v_min")),
    Case("probe-v-negative", file=PR, change=sub("v_min = 0.0", "v_min = -0.5"), expect=(PR, "probe.v_min", "negative")),
    Case("probe-samples-two", file=PR, change=sub("samples = 20", "samples = 2"), expect=(PR, "probe.samples", ">= 3")),
    Case("probe-samples-float", file=PR, change=sub("samples = 20", "samples = 20.0"), expect=(PR, "probe.samples", "integer")),
    Case("probe-drive-duplicate", file=PR, change=sub('drive = ["n1", "n2", "n5", "n7"]', 'drive = ["n1", "n1"]'),
         expect=(PR, "probe.drive", "distinct")),
    Case("probe-drive-no-source", file=PR, change=sub('drive = ["n1", "n2", "n5", "n7"]', 'drive = ["n1", "n8"]'),
         expect=(PR, "probe.drive", "n8")),
    Case("probe-drive-empty", file=PR, change=sub('drive = ["n1", "n2", "n5", "n7"]', "drive = []"),
         expect=(PR, "probe.drive", "distinct")),
    Case("probe-bootstrap-negative", file=PR, change=sub("bootstrap = 50", "bootstrap = -1"),
         expect=(PR, "probe.bootstrap", ">= 0")),
    Case("probe-unknown-key", file=PR, change=sub("bootstrap = 50", "bootstrap = 50\nrepeat = 2"),
         expect=(PR, "probe.repeat", "unknown key")),
    Case("probe-v-max-nan", file=PR, change=sub("v_max = 0.5", "v_max = nan"), expect=(PR, "probe.v_max", "finite")),
    Case("probe-kind", file=PR, change=sub('kind = "probe"', 'kind = "train"'), expect=(PR, "protocol.kind", "one of")),
    Case("probe-calibration-missing", file=PR, change=lambda t: t + '\n[calibration]\ntable = "nope.csv"\n',
         expect=(PR, "calibration.table", "not found")),
    Case("probe-name-slash", file=PR, change=sub('name = "probe"', 'name = "a/b"'), expect=(PR, "protocol.name", "A-Za-z0-9_.-")),
    Case("probe-cli-samples-two", file=PR, argv=("probe", "{tmp}/probe.toml", "--samples", "2", "--out", "{tmp}/s"),
         expect=("--samples", "at least 3")),
    Case("probe-cli-samples-not-int", file=PR, argv=("probe", "{tmp}/probe.toml", "--samples", "many"),
         expect=("--samples", "invalid int")),
    Case("probe-validate-negative", file=PR, change=sub("v_min = 0.0", "v_min = -0.2"),
         argv=("validate", "{tmp}/probe.toml"), expect=(PR, "probe.v_min", "negative")),
    # ================================================================ calibrate protocol
    Case("cal-codes-below-limits", file=C, change=sub("codes = [10,", "codes = [5,"), expect=(C, "calibration.codes", ">= 10")),
    Case("cal-codes-fraction", file=C, change=sub("codes = [10, 28,", "codes = [10.5, 28,"),
         expect=(C, "calibration.codes", "integer")),
    Case("cal-codes-too-few", file=C, change=sub("codes = [10, 28, 46, 63, 81, 99]", "codes = [10, 10, 28]"),
         expect=(C, "calibration.codes", "3 distinct")),
    Case("cal-codes-above-limits", file=C, change=sub("81, 99]", "81, 120]"), expect=(C, "calibration.codes", "<= 99")),
    Case("cal-codes-string", file=C, change=sub("codes = [10, 28, 46, 63, 81, 99]", 'codes = "all"'),
         expect=(C, "calibration.codes", "list of numbers")),
    Case("cal-codes-bool", file=C, change=sub("codes = [10,", "codes = [true,"), expect=(C, "calibration.codes", "numbers")),
    Case("cal-fraction-zero", file=C, change=sub("current_fraction = 0.5", "current_fraction = 0.0"),
         expect=(C, "calibration.current_fraction", "> 0")),
    Case("cal-fraction-over-one", file=C, change=sub("current_fraction = 0.5", "current_fraction = 1.5"),
         expect=(C, "calibration.current_fraction", "<= 1")),
    Case("cal-scans-zero", file=C, change=sub("scans = 2", "scans = 0"), expect=(C, "calibration.scans", ">= 1")),
    Case("cal-scale", file=C, change=sub('scale = "source_current"', 'scale = "guess"'),
         expect=(C, "calibration.scale", "one of")),
    Case("cal-correction", file=C, change=sub('correction = "auto"', 'correction = "magic"'),
         expect=(C, "calibration.correction", "one of")),
    Case("cal-input-ohm-negative", file=C, change=sub("meter_input_ohm = 1e7", "meter_input_ohm = -1.0"),
         expect=(C, "calibration.meter_input_ohm", ">= 0")),
    Case("cal-pairs-string", file=C, change=sub("pairs = true", 'pairs = "yes"'), expect=(C, "calibration.pairs", "true or false")),
    Case("cal-settle-inf", file=C, change=sub("settle_s = 0.001", "settle_s = inf"), expect=(C, "calibration.settle_s", "finite")),
    Case("cal-unknown-key", file=C, change=sub("scans = 2", "scans = 2\nrepeats = 3"),
         expect=(C, "calibration.repeats", "unknown key")),
    Case("cal-top-unknown-table", file=C, change=lambda t: t + "\n[probe]\nsamples = 3\n", expect=(C, "probe", "unknown key")),
    Case("cal-kind", file=C, change=sub('kind = "calibrate"', 'kind = "probe"'), expect=(C, "protocol.kind", "one of")),
    # ================================================================ sweep file
    Case("sweep-unknown-param", file=S, change=sub("eta = 0.5", "eta = 0.5\nmomentum = 0.1"),
         expect=(S, "base.momentum", "unknown parameter")),
    Case("sweep-eta-zero", file=S, change=sub("eta = 0.5", "eta = 0.0"), expect=(S, "base.eta", ">=")),
    Case("sweep-nodes-bool", file=S, change=sub("nodes = 12", "nodes = true"), expect=(S, "base.nodes", "integer")),
    Case("sweep-axis-two-kinds", file=S, change=sub("seeds = 2", "seeds = 2\ngrid = { eta = [0.1] }"),
         expect=(S, "axis[1]", "exactly one")),
    Case("sweep-grid-empty", file=S, change=sub("grid = { demand = [0.3, 0.6] }", "grid = { demand = [] }"),
         expect=(S, "axis[0].grid.demand", "non-empty")),
    Case("sweep-random-inverted", file=S, change=sub("seeds = 2", 'random = { param = "eta", low = 0.9, high = 0.2, n = 2 }'),
         expect=(S, "axis[1].random", "low <= high")),
    Case("sweep-random-nan", file=S, change=sub("seeds = 2", 'random = { param = "eta", low = nan, high = 0.2, n = 2 }'),
         expect=(S, "axis[1].random.low", "finite")),
    Case("sweep-zip-unequal", file=S, change=sub("seeds = 2", "zip = { eta = [0.1, 0.2], alpha = [1e-3] }"),
         expect=(S, "axis[1]", "equal lengths")),
    Case("sweep-seeds-zero", file=S, change=sub("seeds = 2", "seeds = 0"), expect=(S, "axis[1].seeds", "at least 1")),
    Case("sweep-chunk-zero", file=S, change=sub("chunk = 4", "chunk = 0"), expect=(S, "sweep.chunk", ">= 1")),
    Case("sweep-edges-too-few", file=S, change=sub("edges = 20", "edges = 5"), expect=(S, "base.edges", "connected")),
    Case("sweep-k-inverted", file=S, change=sub("eta = 0.5", "eta = 0.5\nk_min_siemens = 1e-3\nk_max_siemens = 1e-6"),
         expect=(S, "base.k0_min_siemens", "k_min_siemens <=")),
    Case("sweep-tolerance-over", file=S, change=sub("eta = 0.5", "eta = 0.5\ntolerance = 1.5"),
         expect=(S, "base.tolerance", "<= 0.99")),
    Case("sweep-axis-not-table", file=S, change=lambda t: "axis = 3\n" + t.split("[[axis]]")[0],
         expect=(S, "axis", "[[axis]]")),
    Case("sweep-varied-twice", file=S, change=sub("seeds = 2", "grid = { demand = [0.1] }"), expect=(S, "axis", "two axes")),
    Case("sweep-name-nul", file=S, change=sub('name = "tiny"', 'name = "ti\\u0000ny"'), expect=(S, "sweep.name", "A-Za-z0-9_.-")),
    Case("sweep-cli-workers-zero", file=S, argv=("sweep", "{tmp}/sweep.toml", "--workers", "0", "--out", "{tmp}/sw"),
         expect=("--workers", "at least 1")),
    Case("sweep-cli-workers-not-int", file=S, argv=("sweep", "{tmp}/sweep.toml", "--workers", "two"),
         expect=("--workers", "invalid int")),
    # ================================================================ command line
    Case("cli-validate-missing", argv=("validate", "{tmp}/absent.toml"), expect=("absent.toml", "file not found")),
    Case("cli-validate-second-bad", change=sub("eta = 0.5", "eta = 2.0"), argv=("validate", "{tmp}/rig.toml", "{tmp}/p.toml"),
         expect=(P, "rule.eta", "<= 1")),
    Case("cli-report-missing", argv=("report", "{tmp}/no-session"), expect=("no-session", "not found")),
    Case("cli-report-not-session", argv=("report", "{tmp}"), expect=("session",)),
    Case("cli-report-a-file", argv=("report", "{tmp}/p.toml"), expect=("p.toml", "session")),
    Case("cli-resume-a-file", argv=("resume", "{tmp}/p.toml"), expect=("p.toml",)),
    Case("cli-calibrate-missing", argv=("calibrate", "{tmp}/absent.toml"), expect=("absent.toml", "file not found")),
    Case("cli-probe-missing", argv=("probe", "{tmp}/absent.toml"), expect=("absent.toml", "file not found")),
    Case("cli-sweep-missing", argv=("sweep", "{tmp}/absent.toml"), expect=("absent.toml", "file not found")),
    Case("cli-rig-is-folder", argv=("run", "{tmp}/p.toml", "--rig", "{tmp}", "--out", "{tmp}/s"),
         expect=("--rig", "a folder, not a rig file")),
    Case("cli-seed-not-int", argv=("run", "{tmp}/p.toml", "--seed", "x"), expect=("--seed", "invalid int")),
    Case("cli-steps-float", argv=("run", "{tmp}/p.toml", "--steps", "1.5"), expect=("--steps", "invalid int")),
    Case("cli-run-a-rig-file", argv=("run", "{tmp}/rig.toml", "--out", "{tmp}/s"), expect=(R, "protocol")),
    Case("cli-calibrate-train-protocol", argv=("calibrate", "{tmp}/p.toml", "--out", "{tmp}/s"),
         expect=(P, "protocol.kind", "one of")),
    Case("cli-probe-sweep-file", argv=("probe", "{tmp}/sweep.toml", "--out", "{tmp}/s"), expect=(S,)),
    Case("cli-run-sweep-file", argv=("run", "{tmp}/sweep.toml", "--out", "{tmp}/s"), expect=(S, "protocol")),
]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    """tests/test_bad_input.py's spy (rig builders, the simulator's model, serial ports, VISA), plus
    the calibrate, probe and sweep commands' entry points."""
    import pyvisa
    import serial

    import labnet.app.build
    import labnet.app.calibrate
    import labnet.app.probe_run
    import labnet.app.runner
    import labnet.app.sweep
    import simulator.breadboard

    s = Spy()
    for mod in (labnet.app.build, labnet.app.runner, labnet.app.calibrate, labnet.app.probe_run):
        if hasattr(mod, "build_rig"):  # every module that imported it by name
            monkeypatch.setattr(mod, "build_rig", s.hook("build_rig"))
    monkeypatch.setattr(labnet.app.sweep, "run_sweep", s.hook("run_sweep"))
    monkeypatch.setattr(simulator.breadboard.Breadboard, "__init__", s.hook("Breadboard"))
    monkeypatch.setattr(serial, "serial_for_url", s.hook("serial_for_url"))
    monkeypatch.setattr(serial, "Serial", s.hook("serial.Serial"))
    monkeypatch.setattr(pyvisa, "ResourceManager", s.hook("pyvisa.ResourceManager"))
    return s


def write_case(case: Case, folder: Path) -> list[str]:
    """Write the five base files (one changed) into ``folder``; the command line to run."""
    for name, text in BASES.items():
        if name == case.file and case.change is not None:
            text = case.change(text)
        (folder / name).write_text(text, encoding="utf-8", errors="surrogateescape")
    argv = case.argv if case.argv is not None else ARGV[case.file]
    return [a.format(tmp=folder) for a in argv]


def test_base_files_are_valid(tmp_path: Path) -> None:
    """The unchanged base files validate, so each case fails for its own change only."""
    from labnet.config.calibrate_file import load_calibrate_protocol
    from labnet.config.probe_file import load_probe_protocol
    from labnet.config.protocol import load_protocol
    from labnet.config.sweep_file import load_sweep

    write_case(Case("base"), tmp_path)
    assert load_protocol(tmp_path / P).train.steps == 3
    assert load_probe_protocol(tmp_path / PR).settings.samples == 20
    assert len(load_calibrate_protocol(tmp_path / C).settings.codes) == 6
    assert len(load_sweep(tmp_path / S).points) == 4
    (tmp_path / P).write_text(classification()(PROTOCOL))
    assert load_protocol(tmp_path / P).network.inputs == ("n3", "n2", "n6", "n5")
    (tmp_path / P).write_text(regression()(PROTOCOL))
    assert load_protocol(tmp_path / P).task_table["kind"] == "regression"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_more(case: Case, tmp_path: Path, spy: Spy, capsys: pytest.CaptureFixture) -> None:
    argv = write_case(case, tmp_path)
    code, err = _run(argv, capsys)
    _check(code, err, case.expect, spy)


def test_at_least_60_new_distinct_cases() -> None:
    from test_bad_input import CASES as OLD
    from test_bad_input import RESUME_CASES

    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids) >= 60
    assert not set(ids) & {c.id for c in OLD} and not set(ids) & set(RESUME_CASES)
    assert len(ids) + len(OLD) + len(RESUME_CASES) >= 100
