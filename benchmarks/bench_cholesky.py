"""Sparse Cholesky packages that install as wheels, on labnet's refactorisation (issue 17, item 1).

    python benchmarks/bench_cholesky.py                        # the packages importable here
    python benchmarks/bench_cholesky.py --python /venv/bin/python   # measure in another interpreter

What a training step needs from a sparse factorisation: a *numeric* refactorisation of the
reduced Laplacian L_ff for new conductances (same pattern) and a solve with 3 right-hand sides
(allostery: one input pattern + two outputs). Measured on the 4,097- and 16,385-edge seeded
Delaunay networks of the issue (``labnet.core.generators.delaunay_network``, inputs and ground
held), best of ``--repeat`` after a warm-up, and the solution checked against SciPy's
``spsolve`` (relative max error printed). Each candidate runs in its own subprocess (two of them
bundle the same extension module name and cannot share a process):

* ``splu`` — SciPy SuperLU, MMD(AᵀA+A), symmetric mode (SciPy has no numeric-only
  refactorisation: the ordering is redone every time) — labnet's fallback;
* ``qdldl`` — QDLDL (AMD + simplicial LDLᵀ, ``Solver.update`` refactors numerically), via
  ``labnet.core.solvers.SparseCholesky`` (the upper triangle reused in place);
* ``cholespy`` — CHOLMOD inside cholespy; no refactorisation API, so a new solver per step;
* ``sksparse-minimal`` — the same cholespy core behind a scikit-sparse-like class; likewise;
* ``cholmod`` — scikit-sparse 0.4.16 via labnet (only where it was built from source with
  SuiteSparse headers: no wheel on the package index for any version).

BLAS single-threaded (labnet's default).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = ("splu", "qdldl", "cholmod", "cholespy", "sksparse-minimal")
NODES = {4097: 1373, 16385: 5469}


def stepper(name: str, a: Any, b: Any) -> Callable[[], Any]:
    """One refactorisation + solve of ``a`` (CSC, SPD) with right-hand sides ``b`` (n, 3) by ``name``."""
    import numpy as np

    from labnet.core.solvers import SparseCholesky

    n = a.shape[0]
    if name in ("splu", "qdldl", "cholmod"):
        fac = SparseCholesky(a, name)
        return lambda: (fac.refactor(a), fac.solve(b))[1]
    if name == "cholespy":
        import cholespy

        ii, jj = a.indptr.astype(np.int32), a.indices.astype(np.int32)

        def step() -> Any:
            f = cholespy.CholeskySolverD(n, ii, jj, a.data.copy(), cholespy.MatrixType.CSC)
            x = np.zeros_like(b)
            f.solve(b.copy(), x)
            return x

        return step
    from sksparse_minimal import SparseCholesky as Minimal

    return lambda: Minimal(a).solve_A(np.ascontiguousarray(b))


def child(name: str, repeat: int) -> None:
    import os

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import scipy.sparse.linalg as spla

    from labnet.core.generators import delaunay_network
    from labnet.core.solvers import ReducedLaplacian

    out = {}
    for edges, nodes in NODES.items():
        net = delaunay_network(nodes, seed=0, n_inputs=2, n_outputs=2)
        red = ReducedLaplacian(net, net.indices([net.ground, *net.inputs]))
        rng = np.random.default_rng(1)
        a = red.matrix(10 ** rng.uniform(-4, -3, net.n_edges))
        n = a.shape[0]
        b = rng.standard_normal((n, 3))
        ref = spla.spsolve(a.tocsc(), b)
        step = stepper(name, a, b)
        x = step()
        best = np.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - t0)
        out[edges] = {"ms": best * 1e3, "err": float(np.abs(x - ref).max() / np.abs(ref).max()), "free": n}
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable, help="interpreter to measure in")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.repeat)
        return
    import os

    print(f"interpreter {args.python}; load average {os.getloadavg()[0]:.2f}")
    print("| package | 4,097 edges ms (refactor + 3-column solve) | 16,385 edges ms | rel. error vs spsolve |")
    print("|---|---:|---:|---:|")
    for name in CANDIDATES:
        r = subprocess.run([args.python, __file__, "--child", name, "--repeat", str(args.repeat)], capture_output=True, text=True)
        if r.returncode:
            why = (r.stderr.strip().splitlines() or ["failed"])[-1]
            print(f"| {name} | not available: {why[:90]} | | |")
            continue
        d = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"| {name} | {d['4097']['ms']:.3f} | {d['16385']['ms']:.3f} | {max(d['4097']['err'], d['16385']['err']):.1e} |",
              flush=True)


if __name__ == "__main__":
    main()
