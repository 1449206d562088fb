"""Bad input: malformed protocol and rig files, CLI arguments and values out of range.

Every case must end with exit code 2, exactly one line on stderr (``labnet: error: ...``)
naming the file (or the argument) and the key, and **nothing sent to any instrument**: a spy
records every attempt to build a rig, create the simulator's physical model, open a serial
port or create a VISA resource manager — and none may happen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from labnet.app.cli import main

ROOT = Path(__file__).resolve().parent.parent
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"

PROTOCOL = """
[protocol]
name = "bad"
kind = "train"
rig = "rig.toml"
seed = 1

[task]
kind = "allostery"
inputs_v = [1.0, 0.3]
targets_v = [0.25, 0.15]

[rule]
kind = "sign"
eta = 0.5
alpha = 1e-3
deadband_siemens = 1e-7
max_taps = 4

[train]
steps = 3
batch = 1
eval_every = 1
settle_s = 0.001
"""


@dataclass(frozen=True)
class Case:
    """A malformed input: how to make it and what the error line must name."""

    id: str
    protocol: Callable[[str], str] | None = None  # mutation of the protocol text
    rig: Callable[[str], str] | None = None  # mutation of the rig text
    argv: tuple[str, ...] = ("run", "{protocol}", "--quiet", "--out", "{tmp}/sessions")
    expect: tuple[str, ...] = ()  # substrings of the error line (file, key, expectation)


def sub(old: str, new: str) -> Callable[[str], str]:
    """A mutation replacing ``old`` (which must occur) with ``new``."""

    def f(text: str) -> str:
        assert old in text, f"test setup: {old!r} not in the file"
        return text.replace(old, new, 1)

    return f


def after_line(start: str, extra: str) -> Callable[[str], str]:
    """A mutation adding ``extra`` on the line after the first line starting with ``start``."""

    def f(text: str) -> str:
        lines = text.splitlines()
        i = next(i for i, ln in enumerate(lines) if ln.startswith(start))
        return "\n".join(lines[: i + 1] + [extra] + lines[i + 1:]) + "\n"

    return f


def wiring(body: str) -> Callable[[str], str]:
    """A mutation appending a ``[simulator.wiring]`` table with ``body``."""

    def f(text: str) -> str:
        return text + "\n[simulator.wiring]\n" + body + "\n"

    return f


P = "p.toml"
R = "rig.toml"

CASES = [
    # ---------------------------------------------------------------- protocol files
    Case("toml-syntax", protocol=lambda t: t + "\n[train\n", expect=(P, "malformed TOML")),
    Case("no-protocol-table", protocol=sub("[protocol]\n", ""), expect=(P, "protocol", "missing required key")),
    Case("unknown-key", protocol=sub("steps = 3", "steps = 3\nstepz = 5"), expect=(P, "train.stepz", "unknown key")),
    Case("steps-negative", protocol=sub("steps = 3", "steps = -4"), expect=(P, "train.steps", ">= 0")),
    Case("steps-string", protocol=sub("steps = 3", 'steps = "ten"'), expect=(P, "train.steps", "integer")),
    Case("batch-zero", protocol=sub("batch = 1", "batch = 0"), expect=(P, "train.batch", ">= 1")),
    Case("settle-too-long", protocol=sub("settle_s = 0.001", "settle_s = 120.0"), expect=(P, "train.settle_s", "<= 60")),
    Case("eval-every-zero", protocol=sub("eval_every = 1", "eval_every = 0"), expect=(P, "train.eval_every", ">= 1")),
    Case("rule-kind", protocol=sub('kind = "sign"', 'kind = "hebbian"'), expect=(P, "rule.kind", "one of")),
    Case("eta-zero", protocol=sub("eta = 0.5", "eta = 0.0"), expect=(P, "rule.eta", "> 0")),
    Case("eta-above-one", protocol=sub("eta = 0.5", "eta = 1.5"), expect=(P, "rule.eta", "<= 1")),
    Case("alpha-negative", protocol=sub("alpha = 1e-3", "alpha = -1e-3"), expect=(P, "rule.alpha", "> 0")),
    Case("max-taps-zero", protocol=sub("max_taps = 4", "max_taps = 0"), expect=(P, "rule.max_taps", ">= 1")),
    Case("old-key-deadband-s", protocol=sub("deadband_siemens = 1e-7", "deadband_s = 1e-7"),
         expect=(P, "rule.deadband_s", "renamed", "rule.deadband_siemens")),
    Case("task-kind", protocol=sub('kind = "allostery"', 'kind = "xor"'), expect=(P, "task.kind", "one of")),
    Case("inputs-length", protocol=sub("inputs_v = [1.0, 0.3]", "inputs_v = [1.0]"),
         expect=(P, "task.inputs_v", "2 values")),
    Case("targets-not-list", protocol=sub("targets_v = [0.25, 0.15]", 'targets_v = "high"'),
         expect=(P, "task.targets_v", "list of numbers")),
    Case("input-over-source-limit", protocol=sub("inputs_v = [1.0, 0.3]", "inputs_v = [5.0, 0.3]"),
         expect=(P, "task.inputs_v", "exceeds the 1 V limit")),
    Case("target-over-source-limit", protocol=sub("targets_v = [0.25, 0.15]", "targets_v = [1.5, 0.15]"),
         expect=(P, "task.targets_v", "exceeds the 1 V limit")),
    Case("input-nan", protocol=sub("inputs_v = [1.0, 0.3]", "inputs_v = [nan, 0.3]"),
         expect=(P, "task.inputs_v", "finite")),
    Case("rig-file-missing", protocol=sub('rig = "rig.toml"', 'rig = "nowhere.toml"'),
         expect=(P, "protocol.rig", "not found")),
    Case("role-unknown-node", protocol=lambda t: t + '\n[roles]\ninputs = ["n1", "n42"]\n', expect=(P, "roles", "n42")),
    Case("seed-negative", protocol=sub("seed = 1", "seed = -1"), expect=(P, "protocol.seed", ">= 0")),
    Case("protocol-kind", protocol=sub('kind = "train"', 'kind = "dance"'), expect=(P, "protocol.kind", "one of")),
    Case("regression-range", protocol=sub('kind = "allostery"\ninputs_v = [1.0, 0.3]\ntargets_v = [0.25, 0.15]',
                                          'kind = "regression"\ninput_range_v = [0.8, 0.2]'),
         expect=(P, "task.input_range_v", "low < high")),
    # ---------------------------------------------------------------- rig files
    Case("old-key-drift-k", rig=sub("drift_kelvin = 0.5", "drift_k = 0.5"),
         expect=(R, "simulator.drift_k", "renamed", "simulator.drift_kelvin")),
    Case("rig-kind", rig=sub('kind = "simulator"', 'kind = "quantum"'), expect=(R, "rig.kind", "one of")),
    Case("mains-hz-55", rig=sub('kind = "simulator"', 'kind = "simulator"\nmains_hz = 55'),
         expect=(R, "rig.mains_hz", "one of [50, 60]", "55")),
    Case("mains-hz-float", rig=sub('kind = "simulator"', 'kind = "simulator"\nmains_hz = 50.0'),
         expect=(R, "rig.mains_hz", "integer")),
    Case("mains-hz-string", rig=sub('kind = "simulator"', 'kind = "simulator"\nmains_hz = "50Hz"'),
         expect=(R, "rig.mains_hz", "integer")),
    Case("part-unknown", rig=sub('model = "X9C103"', 'model = "X9C999"'), expect=(R, "parts.model", "unknown part")),
    Case("max-source-zero", rig=sub("max_source_v = 1.0", "max_source_v = 0.0"),
         expect=(R, "limits.max_source_v", "> 0")),
    Case("current-over-rating", rig=sub("max_edge_current_a = 1e-3", "max_edge_current_a = 5e-3"),
         expect=(R, "limits.max_edge_current_a", "rating")),
    Case("code-min-over-max", rig=sub("code_min = 10", "code_min = 99"), expect=(R, "limits.code_max", "code_max > code_min")),
    Case("channel-limit-unknown", rig=after_line("code_max", 'source_max_v = { "psu9.9" = 0.5 }'),
         expect=(R, "limits.source_max_v.psu9.9", "unknown source channel")),
    Case("channel-limit-above-max", rig=after_line("code_max", 'source_max_v = { "psu1.1" = 2.0 }'),
         expect=(R, "limits.source_max_v.psu1.1", "<= 1.0")),
    Case("initial-code-outside-limits", rig=sub("initial_code = 49", "initial_code = 5"),
         expect=(R, "parts.initial_code", "within limits")),
    Case("disconnected", rig=sub('nodes = ["n0",', 'nodes = ["n10", "n0",'), expect=(R, "network", "disconnected")),
    Case("self-loop", rig=sub('["n6", "n7"],', '["n6", "n7"],\n    ["n5", "n5"],'), expect=(R, "network", "self-loop")),
    Case("duplicate-edge", rig=sub('["n6", "n7"],', '["n6", "n7"],\n    ["n7", "n6"],'), expect=(R, "network", "duplicate")),
    Case("no-ground", rig=sub('ground = "n0"\n', ""), expect=(R, "network.ground", "missing")),
    Case("sim-negative", rig=sub("meter_noise_v = 2e-5", "meter_noise_v = -2e-5"),
         expect=(R, "simulator.meter_noise_v", ">= 0")),
    Case("sim-unknown-key", rig=after_line("drift_period_s", "warp_factor = 9"),
         expect=(R, "simulator.warp_factor", "unknown key")),
    # [simulator.wiring]: wiring faults for the simulator (labnet.config.wiring_file)
    Case("wiring-edge-out-of-range", rig=wiring("open_edges = [16]"),
         expect=(R, "simulator.wiring.open_edges[0]", "0..15")),
    Case("wiring-edge-not-int", rig=wiring('shorted_edges = ["n1-n4"]'),
         expect=(R, "simulator.wiring.shorted_edges[0]", "edge index")),
    Case("wiring-edges-not-list", rig=wiring("open_edges = 3"), expect=(R, "simulator.wiring.open_edges", "a list")),
    Case("wiring-open-and-shorted", rig=wiring("open_edges = [3]\nshorted_edges = [3]"),
         expect=(R, "simulator.wiring.shorted_edges", "both open and shorted")),
    Case("wiring-swap-not-pair", rig=wiring("swapped_edges = [[1, 2, 3]]"),
         expect=(R, "simulator.wiring.swapped_edges[0]", "pair")),
    Case("wiring-swap-same-edge", rig=wiring("swapped_edges = [[2, 2]]"),
         expect=(R, "simulator.wiring.swapped_edges[0]", "two different")),
    Case("wiring-swap-reused", rig=wiring("swapped_edges = [[1, 2], [2, 3]]"),
         expect=(R, "simulator.wiring.swapped_edges[1]", "already in another")),
    Case("wiring-meter-unknown-channel", rig=wiring('swapped_meter_channels = [["104", "199"]]'),
         expect=(R, "simulator.wiring.swapped_meter_channels[0]", "meter channels", "199")),
    Case("wiring-load-unknown-node", rig=wiring("loaded_nodes = { n42 = 100.0 }"),
         expect=(R, "simulator.wiring.loaded_nodes.n42", "unknown node")),
    Case("wiring-load-ground", rig=wiring("loaded_nodes = { n0 = 100.0 }"),
         expect=(R, "simulator.wiring.loaded_nodes.n0", "ground")),
    Case("wiring-load-zero-ohm", rig=wiring("loaded_nodes = { n3 = 0.0 }"),
         expect=(R, "simulator.wiring.loaded_nodes.n3", "> 0")),
    Case("wiring-unknown-key", rig=wiring("opened_edges = [1]"),
         expect=(R, "simulator.wiring.opened_edges", "unknown key")),
    # labnet doctor validates the rig file before it lists, opens or builds anything
    Case("doctor-bad-rig", rig=sub("code_min = 10", "code_min = 99"), argv=("doctor", "{tmp}/rig.toml"),
         expect=(R, "limits.code_max", "code_max > code_min")),
    Case("doctor-bad-wiring", rig=wiring("open_edges = [99]"), argv=("doctor", "{tmp}/rig.toml", "--json"),
         expect=(R, "simulator.wiring.open_edges[0]")),
    Case("doctor-missing-rig", argv=("doctor", "{tmp}/absent.toml"), expect=("absent.toml", "file not found")),
    Case("doctor-seed-negative", argv=("doctor", "{tmp}/rig.toml", "--seed", "-2"), expect=("--seed", "non-negative")),
    # names become CSV column names: only [A-Za-z0-9_.-], 1..64 characters
    Case("node-name-comma", rig=sub('"n9"]', '"n,9"]'), expect=(R, "network.nodes[9]", "A-Za-z0-9_.-")),
    Case("node-name-newline", rig=sub('"n9"]', '"n\\n9"]'), expect=(R, "network.nodes[9]", "A-Za-z0-9_.-")),
    Case("node-name-nul", rig=sub('"n9"]', '"n\\u00009"]'), expect=(R, "network.nodes[9]", "A-Za-z0-9_.-")),
    Case("node-name-quote", rig=sub('"n9"]', '"n\\"9"]'), expect=(R, "network.nodes[9]", "A-Za-z0-9_.-")),
    Case("node-name-empty", rig=sub('"n9"]', '""]'), expect=(R, "network.nodes[9]", "1 to 64")),
    Case("node-name-too-long", rig=sub('"n9"]', f'"{"n" * 65}"]'), expect=(R, "network.nodes[9]", "1 to 64")),
    Case("meter-channel-comma", rig=sub('n9 = "110"', 'n9 = "1,10"'),
         expect=(R, "network.meter_channels.n9", "channel name")),
    Case("source-channel-newline", rig=sub('n7 = "smu.1"', 'n7 = "smu\\n.1"'),
         expect=(R, "network.source_channels.n7", "channel name")),
    Case("rig-toml-syntax", rig=lambda t: t.replace("[limits]", "[limits"), expect=(R, "malformed TOML")),
    # ---------------------------------------------------------------- command line
    Case("cli-steps-not-int", argv=("run", "{protocol}", "--steps", "abc"), expect=("--steps", "invalid int")),
    Case("cli-steps-negative", argv=("run", "{protocol}", "--steps", "-3", "--out", "{tmp}/s"), expect=("--steps", "0..")),
    Case("cli-steps-huge", argv=("run", "{protocol}", "--steps", "100000000", "--out", "{tmp}/s"),
         expect=("--steps", "0..10000000")),
    Case("cli-seed-negative", argv=("run", "{protocol}", "--seed", "-1", "--out", "{tmp}/s"), expect=("--seed", "non-negative")),
    Case("cli-unknown-option", argv=("run", "{protocol}", "--turbo"), expect=("--turbo",)),
    Case("cli-missing-protocol", argv=("run",), expect=("protocol",)),
    Case("cli-protocol-missing-file", argv=("run", "{tmp}/absent.toml"), expect=("absent.toml", "file not found")),
    Case("cli-rig-missing-file", argv=("run", "{protocol}", "--rig", "{tmp}/norig.toml", "--out", "{tmp}/s"),
         expect=("norig.toml", "file not found")),
    Case("cli-unknown-command", argv=("fly",), expect=("fly",)),
    Case("cli-out-is-a-file", argv=("run", "{protocol}", "--quiet", "--out", "{tmp}/p.toml"),
         expect=("p.toml", "--out", "cannot create the session folder")),
    Case("validate-neither", protocol=lambda t: "[other]\nx = 1\n", argv=("validate", "{protocol}"),
         expect=(P, "neither a protocol")),
    # ---------------------------------------------------------------- resume
    Case("resume-no-folder", argv=("resume", "{tmp}/no-such-session"), expect=("no-such-session", "not found")),
    Case("resume-not-a-session", argv=("resume", "{tmp}"), expect=("protocol.toml", "missing from the session folder")),
]

# ---------------------------------------------------------------- release keys (labnet/config/release_file.py)
#: a switch release on sim16's network: X9C parts take all 16 chip selects, so only the pin check
#: fails it; the MCP4251 variant below is valid apart from the key each case breaks
SWITCH = '\n[release]\nmethod = "switch"\nswitch_part = "ADG412"\nswitch_channels = { n3 = 0, n4 = 1 }\n'


def mcp_switch(mutate: Callable[[str], str] = lambda t: t) -> Callable[[str], str]:
    """sim16 on MCP4251-103 parts with the switch release, then ``mutate``."""

    def f(text: str) -> str:
        text = text.replace('model = "X9C103"', 'model = "MCP4251-103"').replace("code_max = 99", "code_max = 256")
        return mutate(text.replace("[instruments.board]", SWITCH + "\n[instruments.board]", 1))

    return f


RELEASE_CASES = [
    Case("release-method", rig=lambda t: t + '\n[release]\nmethod = "teleport"\n', expect=(R, "release.method", "one of")),
    Case("release-unknown-key", rig=mcp_switch(sub('switch_part = "ADG412"', 'switch_part = "ADG412"\nswich = 1')),
         expect=(R, "release.swich", "unknown key")),
    Case("switch-part-unknown", rig=mcp_switch(sub('"ADG412"', '"ADG999"')), expect=(R, "release.switch_part", "one of")),
    Case("switch-part-missing", rig=mcp_switch(sub('switch_part = "ADG412"\n', "")),
         expect=(R, "release.switch_part", "missing")),
    Case("switch-channels-missing", rig=mcp_switch(sub("switch_channels = { n3 = 0, n4 = 1 }\n", "")),
         expect=(R, "release.switch_channels", "missing")),
    Case("switch-channels-empty", rig=mcp_switch(sub("{ n3 = 0, n4 = 1 }", "{}")),
         expect=(R, "release.switch_channels", "at least one")),
    Case("switch-channel-negative", rig=mcp_switch(sub("n3 = 0,", "n3 = -1,")),
         expect=(R, "release.switch_channels.n3", ">= 0")),
    Case("switch-channel-above-8", rig=mcp_switch(sub("n3 = 0,", "n3 = 8,")),
         expect=(R, "release.switch_channels.n3", "<= 7")),
    Case("switch-channel-string", rig=mcp_switch(sub("n3 = 0,", 'n3 = "A0",')),
         expect=(R, "release.switch_channels.n3", "integer")),
    Case("switch-node-unknown", rig=mcp_switch(sub("n4 = 1 }", "n4 = 1, n42 = 2 }")),
         expect=(R, "release.switch_channels.n42", "source channel")),
    Case("switch-node-ground", rig=mcp_switch(sub("n4 = 1 }", "n4 = 1, n0 = 2 }")),
         expect=(R, "release.switch_channels.n0", "source channel")),
    Case("switch-channel-twice", rig=mcp_switch(sub("n4 = 1 }", "n4 = 0 }")),
         expect=(R, "release.switch_channels", "used twice")),
    Case("switch-output-missing", rig=mcp_switch(sub("{ n3 = 0, n4 = 1 }", "{ n3 = 0 }")),
         expect=(R, "release.switch_channels", "every output needs a switch", "n4")),
    Case("switch-pins-x9c", rig=lambda t: t.replace("[instruments.board]", SWITCH + "\n[instruments.board]", 1),
         expect=(R, "release.switch_channels", "16 X9C chips", "18 chip-select pins", "has 16")),
    Case("switch-keys-without-method", rig=lambda t: t + '\n[release]\nswitch_part = "ADG412"\n',
         expect=(R, "release.switch_part", 'only with method = "switch"')),
    Case("off-resistance-zero", rig=after_line('address = "TCPIP0::sim16::psu1', "off_resistance_ohm = 0.0"),
         expect=(R, "instruments.sources.psu1.off_resistance_ohm", "> 0")),
    Case("off-resistance-string", rig=after_line('address = "TCPIP0::sim16::psu1', 'off_resistance_ohm = "low"'),
         expect=(R, "instruments.sources.psu1.off_resistance_ohm", "number")),
    Case("off-resistance-inf", rig=after_line('address = "TCPIP0::sim16::psu2', "off_resistance_ohm = inf"),
         expect=(R, "instruments.sources.psu2.off_resistance_ohm", "finite")),
    Case("off-resistance-on-2450", rig=after_line('address = "TCPIP0::sim16::smu', "off_resistance_ohm = 10.0"),
         expect=(R, "instruments.sources.smu.off_resistance_ohm", "off_state")),
    Case("off-state-on-e36312a", rig=after_line('address = "TCPIP0::sim16::psu1', 'off_state = "HIMP"'),
         expect=(R, "instruments.sources.psu1.off_state", "only for a Keithley2450")),
    Case("off-state-unknown", rig=after_line('address = "TCPIP0::sim16::smu', 'off_state = "GUAR"'),
         expect=(R, "instruments.sources.smu.off_state", "one of")),
]
CASES += RELEASE_CASES



class Spy:
    """Records every way labnet could reach an instrument."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def hook(self, name: str) -> Callable:
        def f(*args, **kwargs):
            self.calls.append(name)
            raise AssertionError(f"{name} reached during bad-input handling")

        return f


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    import pyvisa
    import serial

    import labnet.app.build
    import labnet.app.runner
    import simulator.breadboard

    s = Spy()
    monkeypatch.setattr(labnet.app.build, "build_rig", s.hook("build_rig"))
    monkeypatch.setattr(labnet.app.runner, "build_rig", s.hook("build_rig"))
    monkeypatch.setattr(simulator.breadboard.Breadboard, "__init__", s.hook("Breadboard"))
    monkeypatch.setattr(serial, "serial_for_url", s.hook("serial_for_url"))
    monkeypatch.setattr(serial, "Serial", s.hook("serial.Serial"))
    monkeypatch.setattr(pyvisa, "ResourceManager", s.hook("pyvisa.ResourceManager"))
    return s


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    return code, capsys.readouterr().err


def _check(code: int, err: str, expect: tuple[str, ...], spy: Spy) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    assert lines[0].startswith("labnet: error: ")
    for s in expect:
        assert s in lines[0], f"{s!r} not in {lines[0]!r}"
    assert spy.calls == []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, spy: Spy, capsys: pytest.CaptureFixture) -> None:
    proto = PROTOCOL if case.protocol is None else case.protocol(PROTOCOL)
    rig = SIM16.read_text() if case.rig is None else case.rig(SIM16.read_text())
    (tmp_path / P).write_text(proto)
    (tmp_path / R).write_text(rig)
    argv = [a.format(protocol=tmp_path / P, tmp=tmp_path) for a in case.argv]
    code, err = _run(argv, capsys)
    _check(code, err, case.expect, spy)


def test_at_least_30_distinct_cases() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 30


# ---------------------------------------------------------------- sessions that cannot be resumed
@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short completed run, made before any spy is installed."""
    from labnet.app.runner import run_protocol
    from labnet.config.protocol import load_protocol

    d = tmp_path_factory.mktemp("done")
    (d / R).write_text(SIM16.read_text())
    (d / P).write_text(PROTOCOL)
    return run_protocol(load_protocol(d / P), session_dir=d / "session", progress=False).session


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _edit_checkpoint(change: Callable[[dict], None]) -> Callable[[Path], None]:
    """A damage: load checkpoint.json, ``change`` it, write it back."""

    def f(folder: Path) -> None:
        ck = json.loads((folder / "checkpoint.json").read_text())
        change(ck)
        (folder / "checkpoint.json").write_text(json.dumps(ck))

    return f


RESUME_CASES = {
    # the checkpoint is checked against the parts the rig file will have, before anything is built
    "resume-checkpoint-missing-entry": (_edit_checkpoint(lambda ck: ck["state"]["simulator"].pop("faults")),
                                        ("checkpoint.json", "state.simulator.faults", "missing entry")),
    "resume-checkpoint-unknown-entry": (_edit_checkpoint(lambda ck: ck["state"]["drivers"].update(psu9={})),
                                        ("checkpoint.json", "state.drivers.psu9", "unknown entry")),
    "resume-checkpoint-mistyped-entry": (_edit_checkpoint(lambda ck: ck["state"]["rig"].update(held=[1.0])),
                                         ("checkpoint.json", "state.rig.held", "expected object, got list")),
    "resume-checkpoint-missing-state": (_edit_checkpoint(lambda ck: ck.pop("state")),
                                        ("checkpoint.json", "state: missing entry")),
    "resume-checkpoint-mistyped-engine": (_edit_checkpoint(lambda ck: ck["engine"].update(rng="PCG64")),
                                          ("checkpoint.json", "engine.rng", "expected object, got str")),
    "resume-checkpoint-old-format": (_edit_checkpoint(lambda ck: ck.update(format=1)),
                                     ("checkpoint.json", "format 1", "older labnet")),
    "resume-completed": (lambda f: None, ("already completed",)),
    "resume-bad-run-record": (lambda f: (f / "run.json").write_text("{ not json"), ("run.json", "unreadable")),
    "resume-bad-checkpoint": (lambda f: (f / "checkpoint.json").write_text('{"format": 99}'),
                              ("checkpoint.json", "unsupported checkpoint format")),
    "resume-bad-protocol-copy": (lambda f: (f / "protocol.toml").write_text("[protocol\n"),
                                 ("protocol.toml", "malformed TOML")),
    "resume-missing-rig-copy": (lambda f: (f / "rig.toml").unlink(), ("rig.toml", "missing")),
}


@pytest.mark.parametrize("name", sorted(RESUME_CASES))
def test_bad_resume(name: str, finished: Path, tmp_path: Path, spy: Spy, capsys: pytest.CaptureFixture) -> None:
    folder = _copy(finished, tmp_path / "s")
    damage, expect = RESUME_CASES[name]
    if name != "resume-completed":  # make it look like a crashed run, then damage it
        st = json.loads((folder / "status.json").read_text())
        st.update(status="failed", reason="test")
        (folder / "status.json").write_text(json.dumps(st))
    damage(folder)
    code, err = _run(["resume", str(folder)], capsys)
    _check(code, err, expect, spy)


def test_total_cases_at_least_30() -> None:
    n = len(CASES) + len(RESUME_CASES)
    assert n >= 30
    assert all(re.fullmatch(r"[a-z0-9-]+", c.id) for c in CASES)
