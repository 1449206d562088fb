"""Issue 17 item 5: the 300-step allostery run on sim16, fixed vs planned measurement.

For each seed, ``protocols/allostery.toml`` on ``protocols/rigs/sim16.toml`` (the emulated wire:
real drivers, modelled bench clock) with ``[train] measurement`` = ``fixed`` (every state at
the rig's 1 NPLC: today's default), ``planned`` (training states at the planner's NPLC,
marginal decisions held) and ``planned-reread`` (marginal steps read again at 1 NPLC).
Prints per variant and seed the modelled bench time (s, the rig clock: the summary's
"bench time") and the final train error (V²), then the mean over the seeds.

Usage::

    python benchmarks/bench_plan.py [--seeds 1 2 3 4 5] [--steps 300] [--variants fixed planned]
    python benchmarks/bench_plan.py --pickup 0 2e-5 1e-4 3e-4   # line-frequency pickup (V peak) on sim16

A variant ``<mode>:settle_s`` is ``<mode>`` with the rig file's stated source responses dropped,
so that every change waits the protocol's ``settle_s`` as before settle times were derived
(``auto:settle_s`` against ``auto``: what the derived waits save)::

    python benchmarks/bench_plan.py --variants fixed auto:settle_s auto

``--pickup`` sets the simulated bench's ``[simulator] mains_pickup_v`` (and so what the planner
assumes): each value runs every variant and seed.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from labnet.app.measurement import measurement_plan
from labnet.app.runner import run_protocol
from labnet.config.protocol import load_protocol

ROOT = Path(__file__).resolve().parent.parent


def _without_stated_responses(proto: Any) -> Any:
    """``proto`` with the rig file's ``response_tau_s``/``response_dead_s`` dropped."""
    ins = proto.rig.instruments
    sources = {p: replace(v, options={k: o for k, o in v.options.items() if not k.startswith("response_")})
               for p, v in ins.sources.items()}
    return replace(proto, rig=replace(proto.rig, instruments=replace(ins, sources=sources)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--variants", nargs="+", default=["fixed", "planned", "planned-reread"])
    ap.add_argument("--pickup", type=float, nargs="+", default=[None])
    args = ap.parse_args()
    rows: dict[str, list[tuple[int, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pk in args.pickup:
            for variant in args.variants:
                name = variant if pk is None else f"{variant}, pickup {pk:g} V"
                for seed in args.seeds:
                    proto = load_protocol(ROOT / "protocols" / "allostery.toml", steps=args.steps, seed=seed)
                    mode, _, settle = variant.partition(":")
                    proto = replace(proto, train=replace(proto.train, measurement=mode))
                    if settle == "settle_s":  # no stated responses: every change waits settle_s
                        proto = _without_stated_responses(proto)
                    if pk is not None:
                        proto = replace(proto, rig=replace(proto.rig, sim={**proto.rig.sim, "mains_pickup_v": pk}))
                    if seed == args.seeds[0]:
                        plan = measurement_plan(proto)
                        print(f"{name}: " + ("every state at the rig's NPLC" if plan is None else plan.text()))
                    o = run_protocol(proto, Path(tmp) / name.replace(" ", "_").replace(",", ""), progress=False)
                    rows.setdefault(name, []).append((seed, o.result.bench_s, float(o.result.final.train["mse"])))
    print()
    print(f"| variant | seed | bench time (s, modelled) | final train error (V²) |   ({args.steps} steps)")
    print("|---|---:|---:|---:|")
    for variant, rs in rows.items():
        for seed, t, e in rs:
            print(f"| {variant} | {seed} | {t:.1f} | {e:.4g} |")
        print(f"| {variant} | mean | {np.mean([r[1] for r in rs]):.1f} | {np.mean([r[2] for r in rs]):.4g} |")


if __name__ == "__main__":
    main()
