"""`labnet sweep` throughput: a 1,000-point ensemble of ~100-edge networks on a local Dask cluster
against a serial loop over the same points, in the same run.

Every point: a random network (45 nodes, 100 edges, 2 voltage inputs, 1 output), coupled
learning to demand 0.9 (≤ ``--steps`` steps, stopping at 1e-8 V²) and the physical-effects
analysis before and after. Three figures from the same points in one run:

1. the local cluster: the whole ``run_sweep`` (scheduling, parquet parts, results.parquet; the
   cluster start is printed apart), every task a chunk of points packed into the batched trainer;
2. a serial loop over the same chunks in this process (:func:`labnet.insilico.effects.run_chunk`,
   packed the same way): the cluster's speed-up;
3. a serial loop with no packing, each point trained alone by the single-network trainer
   (:class:`labnet.insilico.trainer.CoupledLearning`, the pre-packing code path): what packing
   gains. Its numbers agree with the packed ones to rounding, not bit for bit.

The results of 1 and 2 are checked bit-identical.

Run:  python benchmarks/bench_sweep.py [--points 1000] [--workers 2] [--chunk 25] [--steps 1000]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from labnet.app.sweep import RESULTS, open_client, run_sweep
from labnet.config.sweep_file import load_sweep
from labnet.insilico.effects import METRICS, PointSpec, finish_voltage, prepare_voltage, run_chunk, train_in_blocks
from labnet.insilico.trainer import CoupledLearning

SWEEP = """
[sweep]
name = "bench"
seed = 11
chunk = {chunk}

[base]
nodes = 45
edges = 100
steps = {steps}
demand = 0.9

[[axis]]
seeds = {points}
"""


def unpacked(p: PointSpec) -> dict[str, object]:
    """One point trained alone by the single-network trainer (the reference without packing)."""
    v = prepare_voltage(p)
    cl = CoupledLearning(v.net, v.k0.copy(), v.x[None, :], np.array([[v.t]]), alpha=p.alpha, eta=p.eta,
                         k_min=p.k_min_siemens, k_max=p.k_max_siemens)
    run, hit = train_in_blocks(cl, p)
    return finish_voltage(v, np.asarray(cl.k), run, hit, p)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--chunk", type=int, default=25)
    p.add_argument("--steps", type=int, default=1000)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "bench.toml"
        f.write_text(SWEEP.format(chunk=args.chunk, steps=args.steps, points=args.points), encoding="utf-8")
        sweep = load_sweep(f)
        t0 = time.perf_counter()
        client, cluster = open_client(workers=args.workers)
        t_start = time.perf_counter() - t0
        try:
            t1 = time.perf_counter()
            out = run_sweep(sweep, Path(tmp) / "out", client=client, progress=False)
            t_cluster = time.perf_counter() - t1
        finally:
            client.close()
            cluster.close()
        df = pd.read_parquet(Path(tmp) / "out" / RESULTS)
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        t2 = time.perf_counter()
        rows = [r for c in sweep.chunks() for r in run_chunk([(i, dataclasses.asdict(sweep.points[i])) for i in c])]
        t_serial = time.perf_counter() - t2
        t3 = time.perf_counter()
        ref = [unpacked(pt) for pt in sweep.points]
        t_single = time.perf_counter() - t3
    ser = pd.DataFrame(rows)
    agree = float(np.median([abs(r["deff_after"] / q["deff_after"] - 1) for r, q in zip(rows, ref, strict=True)]))
    same = all(np.array_equal(df[c].to_numpy(), ser[c].to_numpy(), equal_nan=df[c].dtype.kind == "f") for c in METRICS)
    n = len(sweep.points)
    print(f"{n} points (45 nodes, 100 edges, <= {args.steps} steps, median {df['steps_run'].median():.0f} run), "
          f"chunk {args.chunk}, {os.cpu_count()} CPUs")
    print(f"local cluster, {out.workers} workers: {t_cluster:6.1f} s  -> {n / t_cluster * 60:7.0f} points/min "
          f"(+ {t_start:.1f} s cluster start)")
    print(f"serial loop, same chunks:   {t_serial:6.1f} s  -> {n / t_serial * 60:7.0f} points/min")
    print(f"serial, unpacked (1 by 1):  {t_single:6.1f} s  -> {n / t_single * 60:7.0f} points/min")
    print(f"speed-up: cluster / serial {t_serial / t_cluster:.2f}x, packing {t_single / t_serial:.2f}x, "
          f"cluster / unpacked serial {t_single / t_cluster:.2f}x; cluster and serial metric columns "
          f"bit-identical: {same}; packed vs unpacked D_eff after, median relative difference {agree:.1e}")
    print(f"per point: {df['compute_s'].mean() * 1e3:.1f} ms in a cluster worker, {ser['compute_s'].mean() * 1e3:.1f} ms "
          f"in the serial loop (CPU contention shows as the first exceeding the second); load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"effects: lambda_min falls {df['lam_falls'].mean():.0%}, D_eff falls {df['deff_falls'].mean():.0%}, "
          f"g rises {df['gbar_rises'].mean():.0%}, all four {df['all_four'].mean():.0%}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
