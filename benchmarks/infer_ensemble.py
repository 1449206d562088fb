"""`labnet infer`'s estimator over an ensemble: top-1/top-2 accuracy for task inputs and outputs vs chance.

Networks trained in silico on random allostery tasks, probed as on the bench (see
:mod:`labnet.insilico.infer_ensemble`); two estimators of :mod:`labnet.core.infer`: ``change``
(probes before and after training) and ``single`` (the trained probe alone). Accuracy: the
fraction of true nodes ranked within the top k; chance k/(number of candidates); ±: binomial sd
of the mean over the true nodes.

Run:  python benchmarks/infer_ensemble.py [--networks 50] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

from labnet.core.infer import chance
from labnet.insilico.infer_ensemble import EnsembleSpec, run_ensemble


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    spec = EnsembleSpec(networks=args.networks, seed=args.seed)
    rows = run_ensemble(spec)
    n_d, n_f = int(rows[0]["n_drive"]), int(rows[0]["n_measured"])
    print(f"{spec.networks} networks ({spec.nodes} nodes, {spec.edges} edges, 2 inputs, 1 output), {spec.samples} "
          f"probe patterns, {n_d} driven candidates, {n_f} measured candidates; median final task error "
          f"{np.median([r['err_v'] for r in rows]):.2e} V")
    print(" estimator | role    | top-1 acc     chance | top-2 acc     chance")
    for method in ("change", "single"):
        for role, key, n, true_n in (("inputs", "in", n_d, 2), ("outputs", "out", n_f, 1)):
            cells = []
            for k in (1, 2):
                acc = float(np.mean([r[f"{method}_{key}_top{k}"] for r in rows]))
                p = chance(k, n)
                sd = np.sqrt(p * (1 - p) / (true_n * len(rows)))
                cells.append(f"{acc:.3f}  {p:.3f}±{sd:.3f}")
            print(f" {method:9s} | {role:7s} | {cells[0]} | {cells[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
