"""What a loading off-state does to the free state and to learning, vs switch release vs ideal.

Runs ``protocols/allostery.toml`` (300 steps, sign rule) on the emulated wire for each rig
variant and seed, and prints, per variant:

* the free state at the initial codes (the step-0 evaluation row: inputs 1.0 V / 0.3 V,
  outputs released): output voltages n3, n4 and the nodes n5, n6, and how far each is pulled
  toward 0 V relative to the ideal release of the same part;
* the final train error (V²) per seed and its median.

Variants:

``ideal``          protocols/rigs/sim16.toml (X9C103, E36312A off = floating: today's model)
``offstate``       protocols/rigs/sim16-offstate.toml (E36312A off = 10 Ω to 0 V, the conservative
                   bound from the E3631A guide; 2450 HIMP)
``switch``         protocols/rigs/sim16-switch.toml (MCP4251-103, ADG412 switches on n3..n6, the
                   E36312A's 10 Ω off-state behind them)
``ideal-mcp4251``  sim16-switch.toml without its [release] table and off-states: the ideal release
                   on the switch rig's part, so ``switch`` is compared with its own ideal too

Usage::

    python benchmarks/release_offstate.py [--seeds 1 2 3 4 5] [--steps 300]
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import tempfile
from pathlib import Path

import pandas as pd

from labnet.app.runner import run_protocol
from labnet.config.protocol import load_protocol
from labnet.core.errors import LimitError

ROOT = Path(__file__).resolve().parents[1]
RIGS = ROOT / "protocols" / "rigs"
PROTOCOL = ROOT / "protocols" / "allostery.toml"
NODES = ("n3", "n4", "n5", "n6")


def ideal_twin(rig: Path, out: Path) -> Path:
    """``rig`` with its ``[release]`` table and every ``off_resistance_ohm`` removed (the ideal release)."""
    text = rig.read_text(encoding="utf-8")
    text = re.sub(r"\n\[release\]\n(?:(?!\n\[).)*", "\n", text, flags=re.S)
    text = re.sub(r"\noff_resistance_ohm = [^\n]*", "", text)
    text = text.replace("sim16sw", "sim16swideal")  # its own simulated bench
    out.write_text(text, encoding="utf-8")
    return out


def run_variant(rig: Path, seed: int, steps: int, out: Path) -> tuple[float, dict[str, float]]:
    """Final train error (V²; inf when the worst-case limit check stops the run: training
    drove the loaded free state to currents a real part could not take) and the step-0
    free-state voltages (V) of NODES."""
    proto = load_protocol(PROTOCOL, rig=rig, seed=seed, steps=steps)
    try:
        outcome = run_protocol(proto, out, progress=False)
        session, err = outcome.session, float(outcome.result.final.train["mse"])
    except LimitError:
        session, err = max(Path(out).iterdir(), key=lambda p: p.stat().st_mtime), math.inf
    df = pd.read_csv(session / "session.csv", comment="#")
    free0 = df[(df["phase"] == "eval") & (df["step"] == 0)].iloc[0]
    return err, {n: float(free0[f"v_{n}"]) for n in NODES}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        variants = {"ideal": RIGS / "sim16.toml", "offstate": RIGS / "sim16-offstate.toml",
                    "switch": RIGS / "sim16-switch.toml",
                    "ideal-mcp4251": ideal_twin(RIGS / "sim16-switch.toml", t / "sim16-switch-ideal.toml")}
        errors: dict[str, list[float]] = {}
        free: dict[str, dict[str, float]] = {}
        for name, rig in variants.items():
            errors[name] = []
            for seed in args.seeds:
                err, v = run_variant(rig, seed, args.steps, t / name)
                errors[name].append(err)
                if seed == args.seeds[0]:
                    free[name] = v
    print(f"allostery, {args.steps} steps, seeds {args.seeds}; free state at the initial codes (seed {args.seeds[0]})")
    print(f"{'variant':15s} " + " ".join(f"{'V_' + n:>9s}" for n in NODES) + "   final train error (V²) per seed  | median")
    for name in variants:
        ref = free["ideal-mcp4251" if name in ("switch", "ideal-mcp4251") else "ideal"]
        vs = " ".join(f"{free[name][n]:9.4f}" for n in NODES)
        es = " ".join(f"{e:.2e}" for e in errors[name])
        print(f"{name:15s} {vs}   {es} | {statistics.median(errors[name]):.2e}")
        if name in ("offstate", "switch"):
            pulled = " ".join(f"{ref[n] - free[name][n]:+9.2e}" for n in NODES)
            print(f"{'  toward 0 V by':15s} {pulled}   (vs {'ideal-mcp4251' if name == 'switch' else 'ideal'}, V)")


if __name__ == "__main__":
    main()
