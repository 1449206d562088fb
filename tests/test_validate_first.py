"""Every command validates before it opens anything: calibrate, probe, report (issue 13).

Each case: exit code 2, one line on stderr naming the file or argument and what is wrong, no
traceback, and no rig built, no simulator model, serial port or VISA resource manager created
(the spy of tests/test_bad_input.py; calibrate and probe look ``build_rig`` up in
:mod:`labnet.app.build` when they call it). Before, ``calibrate`` and ``probe`` built and opened the rig
first: ``--out`` an existing file or ``--codes-from`` a folder of another network gave
tracebacks after the port and VISA were open; ``report`` of a calibrate session a KeyError.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from test_bad_input import PROTOCOL, Spy, _check, _run, spy  # noqa: F401 - spy is a fixture

ROOT = Path(__file__).resolve().parent.parent
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"
CAL = ROOT / "protocols" / "calibrate.toml"
PRB = ROOT / "protocols" / "probe.toml"


def _session(d: Path, name: str, rig_text: str, steps: int = 1) -> Path:
    from labnet.app.runner import run_protocol
    from labnet.config.protocol import load_protocol

    (d / f"{name}-rig.toml").write_text(rig_text)
    (d / f"{name}.toml").write_text(PROTOCOL.replace('rig = "rig.toml"', f'rig = "{name}-rig.toml"').replace(
        "steps = 3", f"steps = {steps}"))
    return run_protocol(load_protocol(d / f"{name}.toml"), session_dir=d / name, progress=False).session


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real sessions made before any spy: one on the default rig, one on another network
    (the same breadboard with edge n6-n7 wired the other way round), a probe session."""
    from labnet.app.probe_run import run_probe_protocol
    from labnet.config.probe_file import load_probe_protocol

    d = tmp_path_factory.mktemp("sessions")
    text = SIM16.read_text()
    out = {"sim16": _session(d, "sim16", text),
           "other": _session(d, "other", text.replace('["n6", "n7"],\n]', '["n7", "n6"],\n]'))}
    (d / "probe.toml").write_text(PRB.read_text().replace('rig = "rigs/sim16.toml"', f'rig = "{SIM16}"'))
    out["probe"] = run_probe_protocol(load_probe_protocol(d / "probe.toml"), d / "probes", samples=12)[1]
    return out


def _copy_with(src: Path, dst: Path, edit: Callable[[Path], None]) -> Path:
    import shutil

    shutil.copytree(src, dst)
    edit(dst)
    return dst


def _last_code(value: str) -> Callable[[Path], None]:
    """Set the first code cell of the CSV's last row to ``value``."""

    def f(folder: Path) -> None:
        csv = folder / "session.csv"
        lines = csv.read_text().splitlines(keepends=True)
        cols = next(ln for ln in lines if not ln.startswith("#")).rstrip("\n").split(",")
        i = next(i for i in range(len(lines) - 1, -1, -1) if not lines[i].startswith("#"))
        cells = lines[i].rstrip("\n").split(",")
        cells[cols.index("code_e0")] = value
        lines[i] = ",".join(cells) + "\n"
        csv.write_text("".join(lines))

    return f


def _header_only(folder: Path) -> None:
    csv = folder / "session.csv"
    lines = csv.read_text().splitlines(keepends=True)
    n = next(i for i, ln in enumerate(lines) if not ln.startswith("#"))
    csv.write_text("".join(lines[: n + 1]))


def _drop_column(name: str) -> Callable[[Path], None]:
    def f(folder: Path) -> None:
        import pandas as pd

        from labnet.session.folder import read_header

        csv = folder / "session.csv"
        header = read_header(csv)
        df = pd.read_csv(csv, comment="#").drop(columns=[name])
        csv.write_text("".join(f"# {k}: {json.dumps(v)}\n" for k, v in header.items()) + df.to_csv(index=False))

    return f


# (argv with {tmp}/{sim16}/{other}/{probe}/{cal}/{prb}/{file} placeholders, folder edit or None, expected)
CASES: dict[str, tuple[tuple[str, ...], Callable[[Path], None] | None, tuple[str, ...]]] = {
    "calibrate-out-is-a-file": (("calibrate", "{cal}", "--out", "{file}"), None,
                                ("afile", "--out", "cannot create the session folder")),
    "calibrate-out-under-a-file": (("calibrate", "{cal}", "--out", "{file}/sub"), None, ("afile/sub", "--out")),
    "calibrate-rig-file-missing": (("calibrate", "{cal}", "--rig", "{tmp}/none.toml", "--out", "{tmp}/s"), None,
                                   ("none.toml", "file not found")),
    "calibrate-not-a-protocol": (("calibrate", "{file}", "--out", "{tmp}/s"), None, ("afile",)),
    "probe-out-is-a-file": (("probe", "{prb}", "--samples", "5", "--out", "{file}"), None,
                            ("afile", "--out", "cannot create the session folder")),
    "probe-samples-too-few": (("probe", "{prb}", "--samples", "2", "--out", "{tmp}/s"), None, ("--samples", "at least 3")),
    "probe-codes-from-missing": (("probe", "{prb}", "--codes-from", "{tmp}/nowhere", "--out", "{tmp}/s"), None,
                                 ("nowhere", "--codes-from", "not found")),
    "probe-codes-from-no-csv": (("probe", "{prb}", "--codes-from", "{tmp}", "--out", "{tmp}/s"), None,
                                ("--codes-from", "no session.csv")),
    "probe-codes-from-other-network": (("probe", "{prb}", "--codes-from", "{other}", "--out", "{tmp}/s"), None,
                                       ("session.csv", "--codes-from", "not the probe rig's")),
    "probe-codes-from-code-over-limit": (("probe", "{prb}", "--codes-from", "{edited}", "--out", "{tmp}/s"),
                                         _last_code("120"), ("--codes-from", "edge 0", "10..99")),
    "probe-codes-from-code-under-limit": (("probe", "{prb}", "--codes-from", "{edited}", "--out", "{tmp}/s"),
                                          _last_code("3"), ("--codes-from", "edge 0", "3.0")),
    "probe-codes-from-code-text": (("probe", "{prb}", "--codes-from", "{edited}", "--out", "{tmp}/s"),
                                   _last_code("x"), ("--codes-from", "edge 0")),
    "probe-codes-from-no-rows": (("probe", "{prb}", "--codes-from", "{edited}", "--out", "{tmp}/s"), _header_only,
                                 ("--codes-from", "no rows")),
    "probe-codes-from-no-code-column": (("probe", "{prb}", "--codes-from", "{edited}", "--out", "{tmp}/s"),
                                        _drop_column("code_e3"), ("--codes-from", "code_e3")),
    "probe-codes-from-no-header": (("probe", "{prb}", "--codes-from", "{edited}", "--out", "{tmp}/s"),
                                   lambda f: (f / "session.csv").write_text("a,b\n1,2\n"),
                                   ("--codes-from", "network (none)")),
    "report-folder-missing": (("report", "{tmp}/nowhere"), None, ("nowhere", "not found")),
    "report-a-file": (("report", "{file}"), None, ("afile", "not found")),
    "report-no-csv": (("report", "{tmp}"), None, ("session.csv", "missing")),
    "report-not-a-session-csv": (("report", "{edited}"), lambda f: (f / "session.csv").write_text("a,b\n1,2\n"),
                                 ("labnet_session", "not a labnet session")),
    "report-binary-garbage": (("report", "{edited}"), lambda f: (f / "session.csv").write_bytes(b"\xff\xfe\x00" * 50),
                              ("session.csv", "unreadable")),
    "report-column-missing": (("report", "{edited}"), _drop_column("phase"), ("phase", "column missing")),
    # a probe session and a CSV without rows are reported (a probe page, a partial page):
    # tests/test_report_kinds.py
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_command_validates_before_it_opens_anything(name: str, sessions: dict[str, Path], tmp_path: Path,
                                                    spy: Spy, capsys: pytest.CaptureFixture) -> None:  # noqa: F811
    argv, edit, expect = CASES[name]
    (tmp_path / "afile").write_text("not a folder\n")
    edited = _copy_with(sessions["sim16"], tmp_path / "edited", edit) if edit is not None else tmp_path / "edited"
    fmt = {"tmp": tmp_path, "sim16": sessions["sim16"], "other": sessions["other"], "probe": sessions["probe"],
           "cal": CAL, "prb": PRB, "file": tmp_path / "afile", "edited": edited}
    code, err = _run([a.format(**fmt) for a in argv], capsys)
    _check(code, err, expect, spy)
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())  # no session folder left behind


def test_probe_codes_from_a_session_of_the_same_network_is_accepted(sessions: dict[str, Path]) -> None:
    from labnet.app.probe_run import codes_from_session
    from labnet.config.rigfile import load_rig

    spec = load_rig(SIM16)
    codes = codes_from_session(sessions["sim16"], spec.network, spec.limits)
    assert codes.shape == (16,) and codes.min() >= 10


def test_at_least_20_cases() -> None:
    assert len(CASES) >= 20
