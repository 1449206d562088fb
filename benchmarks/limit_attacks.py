"""The limit attacks of issue 13, measured: the worst *true* edge current over every state the bench
passes through, as % of the rating (the simulator knows the drawn parts: simulator/monitor.py).

Attack files are written from protocols/rigs/sim16.toml into a folder (default: a temp dir):

a1  sim16 with ``initial_code = 10``; probe.toml with ``v_max = 1.0`` (drive n1, n2, n5, n7)
a5  the same rig with ``max_source_v = 5.0``; probe ``v_max = 5.0``
b   a 20 V rig (psu1.1/psu2.1 at their 6 V, meter range 100 V, codes at 99); probe 0–20 V on
    the 25 V channels n2, n3, n5, n6 — patterns checked, in-between states not
c   b with a calibration table of an X9C303 rig (``labnet calibrate`` on sim16 with
    ``model = "X9C303"``) named in the probe file

Run: ``PYTHONPATH=. python benchmarks/limit_attacks.py [a1 a5 b c] [--samples N] [--dir DIR]``.
Prints, per attack, the exit code, the peak % with its edge, and the command's last line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"
PROBE = ROOT / "protocols" / "probe.toml"


def rig_text(*, initial_code: int = 10, max_v: float = 1.0, part: str = "X9C103", wide: bool = False) -> str:
    """sim16.toml with the attack's changes."""
    t = SIM16.read_text()
    t = t.replace("initial_code = 49        # mid-scale, the X9C power-up code", f"initial_code = {initial_code}")
    t = t.replace("max_source_v = 1.0       # V, every source channel", f"max_source_v = {max_v}")
    t = t.replace('model = "X9C103"', f'model = "{part}"')
    rng = next(r for r in (1.0, 10.0, 100.0, 300.0) if 1.2 * r >= max_v)  # the meter's range for max_v
    if wide:  # 20 V: the 6 V channels at their maximum, the meter on its 100 V range
        t = t.replace("code_max = 99\n", 'code_max = 99\nsource_max_v = { "psu1.1" = 6.0, "psu2.1" = 6.0 }\n', 1)
        rng = 100.0
    return re.sub(r"^range_v = 1\.0 .*$", f"range_v = {rng}", t, count=1, flags=re.M)


def probe_text(rig: str, *, v_max: float, drive: str | None = None, samples: int = 200,
               table: str | None = None) -> str:
    t = PROBE.read_text().replace('rig = "rigs/sim16.toml"', f'rig = "{rig}"')
    t = t.replace("v_max = 0.5", f"v_max = {v_max}").replace("samples = 200", f"samples = {samples}")
    t = t.replace("bootstrap = 500", "bootstrap = 0")
    if drive is not None:
        t = t.replace('drive = ["n1", "n2", "n5", "n7"]', f"drive = {drive}")
    if table is not None:
        t += f'\n[calibration]\ntable = "{table}"\n'
    return t


def write_attack(name: str, folder: Path, samples: int = 200) -> list[str]:
    """Write the attack's files into ``folder``; return the ``labnet`` arguments that run it."""
    folder.mkdir(parents=True, exist_ok=True)
    wide_drive = '["n2", "n3", "n5", "n6"]'
    if name == "a1":
        (folder / "rig_a1.toml").write_text(rig_text())
        (folder / "a1.toml").write_text(probe_text("rig_a1.toml", v_max=1.0, samples=samples))
    elif name == "a5":
        (folder / "rig_a5.toml").write_text(rig_text(max_v=5.0))
        (folder / "a5.toml").write_text(probe_text("rig_a5.toml", v_max=5.0, samples=samples))
    elif name in ("b", "c"):
        (folder / "rig_b.toml").write_text(rig_text(initial_code=99, max_v=20.0, wide=True))
        table = None
        if name == "c":
            table = "table303.csv"
            if not (folder / table).exists():
                (folder / "rig303.toml").write_text(rig_text(initial_code=49, part="X9C303"))
                run(["calibrate", str(folder / "rig303.toml"), "--out", str(folder / "cal")])
                made = sorted((folder / "cal").glob("*/calibration.csv"))[-1]
                (folder / table).write_bytes(made.read_bytes())
        (folder / f"{name}.toml").write_text(probe_text("rig_b.toml", v_max=20.0, drive=wide_drive,
                                                        samples=samples, table=table))
    else:
        raise SystemExit(f"unknown attack {name!r} (a1, a5, b, c)")
    return ["probe", str(folder / f"{name}.toml"), "--out", str(folder / "sessions")]


def run(argv: list[str]) -> tuple[int, str]:
    """``labnet argv`` in this process; (exit code, its output)."""
    from labnet.app.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(argv)
    return rc, buf.getvalue()


def measure(name: str, folder: Path, samples: int = 200) -> tuple[int, float, int, str]:
    """Run attack ``name``; (exit code, peak % of the rating, its edge, last output line)."""
    from simulator.monitor import watch_edge_currents

    argv = write_attack(name, folder, samples)
    with watch_edge_currents() as mon:
        rc, out = run(argv)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    return rc, mon.peak.percent, mon.peak.edge, lines[-1] if lines else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("attacks", nargs="*", default=["a1", "a5", "b", "c"])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args(argv)
    folder = args.dir or Path(tempfile.mkdtemp(prefix="labnet-attacks-"))
    for name in args.attacks:
        rc, pct, edge, last = measure(name, folder / name, args.samples)
        print(f"{name:3s} exit {rc}  worst true edge current {pct:6.1f} % of rating (edge {edge})  | {last.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
