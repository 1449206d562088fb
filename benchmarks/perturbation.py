"""The talk's perturbation theory against measured eigenvalue changes, in silico.

For ``--networks`` random 50-node, 120-edge networks with two current (force) inputs and one
output (the talk's setting, as in ``protocols/sweeps/physical_effects.toml``), the first
``--steps`` coupled-learning steps: every step's measured δλ_n of the physical Hessian against
(1) first-order perturbation theory with the step's actual δk, (2) the talk's formula
δλ_n ≈ −αB Σ_m Y_nm f_m a_m/λ_m², (3) its "linear networks" simplification (m = n only).
Prints the correlation over modes and steps per network and pooled, and draws predicted vs
measured (``--figure``).

Run:  python benchmarks/perturbation.py [--networks 12] [--steps 20] [--figure perturbation.png]
"""

from __future__ import annotations

import argparse

import numpy as np

from labnet.core.analysis import output_functional, reduced_hessian
from labnet.insilico.effects import PointSpec, build_network
from labnet.insilico.perturbation import EigenChanges, correlation, eigen_changes


def network_run(seed: int, steps: int, demand: float = 0.9) -> EigenChanges:
    """The physical_effects sweep's force-input point ``seed`` (same draws), first ``steps`` steps."""
    p = PointSpec(nodes=50, edges=120, inputs="force", demand=demand, alpha=1e-5, seed=seed)
    rng = np.random.default_rng([p.sweep_seed, p.seed])
    net = build_network(p, rng)
    k0 = rng.uniform(p.k0_min_siemens, p.k0_max_siemens, net.n_edges)
    red = reduced_hessian(net, k0, [])
    theta = rng.uniform(0, 2 * np.pi)
    force = output_functional(net, red.free_idx, list(net.inputs), p.force_a * np.array([np.cos(theta), np.sin(theta)]))
    a = output_functional(net, red.free_idx, list(net.outputs))
    h = red.h.toarray() if hasattr(red.h, "toarray") else np.asarray(red.h)
    o0 = float(a @ np.linalg.solve(h, force))
    return eigen_changes(net, k0, force, a, o0 * (1 + 3 * demand), alpha=p.alpha, eta=p.eta, steps=steps)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", type=int, default=12)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--figure", default="")
    args = ap.parse_args(argv)
    runs = [network_run(s, args.steps) for s in range(args.networks)]
    print(f"{args.networks} networks (50 nodes, 120 edges, force inputs), first {args.steps} steps; correlation of "
          "predicted with measured delta-lambda over all modes and steps:")
    print(" net | first order | talk (Y tensor) | linear (m = n) | softest mode: talk  linear")
    for i, r in enumerate(runs):
        print(f" {i:3d} | {correlation(r.first_order, r.measured):11.4f} | {correlation(r.talk, r.measured):15.4f} | "
              f"{correlation(r.linear, r.measured):14.4f} | {correlation(r.talk[:, 0], r.measured[:, 0]):18.3f} "
              f"{correlation(r.linear[:, 0], r.measured[:, 0]):7.3f}")
    pooled = {n: correlation(np.concatenate([getattr(r, n).ravel() / np.abs(r.measured).max() for r in runs]),
                             np.concatenate([r.measured.ravel() / np.abs(r.measured).max() for r in runs]))
              for n in ("first_order", "talk", "linear")}
    med = {n: float(np.median([correlation(getattr(r, n), r.measured) for r in runs])) for n in pooled}
    print("median over networks: " + ", ".join(f"{n} {v:.3f}" for n, v in med.items()))
    print("pooled (each network scaled by its largest measured change): " + ", ".join(f"{n} {v:.3f}" for n, v in pooled.items()))
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(12, 4))
        for ax, name, title in zip(axes, ("first_order", "talk", "linear"),
                                   ("first order, actual δk", "talk: Σ_m Y_nm f_m a_m/λ_m²", "linear: m = n only"),
                                   strict=True):
            for r in runs:
                s = np.abs(r.measured).max()
                ax.plot(r.measured.ravel() / s, getattr(r, name).ravel() / s, ".", ms=2, alpha=0.5)
            ax.axline((0, 0), slope=1, color="k", lw=0.8)
            ax.set_xlabel("measured δλ_n (scaled)")
            ax.set_ylabel("predicted δλ_n (scaled)")
            ax.set_title(f"{title}\nmedian r = {med[name]:.3f}", fontsize=9)
        fig.tight_layout()
        fig.savefig(args.figure, dpi=110)
        print(f"figure: {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
