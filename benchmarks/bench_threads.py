"""Per-step times of every in-silico solve path with labnet's thread limit and without, quiet and loaded (issue 17).

    python benchmarks/bench_threads.py            # ~1–2 min
    python benchmarks/bench_threads.py --quick    # shorter, no 65k network

For each path — dense band Cholesky (255-edge Delaunay, one sample), dense LAPACK (434-edge
Delaunay, 20-sample regression), direct (4,097 edges), PCG (16,385 edges, ``method="pcg"``;
and 65,537 edges unless ``--quick``) — each step is timed one by one for ``--seconds`` with
``threads=None`` (labnet's default: one BLAS/OpenMP thread during the solve,
:mod:`labnet.core.threads`) and with ``threads=0`` (the libraries' own default: here one per
core), first on the machine as it is, then with a CPU-bound process alongside
(``python -c "while True: pass"``, ended by its pid). Printed: median, 95th percentile and
maximum wall ms per step, p95/median, and the process's CPU time per step (all threads: BLAS
threads spinning for work show up here, while being descheduled by other processes — which on
a loaded machine stretches single sub-millisecond steps by a time slice — does not).
Nothing is set in the environment: OPENBLAS_NUM_THREADS etc. are left as the shell has them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labnet.core.generators import delaunay_network  # noqa: E402
from labnet.core.threads import current_threads  # noqa: E402
from labnet.insilico.trainer import CoupledLearning  # noqa: E402

PATHS = [("dense band", 90, "allostery", "dense"), ("dense LAPACK", 150, "regression", "dense"),
         ("direct", 1373, "allostery", "direct"), ("pcg", 5469, "allostery", "pcg"), ("pcg", 21855, "allostery", "pcg")]


def trainer(nodes: int, task: str, method: str, threads: int | None) -> CoupledLearning:
    net = delaunay_network(nodes, seed=0, n_inputs=2, n_outputs=2)
    rng = np.random.default_rng(1)
    k0 = 10 ** rng.uniform(-4, -3, net.n_edges)
    kw: dict[str, Any] = dict(alpha=1e-3, eta=0.5, k_min=1e-6, k_max=1e-2, method=method, threads=threads)
    if task == "allostery":
        x = np.array([[1.0, 0.0]])
        cl = CoupledLearning(net, k0, x, np.zeros((1, 2)), **kw)
        cl.targets[:] = cl.outputs(x) + np.array([0.1, -0.1])
        return cl
    x = rng.uniform(0, 1, (20, 2))
    return CoupledLearning(net, k0, x, x @ np.array([[0.3, 0.1], [0.2, 0.4]]), **kw)


def step_times(cl: CoupledLearning, seconds: float) -> tuple[np.ndarray, float]:
    """Wall seconds of each step, and the process's CPU seconds (all its threads) per step."""
    cl.train(3)
    out = []
    end = time.perf_counter() + seconds
    c0 = time.process_time()
    while time.perf_counter() < end or len(out) < 20:
        t0 = time.perf_counter()
        cl.train(1)
        out.append(time.perf_counter() - t0)
    return np.array(out), (time.process_time() - c0) / len(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float, default=2.0, help="timing per path and setting")
    args = ap.parse_args()
    paths = PATHS[:4] if args.quick else PATHS
    secs = min(args.seconds, 1.0) if args.quick else args.seconds
    print(f"BLAS/OpenMP pools as loaded: {sorted(set(current_threads().values()))} threads; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, LABNET_THREADS={os.environ.get('LABNET_THREADS')}")
    print("| load | path | edges | threads | median ms | p95 ms | max ms | p95/median | CPU ms/step |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|")
    for loaded in (False, True):
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if loaded else None
        try:
            time.sleep(0.5 if loaded else 0.0)
            for name, nodes, task, method in paths:
                for threads in (None, 0):
                    cl = trainer(nodes, task, method, threads)
                    t, cpu = step_times(cl, secs)
                    t *= 1e3
                    med, p95 = float(np.median(t)), float(np.percentile(t, 95))
                    label = "labnet default (1)" if threads is None else "libraries' default"
                    where = f"{'CPU hog + ' if loaded else ''}load avg {os.getloadavg()[0]:.1f}"
                    print(f"| {where} | {name} | {cl.network.n_edges:,} | "
                          f"{label} | {med:.3g} | {p95:.3g} | {t.max():.3g} | {p95 / med:.1f} | {cpu * 1e3:.3g} |", flush=True)
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()


if __name__ == "__main__":
    main()
