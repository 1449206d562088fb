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

Voltage inputs are trained with labnet.insilico.trainer.CoupledLearning when it is available, otherwise a plain loop over
labnet.core.physics.Solver (free state) and Solver.clamped (clamped state, same factorisation) with
labnet.core.rules.coupled_learning — the same physics either way.

Run:  python benchmarks/physical_effects.py [--networks 24] [--nodes 50] [--edges 120]
      [--demands 0.9] [--steps 4000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from labnet.core.analysis import (
    TaskModes,
    eigenmodes,
    mode_shares,
    model_deff,
    model_gbar,
    output_functional,
    reduced_hessian,
    task_modes,
)
from labnet.core.generators import random_network
from labnet.core.network import Network
from labnet.core.physics import Solver
from labnet.core.rules import clip_conductance, coupled_learning

K_MIN, K_MAX = 1e-5, 1e-2  # S: the conductance range of the continuous rule


@dataclass
class Outcome:
    """Before/after picture of one trained network."""

    demand: float
    before: TaskModes
    after: TaskModes
    err0: float
    err1: float
    dk_rel: float  # |Δk| / |k0|


def _train_plain(net: Network, k: np.ndarray, x: np.ndarray, t: np.ndarray, alpha: float, eta: float,
                 steps: int, tol: float) -> np.ndarray:
    """Coupled learning with labnet.core.physics.Solver (free and clamped state on one factorisation)."""
    held = list(net.inputs)
    vin = dict(zip(held, map(float, x)))
    out = net.outputs[0]
    oi = net.index[out]
    for _ in range(steps):
        s = Solver(net, k, held)
        vf = s.solve(vin)
        o = vf[oi]
        if (o - t) ** 2 < tol:
            break
        vc = s.clamped(vin, {out: o + eta * (t - o)})
        k = clip_conductance(k + coupled_learning(net.delta_v(vf), net.delta_v(vc), alpha=alpha, eta=eta), K_MIN, K_MAX)
    return k


def train(net: Network, k0: np.ndarray, x: np.ndarray, t: float, *, alpha: float, eta: float, steps: int,
          tol: float) -> np.ndarray:
    """Trained conductances (S), shape (E,)."""
    try:
        from labnet.insilico.trainer import CoupledLearning
    except ImportError:
        return _train_plain(net, k0.copy(), x, t, alpha, eta, steps, tol)
    cl = CoupledLearning(net, k0.copy(), x[None, :], np.array([[t]]), alpha=alpha, eta=eta, k_min=K_MIN, k_max=K_MAX)
    chunk = 200
    for _ in range(0, steps, chunk):
        errs = cl.train(chunk)
        if errs[-1] < tol:
            break
    return np.asarray(cl.k)


def force_modes(net: Network, k: np.ndarray, force: np.ndarray, a: np.ndarray) -> TaskModes:
    """Soft-mode picture with only ground held: H = L_ff on all other nodes, input ``force`` (A)."""
    red = reduced_hessian(net, k, [])
    lam, vecs = eigenmodes(red.h)
    f, an, c = mode_shares(lam, vecs, force, a)
    resp = float(np.sum(c))
    return TaskModes(lam, f, an, c, resp, float(c[0] / resp), float(abs(c[0]) / np.sum(np.abs(c))),
                     model_deff(lam), model_gbar(lam))


def train_force(net: Network, k: np.ndarray, force: np.ndarray, a: np.ndarray, t: float, *, alpha: float,
                eta: float, steps: int, tol: float) -> np.ndarray:
    """Coupled learning with current inputs: free state H⁻¹F, clamped state with the output held
    at o + η(t − o) (the free state plus the response to the current that holding takes);
    both from one labnet.core.physics.Solver factorisation per step."""
    red = reduced_hessian(net, k, [])
    free = red.free_idx
    op = int(np.flatnonzero(a)[0])
    vf, vc = np.zeros(net.n_nodes), np.zeros(net.n_nodes)
    for _ in range(steps):
        s = Solver(net, k, [])
        x = s.solve_free_rhs(force)
        o = x[op]
        if (o - t) ** 2 < tol * t**2:
            break
        z = s.solve_free_rhs(a)
        vf[free] = x
        vc[free] = x + z * (eta * (t - o) / z[op])
        k = clip_conductance(k + coupled_learning(net.delta_v(vf), net.delta_v(vc), alpha=alpha, eta=eta), K_MIN, K_MAX)
    return k


def run_force(i: int, demand: float, args: argparse.Namespace) -> Outcome:
    rng = np.random.default_rng([args.seed, i])
    net = random_network(args.nodes, args.edges, seed=rng, n_inputs=2, n_outputs=1)
    k0 = rng.uniform(0.2e-3, 1.0e-3, net.n_edges)
    free = reduced_hessian(net, k0, []).free_idx
    theta = rng.uniform(0, 2 * np.pi)
    force = output_functional(net, free, list(net.inputs), 1e-3 * np.array([np.cos(theta), np.sin(theta)]))
    a = output_functional(net, free, list(net.outputs))
    before = force_modes(net, k0, force, a)
    o0 = before.response
    t = o0 * (1 + 3 * demand)
    k1 = train_force(net, k0.copy(), force, a, t, alpha=args.force_alpha, eta=0.5, steps=args.steps, tol=args.tol)
    after = force_modes(net, k1, force, a)
    return Outcome(demand, before, after, (o0 - t) ** 2, (after.response - t) ** 2,
                   float(np.linalg.norm(k1 - k0) / np.linalg.norm(k0)))


def output(net: Network, k: np.ndarray, x: np.ndarray) -> float:
    v = Solver(net, k, list(net.inputs)).solve(dict(zip(net.inputs, map(float, x))))
    return float(v[net.index[net.outputs[0]]])


def run_one(i: int, demand: float, args: argparse.Namespace) -> Outcome:
    rng = np.random.default_rng([args.seed, i])
    net = random_network(args.nodes, args.edges, seed=rng, n_inputs=2, n_outputs=1)
    k0 = rng.uniform(0.2e-3, 1.0e-3, net.n_edges)
    x = np.array([1.0, rng.uniform(0.0, 0.5)])
    o0 = output(net, k0, x)
    lo, hi = 0.05 * x.max(), 0.95 * x.max()
    far = lo if abs(o0 - lo) > abs(o0 - hi) else hi
    t = o0 + demand * (far - o0)
    k1 = train(net, k0, x, t, alpha=args.alpha, eta=0.5, steps=args.steps, tol=args.tol)
    before = task_modes(net, k0, x)
    after = task_modes(net, k1, x)
    o1 = output(net, k1, x)
    return Outcome(demand, before, after, (o0 - t) ** 2, (o1 - t) ** 2,
                   float(np.linalg.norm(k1 - k0) / np.linalg.norm(k0)))


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
