"""The talk's perturbation theory on the simulated bench: predicted vs measured δλ_n of the first steps.

``labnet calibrate`` once, then ``labnet run protocols/allostery.toml`` with that table on
``protocols/rigs/sim16.toml`` (every non-ideality of the rig file on; sign rule) for ``--seeds``
protocol seeds, ``--steps`` + 1 steps each; per session
:func:`labnet.app.perturb_session.session_eigen_changes` (eigenvalues of H_F from the session's
code → conductance map at the recorded codes; predictions from the measured free and clamped
voltages). Prints the correlation over modes and steps per seed and pooled; draws the pooled
predicted vs measured (``--figure``).

Run:  python benchmarks/perturbation_bench.py [--seeds 3] [--steps 20] [--figure perturbation_bench.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from labnet.app.perturb_session import correlation, figure, session_eigen_changes
from labnet.app.runner import run_protocol
from labnet.config.protocol import load_protocol
from labnet.insilico.perturbation_bench import BenchEigenChanges

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("first_order", "taps", "rule", "talk")


def calibrated_protocol(out: Path) -> Path:
    """``labnet calibrate protocols/calibrate.toml`` on the simulated bench, and a copy of
    ``protocols/allostery.toml`` that trains with the measured table (``[calibration] table``)."""
    from labnet.app.cli import main as cli

    if cli(["calibrate", str(ROOT / "protocols" / "calibrate.toml"), "--out", str(out / "cal")]) != 0:
        raise RuntimeError("labnet calibrate failed")
    (table,) = (out / "cal").glob("*/calibration.csv")
    text = (ROOT / "protocols" / "allostery.toml").read_text(encoding="utf-8")
    rig = (ROOT / "protocols" / "rigs" / "sim16.toml").as_posix()
    text = text.replace('rig = "rigs/sim16.toml"', f'rig = "{rig}"') + f'\n[calibration]\ntable = "{table.as_posix()}"\n'
    path = out / "allostery_calibrated.toml"
    path.write_text(text, encoding="utf-8")
    return path


def bench_changes(protocol: Path, seed: int, steps: int, out: Path) -> tuple[BenchEigenChanges, str]:
    """One simulated-bench session of ``steps`` + 1 steps and its eigenvalue changes."""
    proto = load_protocol(protocol, steps=steps + 1, seed=seed)
    res = run_protocol(proto, out / f"seed{seed}", progress=False)
    return session_eigen_changes(res.session, steps)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--figure", default="")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        protocol = calibrated_protocol(Path(tmp))
        runs = [bench_changes(protocol, s + 1, args.steps, Path(tmp)) for s in range(args.seeds)]
    print(f"simulated bench (sim16, allostery, sign rule), first {args.steps} steps, model: {runs[0][1]}; "
          "correlation of predicted with measured delta-lambda over all modes and steps:")
    print(" seed | first order (recorded dk) | rule's taps from measured V | continuous rule | talk (Y tensor)")
    for i, (r, _) in enumerate(runs):
        print(f" {i + 1:4d} | " + " | ".join(f"{correlation(getattr(r, n), r.measured):.3f}" for n in NAMES))
    pooled = BenchEigenChanges(*(np.concatenate([getattr(r, f) / np.abs(r.measured).max() for r, _ in runs])
                                 for f in ("measured", "rule", "taps", "talk", "first_order", "lam")))
    print("pooled (each session scaled by its largest measured change): "
          + ", ".join(f"{n} {correlation(getattr(pooled, n), pooled.measured):.3f}" for n in NAMES))
    if args.figure:
        figure(pooled, args.figure, f"sim16 allostery, {args.seeds} seeds, first {args.steps} steps")
        print(f"figure: {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
