"""Which solve strategy is fastest per network, against what ``method="auto"`` picks (issue 17).

    python benchmarks/bench_methods.py              # the table (~2–4 min on 2 shared cores)
    python benchmarks/bench_methods.py --quick      # fewer networks and rounds
    python benchmarks/bench_methods.py --fit        # also fit labnet.insilico.choice.COSTS

For Delaunay networks and open square lattices of 66–16k edges and two tasks — allostery (one
sample: the dense path's band Cholesky applies) and a 20-sample regression (full batch) — every
strategy (dense, direct, pcg; the default sparse back end, and SciPy SuperLU with ``--splu``) is
timed *interleaved*: round after round, each strategy one chunk of steps, best chunk kept, so
a burst of load on the shared machine hits all of them alike. Printed per network and task:
free nodes, RCM half-bandwidth, nnz and flops of the sparse factor, ms/step of each strategy,
the fastest, the cost model's prediction of each (``labnet.insilico.choice``) and its pick,
and how much slower the pick is than the fastest. ``--fit`` fits each cost model's overhead
and seconds per flop by non-negative least squares on the relative error and prints a
``COSTS`` dictionary to paste into ``labnet/insilico/choice.py``.

BLAS threads: labnet's default (one, :mod:`labnet.core.threads`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labnet.core.generators import delaunay_network, square_lattice  # noqa: E402
from labnet.core.solvers import DEFAULT_BACKEND  # noqa: E402
from labnet.insilico import choice as ch  # noqa: E402
from labnet.insilico.dense import BAND_MIN  # noqa: E402
from labnet.insilico.many import KERNEL_MAX  # noqa: E402
from labnet.insilico.trainer import CoupledLearning  # noqa: E402

DELAUNAY = (30, 60, 90, 150, 250, 348, 500, 800, 1373, 2500, 5469)
LATTICE = ((6, 6), (8, 9), (12, 12), (16, 17), (23, 23), (32, 33), (45, 46), (90, 91))
QUICK_D, QUICK_L = (60, 150, 348, 1373, 5469), ((12, 12), (32, 33), (45, 46))
ALPHA, ETA = 1e-3, 0.5


def trainer(net: Any, task: str, method: str, backend: str | None) -> CoupledLearning:
    rng = np.random.default_rng(1)
    k0 = 10 ** rng.uniform(-4, -3, net.n_edges)
    if task == "allostery":
        x = np.array([[1.0, 0.0]])
        cl = CoupledLearning(net, k0, x, np.zeros((1, 2)), alpha=ALPHA, eta=ETA, k_min=1e-6, k_max=1e-2,
                             method=method, backend=backend)
        cl.targets[:] = cl.outputs(x) + np.array([0.1, -0.1])
        return cl
    x = rng.uniform(0, 1, (20, 2))
    t = x @ np.array([[0.3, 0.1], [0.2, 0.4]])
    return CoupledLearning(net, k0, x, t, alpha=ALPHA, eta=ETA, k_min=1e-6, k_max=1e-2, method=method, backend=backend)


def interleaved(trainers: dict[str, CoupledLearning], rounds: int, chunk_s: float) -> dict[str, float]:
    """Best seconds per step of each trainer, timed in alternating chunks."""
    n = {}
    for name, cl in trainers.items():
        cl.train(2)  # first steps: factorisation, PCG's calibration
        t0 = time.perf_counter()
        cl.train(1)
        n[name] = max(1, int(chunk_s / max(time.perf_counter() - t0, 1e-7)))
    best = dict.fromkeys(trainers, np.inf)
    for _ in range(rounds):
        for name, cl in trainers.items():
            t0 = time.perf_counter()
            cl.train(n[name])
            best[name] = min(best[name], (time.perf_counter() - t0) / n[name])
    return best


def dense_model(s: ch.Structure, single: bool, kernel: bool) -> str:
    if kernel and s.n_free <= KERNEL_MAX:
        return "kernel"
    if single and s.n_free >= BAND_MIN and s.bandwidth <= s.n_free // 3:
        return "band"
    return "dense"


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from labnet.insilico import batched

    nets = [("Delaunay", delaunay_network(n, seed=0, n_inputs=2, n_outputs=2)) for n in (QUICK_D if args.quick else DELAUNAY)]
    nets += [("lattice", square_lattice(r, c, seed=0, n_inputs=2, n_outputs=2)) for r, c in (QUICK_L if args.quick else LATTICE)]
    backends = [DEFAULT_BACKEND] + (["splu"] if args.splu and DEFAULT_BACKEND != "splu" else [])
    rows = []
    for topo, net in nets:
        for task in ("allostery", "regression"):
            auto = trainer(net, task, "auto", None)
            s = auto.choice.structure if auto.choice is not None else ch.structure(auto.red)
            if not s.nnz_factor:
                s = ch.structure(auto.red)
            single = task == "allostery"
            cols = (1 if single else 2) + 2
            runs: dict[str, CoupledLearning] = {}
            if s.n_free <= ch.NEVER_DENSE:
                runs[dense_model(s, single, batched.HAVE_NUMBA)] = trainer(net, task, "dense", None)
            for b in backends:
                for m in ("direct", "pcg"):
                    if b == "splu" and s.n_free > 6000:
                        continue
                    runs[f"{m}/{b}"] = trainer(net, task, m, b)
            times = interleaved(runs, args.rounds, args.chunk)
            pred = {name: ch.predict(name, s, cols, 2) for name in runs}
            fastest = min(times, key=times.__getitem__)
            picked_key = dense_model(s, single, batched.HAVE_NUMBA) if auto.method == "dense" else f"{auto.method}/{auto.backend}"
            rows.append({"topo": topo, "task": task, "edges": net.n_edges, "s": s, "cols": cols, "times": times,
                         "pred": pred, "fastest": fastest, "picked": picked_key,
                         "loss": times.get(picked_key, np.nan) / times[fastest]})
            r = rows[-1]
            cells = "  ".join(f"{k} {1e3 * v:.3f} ({1e3 * pred[k]:.3f})" for k, v in times.items())
            print(f"{topo:8s} {task:10s} E={net.n_edges:6d} F={s.n_free:5d} bw={s.bandwidth:4d} nnzL={s.nnz_factor:7d} "
                  f"flopsL={s.flops_factor:.2e} | {cells} | fastest {fastest}, auto {picked_key} ({r['loss']:.2f}x)",
                  flush=True)
    return rows


def fit(rows: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """(overhead, s/flop) per cost model: NNLS on (o + r·w)/t − 1."""
    from scipy.optimize import nnls

    out: dict[str, tuple[float, float]] = {}
    models = sorted({k for r in rows for k in r["times"]})
    for m in models:
        a, b = [], []
        for r in rows:
            if m in r["times"]:
                t = r["times"][m]
                a.append([1.0 / t, ch.work(m, r["s"], r["cols"], 2) / t])
                b.append(1.0)
        if len(a) >= 2:
            sol, _ = nnls(np.array(a), np.array(b))
            out[m] = (float(sol[0]), float(sol[1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--fit", action="store_true", help="fit and print choice.COSTS")
    ap.add_argument("--splu", action="store_true", help="also time SciPy SuperLU")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--chunk", type=float, default=0.03, help="seconds per timed chunk")
    args = ap.parse_args()
    if args.quick:
        args.rounds = min(args.rounds, 4)
    print(f"default sparse back end {DEFAULT_BACKEND}; (prediction in brackets), ms/step")
    rows = run(args)
    losses = [r["loss"] for r in rows if np.isfinite(r["loss"])]
    print(f"auto's pick vs the fastest: median {np.median(losses):.2f}x, worst {max(losses):.2f}x over {len(losses)} cases")
    if args.fit:
        costs = fit(rows)
        print("COSTS = {")
        for k, (o, r) in costs.items():
            print(f'    "{k}": ({o:.1e}, {r:.1e}),')
        print("}")


if __name__ == "__main__":
    main()
