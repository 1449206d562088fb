"""The physical effects of learning, reproduced in silico on an ensemble of random networks.

Trains every network of an ensemble (default: 24 random networks of 50 nodes and 120 edges,
two input nodes and one output) on an allosteric task by continuous coupled learning, and
compares the free-state Hessian before and after training (labnet.core.analysis):

1. λ_min (the softest eigenvalue) falls;
2. the softest mode's share of the task response rises. The signed share c_0/Σ_n c_n can
   exceed 1 when other modes contribute with the opposite sign (it is ≈1 already in these
   networks), so the effect is counted on the cancellation-free share |c_0|/Σ_n |c_n|; the
   signed share is reported beside it;
3. the model D_eff = (Σλ⁻²)²/Σλ⁻⁴ falls (the talk's formula is this divided by 3);
4. ḡ = sqrt(Σλ⁻²) rises.

Targets are set far from the untrained response: t = o_0 + d·(b − o_0), with o_0 the untrained
output, b the far end of what the output can reach (5 % or 95 % of the larger input, whichever
is farther from o_0) and d the *demand* (default 0.9). ``--demands 0.3,0.6,0.9`` repeats the
ensemble at several demands to show how the effects scale with how much the network had to
learn (the table also reports the relative conductance change |Δk|/|k|).

``--inputs force`` runs the talk's own setting instead: the inputs are currents (forces) of
fixed total magnitude (1 mA) and random direction injected at the input nodes, only ground is
held, the Hessian is the Laplacian on every other node, and the task asks the output's
response to grow from o_0 to o_0·(1 + 3d) (the clamped state holds the output at
o + η(t − o), i.e. nudges it with exactly the current that takes).

The computation is labnet.insilico.effects.run_point (voltage inputs trained with
labnet.insilico.trainer.CoupledLearning, force inputs with one labnet.core.physics.Solver
factorisation per step); the same ensemble as a sweep on Dask, with figures:
``labnet sweep protocols/sweeps/physical_effects.toml && labnet report sweeps/physical_effects``.

Run:  python benchmarks/physical_effects.py [--networks 24] [--nodes 50] [--edges 120]
      [--demands 0.9] [--steps 4000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from labnet.insilico.effects import PointSpec, run_point

# The per-network computation now lives in labnet.insilico.effects (run_point: network, task,
# training, before/after analysis); `labnet sweep protocols/sweeps/physical_effects.toml` runs the
# same ensemble on Dask. This script keeps its command line and its table.


@dataclass(frozen=True)
class _Modes:
    """The before or after half of a point's row, in the attribute names the table reads."""

    lam0: float
    share_soft: float
    abs_share_soft: float
    deff: float
    gbar: float
    response: float

    @property
    def lam(self) -> np.ndarray:
        return np.array([self.lam0])


@dataclass(frozen=True)
class Outcome:
    """Before/after picture of one trained network."""

    demand: float
    before: _Modes
    after: _Modes
    err0: float
    err1: float
    dk_rel: float  # |Δk| / |k0|


def _outcome(row: dict, demand: float) -> Outcome:
    half = {w: _Modes(row[f"lam_min_{w}"], row[f"share_{w}"], row[f"abs_share_{w}"], row[f"deff_{w}"],
                      row[f"gbar_{w}"], row[f"response_{w}"]) for w in ("before", "after")}
    return Outcome(demand, half["before"], half["after"], row["err_before"], row["err_after"], row["dk_rel"])


def _spec(i: int, demand: float, args: argparse.Namespace, inputs: str) -> PointSpec:
    return PointSpec(nodes=args.nodes, edges=args.edges, inputs=inputs, demand=demand, steps=args.steps, tol=args.tol,
                     alpha=args.alpha if inputs == "voltage" else args.force_alpha, eta=0.5, sweep_seed=args.seed, seed=i)


def run_one(i: int, demand: float, args: argparse.Namespace) -> Outcome:
    """Network ``i`` (seed [args.seed, i]) with voltage inputs at ``demand``."""
    return _outcome(run_point(_spec(i, demand, args, "voltage")), demand)


def run_force(i: int, demand: float, args: argparse.Namespace) -> Outcome:
    """Network ``i`` with the talk's current (force) inputs at ``demand``."""
    return _outcome(run_point(_spec(i, demand, args, "force")), demand)


def _med(a: np.ndarray) -> str:
    q1, q2, q3 = np.percentile(a, [25, 50, 75])
    return f"{q2:9.3g}  [{q1:.3g}, {q3:.3g}]"


def table(outs: list[Outcome], title: str) -> str:
    n = len(outs)
    lam = np.array([[o.before.lam[0], o.after.lam[0]] for o in outs])
    share = np.array([[o.before.share_soft, o.after.share_soft] for o in outs])
    ashare = np.array([[o.before.abs_share_soft, o.after.abs_share_soft] for o in outs])
    deff = np.array([[o.before.deff, o.after.deff] for o in outs])
    gbar = np.array([[o.before.gbar, o.after.gbar] for o in outs])
    err = np.array([[o.err0, o.err1] for o in outs])
    rows = [
        ("λ_min (S)", lam, lam[:, 1] / lam[:, 0], np.sum(lam[:, 1] < lam[:, 0]), "falls"),
        ("softest share |c0|/Σ|c|", ashare, ashare[:, 1] - ashare[:, 0], np.sum(ashare[:, 1] > ashare[:, 0]), "rises"),
        ("  signed share c0/Σc", share, share[:, 1] - share[:, 0], np.sum(share[:, 1] > share[:, 0]), "rises"),
        ("D_eff", deff, deff[:, 1] / deff[:, 0], np.sum(deff[:, 1] < deff[:, 0]), "falls"),
        ("ḡ (Ω)", gbar, gbar[:, 1] / gbar[:, 0], np.sum(gbar[:, 1] > gbar[:, 0]), "rises"),
    ]
    lines = [title, f"{'quantity':26s} {'before: median [IQR]':>30s} {'after: median [IQR]':>30s} "
             f"{'after/before (share: after−before)':>38s}  effect in"]
    for name, ba, rel, count, word in rows:
        lines.append(f"{name:26s} {_med(ba[:, 0]):>30s} {_med(ba[:, 1]):>30s} {_med(rel):>38s}  "
                     f"{count}/{n} ({word})")
    lines.append(f"{'task error (V²)':26s} {_med(err[:, 0]):>30s} {_med(err[:, 1]):>30s}")
    lines.append(f"{'|Δk|/|k0|':26s} {_med(np.array([o.dk_rel for o in outs])):>30s}")
    up = np.array([o.after.response > o.before.response for o in outs])
    for name, sel in (("up (raising it)", up), ("down (lowering it)", ~up)):
        if np.any(sel):
            lines.append(f"  tasks pushing the output {name}: {int(sel.sum())}; |c0|/Σ|c| rises in "
                         f"{int(np.sum(ashare[sel, 1] > ashare[sel, 0]))}, signed share in "
                         f"{int(np.sum(share[sel, 1] > share[sel, 0]))}, λ_min falls in {int(np.sum(lam[sel, 1] < lam[sel, 0]))}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", type=int, default=24)
    p.add_argument("--nodes", type=int, default=50)
    p.add_argument("--edges", type=int, default=120)
    p.add_argument("--demands", default="0.9", help="comma-separated demands d in (0, 1]")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--alpha", type=float, default=5e-3, help="learning rate α (S/V²)")
    p.add_argument("--tol", type=float, default=1e-8, help="stop at this squared output error (V²)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inputs", choices=["voltage", "force"], default="voltage",
                   help="voltage sources at the inputs (the bench) or current forces (the talk's setting)")
    p.add_argument("--force-alpha", type=float, default=1e-5, help="learning rate for --inputs force (S/V²)")
    args = p.parse_args(argv)
    demands = [float(d) for d in args.demands.split(",")]
    t0 = time.perf_counter()
    alpha = args.alpha if args.inputs == "voltage" else args.force_alpha
    print(f"{args.networks} random networks, {args.nodes} nodes, {args.edges} edges, 2 {args.inputs} inputs, 1 output; "
          f"continuous coupled learning (α={alpha:g} S/V², η=0.5, ≤{args.steps} steps)\n")
    run = run_one if args.inputs == "voltage" else run_force
    summary = []
    for d in demands:
        outs = [run(i, d, args) for i in range(args.networks)]
        what = "o0 + d·(far end − o0)" if args.inputs == "voltage" else "o0·(1 + 3d)"
        print(table(outs, f"demand d = {d:g}  (target = {what})"))
        print()
        n = len(outs)
        summary.append((d, np.median([o.dk_rel for o in outs]),
                        np.median([o.after.lam[0] / o.before.lam[0] for o in outs]),
                        np.median([o.after.abs_share_soft - o.before.abs_share_soft for o in outs]),
                        np.median([o.after.deff / o.before.deff for o in outs]),
                        np.median([o.after.gbar / o.before.gbar for o in outs]),
                        sum(o.after.lam[0] < o.before.lam[0] and o.after.abs_share_soft > o.before.abs_share_soft
                            and o.after.deff < o.before.deff and o.after.gbar > o.before.gbar for o in outs), n))
    if len(demands) > 1:
        print("scaling with how much the network had to learn (medians over the ensemble):")
        print(f"{'demand':>7s} {'|Δk|/|k0|':>10s} {'λmin a/b':>9s} {'Δ|share|':>8s} {'Deff a/b':>9s} {'ḡ a/b':>7s}  all four")
        for d, dk, lam, sh, de, gb, allf, n in summary:
            print(f"{d:7.2f} {dk:10.3f} {lam:9.3f} {sh:8.3f} {de:9.3f} {gb:7.3f}  {allf}/{n}")
    print(f"\nwall time {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
