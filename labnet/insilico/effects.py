"""The physical effects of learning on one in-silico network: one sweep point as a pure function.

:func:`run_point` builds a seeded network, trains it by continuous coupled learning on an
allosteric task (voltage inputs with :class:`labnet.insilico.trainer.CoupledLearning`, or the
talk's current/force inputs with one factorisation per step) and compares the free-state
Hessian before and after (:mod:`labnet.core.analysis`):

1. λ_min (the softest eigenvalue, S) falls;
2. the softest mode's share of the task response rises (counted on |c_0|/Σ|c_n|, the signed
   share c_0/Σc_n reported beside it);
3. the model D_eff = (Σλ⁻²)²/Σλ⁻⁴ falls;
4. ḡ = sqrt(Σλ⁻²) rises.

Targets sit far from the untrained response: voltage inputs t = o_0 + d·(b − o_0) with b the
far end of what the output reaches (5 % or 95 % of the larger input); force inputs
t = o_0·(1 + 3d); d is the *demand*. This is the logic of ``benchmarks/physical_effects.py``
moved into the library: the same seeds give the same networks and the same numbers.

The result depends only on the :class:`PointSpec` (every random draw comes from
``numpy.random.default_rng([sweep_seed, seed])``), never on the process that runs it.
"""

from __future__ import annotations

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
from labnet.core.conductance import PartModel
from labnet.core.generators import delaunay_network, random_network, square_lattice
from labnet.core.network import Network
from labnet.core.parts import get_part
from labnet.core.physics import Solver
from labnet.core.rules import Rule, clip_conductance, coupled_learning
from labnet.insilico.capacity import task_targets
from labnet.insilico.ep import EP_FORMULA, point_trainer
from labnet.insilico.packed import PackedRun, shape_of, train_packed
from labnet.insilico.trainer import CoupledLearning

NETWORKS = ("random", "lattice", "delaunay")
INPUTS = ("voltage", "force")
RULES = ("continuous", "sign", "stochastic", "coupled")


@dataclass(frozen=True)
class PointSpec:
    """Everything one point's run depends on (units in the names: _siemens siemens, _a amperes).

    ``nodes``/``edges`` size a random network, ``nodes`` a Delaunay one, ``rows``×``cols`` a
    lattice. ``alpha`` in S/V², ``tol`` the squared output error (V²; relative for force inputs)
    at which training stops, checked every ``block`` steps (voltage) or every step (force).

    Non-idealities (voltage inputs): ``part`` names a digipot (:data:`labnet.core.parts.CATALOG`);
    the edges are then tap-quantised parts with R_AB drawn within ±``tolerance`` (relative) around
    the nominal value, initial codes nearest the drawn k₀, and ``rule`` one of the tap rules
    (``sign`` with ``deadband_siemens``, ``stochastic``, ``coupled`` = nearest tap; ≤ ``max_taps`` per step).
    ``update_probability`` p: desynchronous updates (Wycoff et al. 2022) — each edge applies its tap
    change with probability p per step, independently (tap rules; :func:`labnet.core.rules.desynchronise`).
    ``formula = "power_efficient"`` (tap rules): Δk = (α/η)[(1−λ)(ΔV^F)² − (ΔV^C)²] with λ = ``power_lambda``;
    ``formula = "ep"``: equilibrium propagation with nudge ``beta_siemens`` (:mod:`labnet.insilico.ep`; α in S²/V²).
    """

    network: str = "random"
    nodes: int = 50
    edges: int = 120
    rows: int = 6
    cols: int = 6
    n_inputs: int = 2
    inputs: str = "voltage"
    demand: float = 0.9
    alpha: float = 5e-3
    eta: float = 0.5
    steps: int = 4000
    block: int = 200
    tol: float = 1e-8
    k_min_siemens: float = 1e-5
    k_max_siemens: float = 1e-2
    k0_min_siemens: float = 0.2e-3
    k0_max_siemens: float = 1.0e-3
    force_a: float = 1e-3
    part: str = ""
    rule: str = "continuous"
    tolerance: float = 0.0
    deadband_siemens: float = 0.0
    max_taps: int = 4
    update_probability: float = 1.0
    formula: str = "coupled"
    power_lambda: float = 0.0
    beta_siemens: float = 0.0
    n_tasks: int = 1
    sweep_seed: int = 0
    seed: int = 0


#: Metric columns of a point's result, in order (the parameters are the PointSpec fields).
METRICS = (
    "lam_min_before", "lam_min_after", "lam_ratio", "abs_share_before", "abs_share_after", "share_before", "share_after",
    "deff_before", "deff_after", "deff_ratio", "gbar_before", "gbar_after", "gbar_ratio", "response_before", "response_after",
    "target", "err_before", "err_after", "dk_rel", "steps_run", "steps_to_target", "reached", "lam_falls", "share_rises",
    "deff_falls", "gbar_rises", "all_four", "lam_mean_before", "lam_mean_after", "lam_mean_ratio",
)

#: The four effects, as the boolean columns that count them.
EFFECTS = ("lam_falls", "share_rises", "deff_falls", "gbar_rises")


def build_network(p: PointSpec, rng: np.random.Generator) -> Network:
    """The point's network (``n_inputs`` inputs, ``n_tasks`` outputs: one target each), drawn from ``rng``."""
    if p.network == "random":
        return random_network(p.nodes, p.edges, seed=rng, n_inputs=p.n_inputs, n_outputs=p.n_tasks)
    if p.network == "lattice":
        return square_lattice(p.rows, p.cols, seed=rng, n_inputs=p.n_inputs, n_outputs=p.n_tasks)
    return delaunay_network(p.nodes, seed=rng, n_inputs=p.n_inputs, n_outputs=p.n_tasks)


def _output(net: Network, k: np.ndarray, x: np.ndarray) -> float:
    v = Solver(net, k, list(net.inputs)).solve(dict(zip(net.inputs, map(float, x))))
    return float(v[net.index[net.outputs[0]]])


@dataclass(frozen=True)
class Taps:
    """Tap-quantised edges: the part model (drawn R_AB), initial codes and the training seed."""

    model: PartModel
    codes: np.ndarray
    max_code: int
    seed: int


def quantise(p: PointSpec, k0: np.ndarray, rng: np.random.Generator) -> Taps:
    """Parts for every edge (R_AB within ±tolerance, drawn from ``rng``) and codes nearest ``k0`` (S)."""
    part = get_part(p.part)
    n = len(k0)
    r_ab = part.r_ab_ohm * (1.0 + p.tolerance * rng.uniform(-1.0, 1.0, n))
    model = PartModel(part, n, r_ab_ohm=r_ab)
    codes = np.clip(np.rint((1.0 / k0 - part.r_w_ohm) / r_ab * part.max_code), 0, part.max_code).astype(np.int64)
    return Taps(model, codes, part.max_code, int(rng.integers(0, 2**62)))


def train_voltage(net: Network, k0: np.ndarray, x: np.ndarray, t: float, p: PointSpec,
                  taps: Taps | None = None) -> tuple[np.ndarray, int, float]:
    """Coupled learning with voltage inputs ``x`` (V), target ``t`` (V), in blocks of ``p.block`` steps
    (continuous, or on ``taps`` with ``p.rule``).

    Returns trained conductances (E,) in S, steps run, and the first step (1-based) whose free
    error fell below ``p.tol`` (NaN if none). The continuous rule runs on the packed trainer
    (:func:`labnet.insilico.packed.train_packed`, here with one run), so a point gives the same
    numbers alone as packed with others in :func:`run_chunk`.
    """
    if p.formula == EP_FORMULA:  # equilibrium propagation, continuous or on taps (labnet.insilico.ep)
        cl: CoupledLearning = point_trainer(net, k0, x, t, p, taps)
    elif taps is None:
        r = train_packed([_packed_run(net, k0, x, t, p)], steps=p.steps, block=p.block)[0]
        return r.k, r.steps_run, r.steps_to_target
    else:
        rule = Rule(kind=p.rule, eta=p.eta, alpha=p.alpha, deadband_siemens=p.deadband_siemens, max_taps=p.max_taps,
                    update_probability=p.update_probability, formula=p.formula, power_lambda=p.power_lambda)
        cl = CoupledLearning(net, None, x[None, :], np.array([[t]]), alpha=p.alpha, eta=p.eta, rule=rule,
                             model=taps.model, codes=taps.codes, code_range=(0, taps.max_code), seed=taps.seed)
    run, hit = train_in_blocks(cl, p)
    return np.asarray(cl.k), run, hit


def train_in_blocks(cl: CoupledLearning, p: PointSpec) -> tuple[int, float]:
    """Train ``cl`` in blocks of ``p.block`` steps until the last error of a block is below ``p.tol``
    (V²) or ``p.steps`` ran; returns steps run and the first (1-based) step below ``p.tol`` (NaN if none)."""
    run, hit = 0, float("nan")
    while run < p.steps:
        errs = cl.train(min(p.block, p.steps - run))
        below = np.flatnonzero(errs < p.tol)
        if below.size and hit != hit:
            hit = float(run + below[0] + 1)
        run += len(errs)
        if errs[-1] < p.tol:
            break
    return run, hit


def _packed_run(net: Network, k0: np.ndarray, x: np.ndarray, t: float, p: PointSpec) -> PackedRun:
    return PackedRun(net, k0, x, np.array([t]), p.alpha, p.eta, p.k_min_siemens, p.k_max_siemens, p.tol)


def force_modes(net: Network, k: np.ndarray, force: np.ndarray, a: np.ndarray) -> TaskModes:
    """Soft-mode picture with only ground held: H = L_ff on all other nodes, input ``force`` (A)."""
    red = reduced_hessian(net, k, [])
    lam, vecs = eigenmodes(red.h)
    f, an, c = mode_shares(lam, vecs, force, a)
    resp = float(np.sum(c))
    return TaskModes(lam, f, an, c, resp, float(c[0] / resp), float(abs(c[0]) / np.abs(c).sum()), model_deff(lam), model_gbar(lam))


def train_force(net: Network, k: np.ndarray, force: np.ndarray, a: np.ndarray, t: float,
                p: PointSpec) -> tuple[np.ndarray, int, float]:
    """Coupled learning with current inputs: free state H⁻¹F, clamped state with the output held at
    o + η(t − o); both from one :class:`labnet.core.physics.Solver` factorisation per step.
    Returns conductances (S), steps run and the step at which the target was reached (NaN if not)."""
    free = reduced_hessian(net, k, []).free_idx
    op = int(np.flatnonzero(a)[0])
    vf, vc = np.zeros(net.n_nodes), np.zeros(net.n_nodes)
    for step in range(p.steps):
        s = Solver(net, k, [])
        x = s.solve_free_rhs(force)
        o = x[op]
        if (o - t) ** 2 < p.tol * t**2:
            return k, step, float(step)
        z = s.solve_free_rhs(a)
        vf[free] = x
        vc[free] = x + z * (p.eta * (t - o) / z[op])
        k = clip_conductance(k + coupled_learning(net.delta_v(vf), net.delta_v(vc), alpha=p.alpha, eta=p.eta),
                             p.k_min_siemens, p.k_max_siemens)
    return k, p.steps, float("nan")


def mean_eigenvalue(net: Network, k: np.ndarray, held: list[str]) -> float:
    """λ̄ = tr H / F (S): the mean eigenvalue of the Hessian on the nodes not ``held`` (ground always
    held) — the network's overall stiffness, from the Laplacian's diagonal (all modes, any size)."""
    red = reduced_hessian(net, k, held, dense=False)
    return float(red.h.diagonal().mean())


def _row(before: TaskModes, after: TaskModes, t: float, err0: float, err1: float, k0: np.ndarray, k1: np.ndarray,
         steps_run: int, hit: float, tol: float, lam_mean: tuple[float, float]) -> dict[str, float | int | bool]:
    r: dict[str, float | int | bool] = {
        "lam_min_before": float(before.lam[0]), "lam_min_after": float(after.lam[0]),
        "lam_ratio": float(after.lam[0] / before.lam[0]),
        "abs_share_before": before.abs_share_soft, "abs_share_after": after.abs_share_soft,
        "share_before": before.share_soft, "share_after": after.share_soft,
        "deff_before": before.deff, "deff_after": after.deff, "deff_ratio": after.deff / before.deff,
        "gbar_before": before.gbar, "gbar_after": after.gbar, "gbar_ratio": after.gbar / before.gbar,
        "response_before": before.response, "response_after": after.response, "target": float(t),
        "err_before": float(err0), "err_after": float(err1),
        "dk_rel": float(np.linalg.norm(k1 - k0) / np.linalg.norm(k0)),
        "steps_run": int(steps_run), "steps_to_target": float(hit), "reached": bool(hit == hit),
    }
    r["lam_falls"] = bool(after.lam[0] < before.lam[0])
    r["share_rises"] = bool(after.abs_share_soft > before.abs_share_soft)
    r["deff_falls"] = bool(after.deff < before.deff)
    r["gbar_rises"] = bool(after.gbar > before.gbar)
    r["all_four"] = bool(r["lam_falls"] and r["share_rises"] and r["deff_falls"] and r["gbar_rises"])
    r["lam_mean_before"], r["lam_mean_after"] = lam_mean
    r["lam_mean_ratio"] = lam_mean[1] / lam_mean[0]
    return r


def run_point(p: PointSpec) -> dict[str, float | int | bool]:
    """Train one network and measure the four effects; a dict with the :data:`METRICS` keys."""
    rng = np.random.default_rng([p.sweep_seed, p.seed])
    net = build_network(p, rng)
    k0 = rng.uniform(p.k0_min_siemens, p.k0_max_siemens, net.n_edges)
    if p.inputs == "force":
        free = reduced_hessian(net, k0, []).free_idx
        if p.n_inputs == 2:
            theta = rng.uniform(0, 2 * np.pi)
            direction = np.array([np.cos(theta), np.sin(theta)])
        else:
            direction = rng.standard_normal(p.n_inputs)
            direction /= np.linalg.norm(direction)
        force = output_functional(net, free, list(net.inputs), p.force_a * direction)
        a = output_functional(net, free, list(net.outputs))
        before = force_modes(net, k0, force, a)
        t = before.response * (1 + 3 * p.demand)
        k1, steps_run, hit = train_force(net, k0.copy(), force, a, t, p)
        after = force_modes(net, k1, force, a)
        return _row(before, after, t, (before.response - t) ** 2, (after.response - t) ** 2, k0, k1,
                    steps_run, hit, p.tol, (mean_eigenvalue(net, k0, []), mean_eigenvalue(net, k1, [])))
    if p.n_tasks > 1:
        return run_tasks_point(p, rng, net, k0)
    vp = _voltage_point(p, rng, net, k0)
    k1, steps_run, hit = train_voltage(net, vp.k0, vp.x, vp.t, p, vp.taps)
    return finish_voltage(vp, k1, steps_run, hit, p)


def run_tasks_point(p: PointSpec, rng: np.random.Generator, net: Network, k0: np.ndarray) -> dict[str, float | int | bool]:
    """Train one network on ``p.n_tasks`` targets; the point's metrics (continuous rule, voltage inputs).

    ``rng``, ``net`` and ``k0`` are the point's draws so far (as :func:`run_point` makes them); the
    inputs are drawn next from ``rng``; see :mod:`labnet.insilico.capacity`.
    """
    x = np.concatenate([[1.0], rng.uniform(0.0, 0.5, p.n_inputs - 1)])
    o0, t = task_targets(net, k0, x, p.demand)
    shift = t - o0
    w = shift / np.linalg.norm(shift) if np.any(shift) else np.ones_like(shift) / np.sqrt(shift.size)
    cl = CoupledLearning(net, k0.copy(), x[None, :], t[None, :], alpha=p.alpha, eta=p.eta,
                         k_min=p.k_min_siemens, k_max=p.k_max_siemens)
    steps_run, hit = train_in_blocks(cl, p)
    k1 = np.asarray(cl.k, dtype=float)
    o1 = cl.outputs(x[None, :])[0]
    before, after = task_modes(net, k0, x, w), task_modes(net, k1, x, w)
    held = list(net.inputs)
    return _row(before, after, float(np.mean(t)), float(np.mean((o0 - t) ** 2)), float(np.mean((o1 - t) ** 2)),
                k0, k1, steps_run, hit, p.tol, (mean_eigenvalue(net, k0, held), mean_eigenvalue(net, k1, held)))


@dataclass(frozen=True)
class VoltagePoint:
    """A voltage-input point before training: network, initial conductances (E,) S, inputs (n_in,) V,
    target and untrained output (V), tap-quantised parts (None: continuous)."""

    net: Network
    k0: np.ndarray
    x: np.ndarray
    t: float
    o0: float
    taps: Taps | None


def _voltage_point(p: PointSpec, rng: np.random.Generator, net: Network, k0: np.ndarray) -> VoltagePoint:
    x = np.concatenate([[1.0], rng.uniform(0.0, 0.5, p.n_inputs - 1)])
    taps = quantise(p, k0, rng) if p.part else None  # drawn after every continuous draw
    if taps is not None:
        k0 = taps.model.conductance(taps.codes)
    o0 = _output(net, k0, x)
    lo, hi = 0.05 * x.max(), 0.95 * x.max()
    far = lo if abs(o0 - lo) > abs(o0 - hi) else hi
    return VoltagePoint(net, k0, x, o0 + p.demand * (far - o0), o0, taps)


def prepare_voltage(p: PointSpec) -> VoltagePoint:
    """The draws of a voltage-input point (network, k₀, inputs, parts), as :func:`run_point` makes them."""
    rng = np.random.default_rng([p.sweep_seed, p.seed])
    net = build_network(p, rng)
    return _voltage_point(p, rng, net, rng.uniform(p.k0_min_siemens, p.k0_max_siemens, net.n_edges))


def finish_voltage(vp: VoltagePoint, k1: np.ndarray, steps_run: int, hit: float,
                    p: PointSpec) -> dict[str, float | int | bool]:
    """The point's metrics (:data:`METRICS`) from its trained conductances ``k1`` (E,) in S."""
    before, after = task_modes(vp.net, vp.k0, vp.x), task_modes(vp.net, k1, vp.x)
    o1 = _output(vp.net, k1, vp.x)
    held = list(vp.net.inputs)
    return _row(before, after, vp.t, (vp.o0 - vp.t) ** 2, (o1 - vp.t) ** 2, vp.k0, k1, steps_run, hit, p.tol,
                (mean_eigenvalue(vp.net, vp.k0, held), mean_eigenvalue(vp.net, k1, held)))


def packable(p: PointSpec) -> bool:
    """Points trained by the continuous rule with voltage inputs go through the packed trainer."""
    return p.inputs == "voltage" and not p.part and p.n_tasks == 1 and p.formula != EP_FORMULA


def run_chunk(points: list[tuple[int, dict[str, object]]]) -> list[dict[str, object]]:
    """Run several points (``(index, PointSpec fields)`` pairs) in order with BLAS and OpenMP pinned to
    one thread; one row per point: ``point``, the parameters, the :data:`METRICS`, and ``compute_s``
    (the point's wall time in its worker, s: the one column that is not reproducible).

    This is what one Dask task runs; the rows depend only on the points given.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with the sweep extra
        threadpool_limits = None
    limits = threadpool_limits(1) if threadpool_limits is not None else None
    try:
        return _chunk_rows(points)
    finally:
        if limits is not None:
            limits.unregister()


def _chunk_rows(points: list[tuple[int, dict[str, object]]]) -> list[dict[str, object]]:
    specs = [PointSpec(**fields) for _, fields in points]  # type: ignore[arg-type]
    spent = [0.0] * len(points)
    metrics: dict[int, dict[str, float | int | bool]] = {}
    prepared: dict[int, VoltagePoint] = {}
    groups: dict[tuple[tuple[int, int, int, int], int, int], list[int]] = {}
    for j, spec in enumerate(specs):
        t0 = time.perf_counter()
        if packable(spec):
            vp = prepared[j] = prepare_voltage(spec)
            groups.setdefault((shape_of(vp.net), spec.steps, spec.block), []).append(j)
        else:
            metrics[j] = run_point(spec)
        spent[j] += time.perf_counter() - t0
    for (_, steps, block), members in groups.items():
        t0 = time.perf_counter()
        runs = [_packed_run(prepared[j].net, prepared[j].k0, prepared[j].x, prepared[j].t, specs[j]) for j in members]
        results = train_packed(runs, steps=steps, block=block)
        share = (time.perf_counter() - t0) / len(members)
        for j, r in zip(members, results, strict=True):
            t1 = time.perf_counter()
            metrics[j] = finish_voltage(prepared[j], r.k, r.steps_run, r.steps_to_target, specs[j])
            spent[j] += share + time.perf_counter() - t1
    return [{"point": int(index), **fields, **metrics[j], "compute_s": spent[j]}
            for j, (index, fields) in enumerate(points)]


__all__ = ["EFFECTS", "INPUTS", "METRICS", "NETWORKS", "PointSpec", "RULES", "Taps", "VoltagePoint", "build_network",
           "finish_voltage", "force_modes", "mean_eigenvalue", "packable", "prepare_voltage", "quantise", "run_chunk",
           "run_point", "run_tasks_point", "train_force", "train_in_blocks", "train_voltage"]
