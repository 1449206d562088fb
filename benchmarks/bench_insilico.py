"""Benchmarks of labnet's physics and in-silico training (issue 5). Not a test: run it by hand.

    python benchmarks/bench_insilico.py                 # everything (~3–4 min on 2 cores)
    python benchmarks/bench_insilico.py --quick         # 16, 256, 4096 edges only, fewer repeats
    python benchmarks/bench_insilico.py --only 65536    # one size (both topologies)
    python benchmarks/bench_insilico.py --json out.json # also write the numbers

What it prints, for seeded networks of about 16, 256, 4,096 and 65,536 edges (Delaunay
triangulations of random points, ``labnet.core.generators.delaunay_network``, and open square
lattices, ``labnet.core.generators.square_lattice``), allostery task (2 inputs at 1 V / 0 V, two
outputs to be pushed 0.1 V up and 0.1 V down from where they start — a task the networks keep
learning through the timed steps), conductances log-uniform in 0.1–1 mS, continuous coupled
learning (α = 1e-3 S/V², η = 0.5):

* ``step``: seconds per training step (free + clamped state + update) of
  :class:`labnet.insilico.trainer.CoupledLearning` with its automatic method, steps per second, the
  method used, factorisations and PCG iterations per step, and the error after / before;
* ``floor``: one sparse numeric Cholesky factorisation (ordering and symbolic analysis reused)
  plus one forward and one backward triangular solve of the same reduced Laplacian — CHOLMOD
  (scikit-sparse, when installed) and SciPy ``splu`` side by side, and dense LAPACK for small
  sizes;
* ``dense ref``: two fresh ``numpy.linalg.solve`` of the reduced Laplacian, one per state
  (free: outputs free; clamped: outputs held) — skipped at 65,536 edges (two ~3.8 GB matrices);
* ``peak MB``: peak resident memory of a fresh process that built and trained that network
  (and ran its floor and dense reference), minus the same process's resident memory after the
  imports — it includes lazily imported libraries and, at 16 edges, numba's compiler;
  ``trainer MB``: peak of the NumPy/Python allocations (tracemalloc) while building the
  trainer and taking its first steps — the memory that scales with the network (CHOLMOD's own
  factor storage is not traced; it is in ``peak MB``);
* the 1,000-sample regression epoch at 4,096 edges vs one single-sample step;
* batched ensembles of 16- and 256-edge networks (network-steps per second);
* host CPU per training step of the engine on the 16-edge simulated rig, through the real
  drivers on the emulated wire (``protocols/rigs/sim16.toml``) and wire-less
  (``sim16-direct.toml``); the modelled instrument time is on a virtual clock, not slept.

BLAS runs single-threaded (OPENBLAS_NUM_THREADS=1, set below) for all of it, the dense
reference included. Every time is the best of several repeats (the machine is shared; the best is the one least
disturbed). Each size runs in its own subprocess so its peak memory is its own.
"""

from __future__ import annotations

import os

# Single-threaded BLAS for every measurement (and the dense reference): the 2 cores are shared, and
# OpenBLAS threads spinning on small products cost more than they give here.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = (16, 256, 4096, 65536)
# node counts whose Delaunay triangulation (seed 0) has about the target number of edges
DELAUNAY_NODES = {16: 8, 256: 90, 4096: 1373, 65536: 21855}  # 16, 255, 4097, 65537 edges
ALPHA, ETA = 1e-3, 0.5
K_LO, K_HI = 1e-4, 1e-3


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_time(run: Any, budget_s: float = 1.5, chunk_s: float = 0.02, min_chunks: int = 5) -> float:
    """Seconds per unit of work: ``run(n)`` does n units. Timed in chunks of about ``chunk_s``
    for about ``budget_s``; the best chunk's mean is returned (the least disturbed one — the
    machine is shared)."""
    t0 = time.perf_counter()
    run(1)
    est = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(chunk_s / est))
    best = np.inf
    start = time.perf_counter()
    chunks = 0
    while chunks < min_chunks or time.perf_counter() - start < budget_s:
        t0 = time.perf_counter()
        run(n)
        best = min(best, (time.perf_counter() - t0) / n)
        chunks += 1
    return float(best)


def loop(fn: Any) -> Any:
    """``run(n)`` for a function doing one unit of work."""

    def run(n: int) -> None:
        for _ in range(n):
            fn()

    return run


def lattice_shape(target: int) -> tuple[int, int]:
    best = (2, 2)
    for r in range(2, 400):
        for c in range(r, r + 8):
            if abs(2 * r * c - r - c - target) < abs(2 * best[0] * best[1] - best[0] - best[1] - target):
                best = (r, c)
    return best


def make_network(size: int, topo: str) -> Any:
    from labnet.core.generators import delaunay_network, square_lattice

    if topo == "delaunay":
        return delaunay_network(DELAUNAY_NODES[size], seed=0, n_inputs=2, n_outputs=2)
    r, c = lattice_shape(size)
    return square_lattice(r, c, seed=0, n_inputs=2, n_outputs=2)


def make_trainer(net: Any, method: str = "auto", **kw: Any) -> Any:
    from labnet.insilico.trainer import CoupledLearning, StepStats

    rng = np.random.default_rng(1)
    k0 = 10 ** rng.uniform(np.log10(K_LO), np.log10(K_HI), net.n_edges)
    x = np.array([[1.0, 0.0]])
    cl = CoupledLearning(net, k0, x, np.zeros((1, 2)), alpha=ALPHA, eta=ETA, k_min=1e-6, k_max=1e-2, method=method, **kw)
    cl.targets[:] = cl.outputs(x) + np.array([0.1, -0.1])  # push the two outputs apart from where they start
    cl.stats = StepStats()
    return cl


# ------------------------------------------------------------------ one size (in a subprocess)
def bench_size(size: int, topo: str, quick: bool) -> dict[str, Any]:
    import scipy.linalg as la
    import scipy.sparse.linalg as spla

    import labnet.insilico.trainer  # noqa: F401  (imported before any memory is measured)
    from labnet.core.solvers import HAVE_CHOLMOD, ReducedLaplacian, SparseCholesky

    base = rss_mb()
    net = make_network(size, topo)
    bud = 0.6 if quick else 1.5
    out: dict[str, Any] = {"size": size, "topology": topo, "edges": net.n_edges, "nodes": net.n_nodes}
    tracemalloc.start()
    cl = make_trainer(net)
    out["free_nodes"] = cl.n_free
    cl.train(3)
    out["trainer_mb"] = tracemalloc.get_traced_memory()[1] / 2**20  # peak of NumPy/Python allocations
    tracemalloc.stop()
    e0 = float(np.mean((cl.outputs(cl.inputs) - cl.targets) ** 2))
    cl.stats = type(cl.stats)()
    # chunks of >= ~10 steps at 65k edges, so that the best chunk's mean includes the occasional
    # refactorisation of the PCG method (a 20 ms chunk would be one step: the cheapest one)
    chunk = 0.3 if size >= 65536 else 0.02
    t_train = best_time(cl.train, max(bud, 12 * chunk), chunk_s=chunk)
    e1 = float(np.mean((cl.outputs(cl.inputs) - cl.targets) ** 2))
    st = cl.stats
    out.update(
        step_s=t_train,
        steps_per_s=1 / t_train,
        steps_timed=st.steps,
        method=cl.method + ("+kernel" if getattr(cl, "_kernel", None) is not None else ""),
        backend=cl.backend + (f"/{factor.mode}" if (factor := getattr(cl.solver, "factor", None)) is not None and factor.mode
                              else ""),
        factorisations_per_step=st.factorisations / max(st.steps, 1),
        pcg_iterations_per_step=st.pcg_iterations / max(st.steps, 1),
        error_ratio=e1 / e0 if e0 > 0 else float("nan"),
    )
    if size >= 65536:  # the earlier measure: best single step (never one with a refactorisation)
        out["step_s_best_single"] = best_time(cl.train, bud)
    if size <= 256:  # per-call Python step (no compiled loop) for comparison
        cl2 = make_trainer(net, use_kernel=False)
        cl2.train(3)
        out["step_s_python_loop"] = best_time(loop(cl2.step), bud)
    if size >= 4096:  # the other sparse methods on the same network
        for method in ("direct", "pcg"):
            if method == cl.method:
                continue
            c3 = make_trainer(net, method=method)
            c3.train(3)
            c3.stats = type(c3.stats)()
            out[f"step_s_{method}"] = best_time(c3.train, max(bud, 12 * chunk), chunk_s=chunk)
            out[f"factorisations_per_step_{method}"] = c3.stats.factorisations / max(c3.stats.steps, 1)
    # ---- floor: one numeric factorisation (analysis reused) + one forward/backward solve
    red = ReducedLaplacian(net, net.indices([net.ground, *net.inputs]))
    lap = red.matrix(cl.k)
    b = np.random.default_rng(2).random(red.n_free)
    if HAVE_CHOLMOD:
        fac = SparseCholesky(lap, "cholmod")
        out["floor_cholmod_mode"] = fac.mode
        out["floor_cholmod_s"] = best_time(loop(lambda: (fac.refactor(lap), fac.solve(b))), bud)
        out["cholmod_refactor_s"] = best_time(loop(lambda: fac.refactor(lap)), bud)
        out["cholmod_solve_s"] = best_time(loop(lambda: fac.solve(b)), bud)
        for mode in ("simplicial", "supernodal"):
            f2 = SparseCholesky(lap, "cholmod", mode=mode)
            out[f"cholmod_refactor_{mode}_s"] = best_time(loop(lambda f2=f2: f2.refactor(lap)), bud)
    fs = SparseCholesky(lap, "splu")
    out["floor_splu_s"] = best_time(loop(lambda: (fs.refactor(lap), fs.solve(b))), bud)
    if red.n_free <= 2000:
        dense_lap = lap.toarray()

        def dense_floor() -> None:
            c = la.cho_factor(dense_lap, lower=True, check_finite=False)
            la.cho_solve(c, b, check_finite=False)

        out["floor_dense_lapack_s"] = best_time(loop(dense_floor), bud)
    floors = [out[k] for k in ("floor_cholmod_s", "floor_splu_s", "floor_dense_lapack_s") if k in out]
    out["floor_s"] = min(floors)
    # ---- dense reference: a fresh numpy.linalg.solve per state
    if size <= 4096:
        full = net.laplacian(cl.k).toarray()
        held_f = net.indices([net.ground, *net.inputs])
        held_c = net.indices([net.ground, *net.inputs, *net.outputs])
        sys_ = []
        for held in (held_f, held_c):
            free = np.setdiff1d(np.arange(net.n_nodes), held)
            vh = np.zeros(held.size)
            vh[1] = 1.0
            sys_.append((full[np.ix_(free, free)].copy(), -full[np.ix_(free, held)] @ vh))
        out["dense_ref_s"] = best_time(loop(lambda: [np.linalg.solve(a, r) for a, r in sys_]), bud)
        del full, sys_
    del spla
    out["peak_mb"] = peak_mb() - base
    out["base_mb"] = base
    return out


def bench_epoch(quick: bool) -> dict[str, Any]:
    from labnet.core.generators import delaunay_network
    from labnet.core.tasks import regression
    from labnet.insilico.trainer import CoupledLearning

    net = delaunay_network(DELAUNAY_NODES[4096], seed=0, n_inputs=2, n_outputs=1)
    task, _ = regression(2, 1, n_train=1000, n_test=10, rng=np.random.default_rng(3))
    k0 = 10 ** np.random.default_rng(1).uniform(-4, -3, net.n_edges)
    bud = 0.6 if quick else 1.5
    res: dict[str, Any] = {"edges": net.n_edges, "samples": 1000}
    for method in ("pcg", "direct"):
        cl = CoupledLearning(net, k0, task.train.inputs, task.train.targets, alpha=ALPHA, eta=ETA, k_min=1e-6,
                             k_max=1e-2, method=method)
        cl.train(3)
        t_epoch = best_time(loop(cl.epoch), bud)
        i = iter(range(10**9))
        t_single = best_time(loop(lambda cl=cl, i=i: cl.step([next(i) % 1000])), bud)
        res[method] = {"epoch_s": t_epoch, "single_sample_step_s": t_single, "ratio": t_epoch / t_single}
    return res


def bench_batched(quick: bool) -> dict[str, Any]:
    from labnet.core.generators import breadboard16, delaunay_network, random_network
    from labnet.insilico.batched import HAVE_NUMBA
    from labnet.insilico.trainer import BatchedCoupledLearning

    rng = np.random.default_rng(4)
    res: dict[str, Any] = {}
    x = np.array([[1.0, 0.3]])
    t = np.array([[0.25, 0.15]])
    cases = []
    b16 = 10000
    cases.append(("16 edges, shared wiring (breadboard16)", breadboard16(), b16, x, t))
    nets = [random_network(10, 16, seed=i, n_inputs=2, n_outputs=2) for i in range(2000 if quick else b16)]
    cases.append(("16 edges, independent random wirings", nets, len(nets), x, t))
    net256 = delaunay_network(DELAUNAY_NODES[256], seed=0, n_inputs=2, n_outputs=1)
    cases.append(("256 edges, shared wiring (Delaunay)", net256, 200, x, np.array([[0.3]])))
    engines = ["numba", "numpy"] if HAVE_NUMBA else ["numpy"]
    for name, nw, b, xx, tt in cases:
        e = (nw if not isinstance(nw, list) else nw[0]).n_edges
        k = 10 ** rng.uniform(-4, -3, (b, e))
        alpha = np.geomspace(1e-4, 1e-2, b)  # a hyper-parameter sweep across the ensemble
        for eng in engines:
            bt = BatchedCoupledLearning(nw, k, xx, tt, alpha=alpha, eta=ETA, k_min=1e-6, k_max=1e-2, engine=eng)
            bt.train(2)
            dt = best_time(bt.train, 0.6 if quick else 1.5)
            res[f"{name} [{eng}]"] = {"networks": b, "edges": e, "step_s": dt, "network_steps_per_s": b / dt}
    return res


def bench_rig(quick: bool) -> dict[str, Any]:
    from labnet.app.build import build_rig
    from labnet.config.protocol import load_protocol
    from labnet.config.rigfile import load_rig
    from labnet.experiments.engine import Engine

    res: dict[str, Any] = {}
    proto = load_protocol(ROOT / "protocols" / "allostery.toml")
    for rig_name in ("sim16.toml", "sim16-direct.toml"):
        spec = load_rig(ROOT / "protocols" / "rigs" / rig_name)
        rig = build_rig(spec, sim_seed=proto.seed, network=proto.network)
        with rig:
            eng = Engine(rig, proto.build_task(), proto.rule, proto.train, seed=proto.seed)
            for _ in range(3):
                eng.train_step()
            n = 10
            best_cpu = best_wall = np.inf
            for _ in range(5 if quick else 15):
                c0, w0, v0 = time.process_time(), time.perf_counter(), rig.clock.now()
                for _ in range(n):
                    eng.train_step()
                best_cpu = min(best_cpu, (time.process_time() - c0) / n)
                best_wall = min(best_wall, (time.perf_counter() - w0) / n)
                bench = (rig.clock.now() - v0) / n
            extra = _wire_reference(rig, eng) if spec.transport == "wire" else {}
        extra.update(_full_run(rig_name, quick))
        res[rig_name] = {
            "transport": spec.transport,
            "host_cpu_s_per_step": best_cpu,
            "host_wall_s_per_step": best_wall,
            "modelled_bench_s_per_step": bench,
            **extra,
        }
    return res


def _full_run(rig_name: str, quick: bool = False) -> dict[str, Any]:
    """Host CPU per step of a whole ``labnet run`` (session CSV with an fsync per step,
    checkpoints, evaluations every ``eval_every`` steps): the difference of a 1,300- and a
    300-step run (100 and 300 with ``quick``), so start-up and the first evaluation cancel."""
    import tempfile

    from labnet.app.runner import run_protocol
    from labnet.config.protocol import load_protocol

    cpu = {}
    short, long = (100, 300) if quick else (300, 1300)
    with tempfile.TemporaryDirectory() as d:
        for steps in (short, long):
            p = load_protocol(ROOT / "protocols" / "allostery.toml", rig=ROOT / "protocols" / "rigs" / rig_name,
                              steps=steps)
            c0 = time.process_time()
            run_protocol(p, session_dir=Path(d) / f"s{steps}", progress=False)
            cpu[steps] = time.process_time() - c0
    return {"full_run_cpu_s_per_step": (cpu[long] - cpu[short]) / (long - short)}


def _wire_reference(rig: Any, eng: Any) -> dict[str, Any]:
    """Round trips per step on the emulated wire, and the reference of the same run: the host
    CPU of the cheapest possible exchange (``SYST:ERR?`` through a real pyvisa resource and the
    emulator) — what the round trips would cost with no driver, engine or physics around them."""
    from simulator.bench import get_bench

    bench = get_bench(rig.name)
    insts = list(bench.instruments.values())
    msgs0 = sum(i.n_queries + i.n_writes for i in insts)
    lines0 = bench.board.lines
    n = 200
    for _ in range(n):
        eng.train_step()
    scpi = (sum(i.n_queries + i.n_writes for i in insts) - msgs0) / n
    board = (bench.board.lines - lines0) / n
    res = rig.sources.instruments[next(iter(rig.sources.instruments))].resource
    best = np.inf
    for _ in range(15):
        c0 = time.process_time()
        for _ in range(200):
            res.query("SYST:ERR?")
        best = min(best, (time.process_time() - c0) / 200)
    return {"scpi_messages_per_step": scpi, "board_lines_per_step": board, "bare_exchange_cpu_s": best,
            "round_trip_floor_s": best * (scpi + board)}


# ------------------------------------------------------------------ driver
def run_child(args: list[str]) -> Any:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ms(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "—"
    return f"{x * 1e3:.3f}" if x < 0.1 else f"{x * 1e3:.1f}"


def report(results: dict[str, Any]) -> None:
    print(f"# labnet in-silico benchmarks — {results['when']}")
    print(f"# host: {results['cpus']} CPUs, load average at start {results['load']}, numpy {results['numpy']}, "
          f"scipy {results['scipy']}, CHOLMOD {'yes' if results['cholmod'] else 'no'}, numba "
          f"{'yes' if results['numba'] else 'no'}")
    print()
    print("## Training step (allostery, continuous coupled learning), floor and dense reference (ms)")
    hdr = (
        f"{'network':<10} {'edges':>6} {'free':>6} {'method':<14} {'ms/step':>9} {'steps/s':>10} {'fact/step':>9} "
        f"{'pcg it':>6} {'floor':>8} {'step/floor':>10} {'chol':>8} {'splu':>8} {'dense ref':>10} {'ref/step':>9} "
        f"{'peak MB':>8} {'trainer MB':>10}"
    )
    print(hdr)
    for r in results["sizes"]:
        ratio = r["step_s"] / r["floor_s"]
        dref = r.get("dense_ref_s")
        print(
            f"{r['topology']:<10} {r['edges']:>6} {r['free_nodes']:>6} {r['method']:<14} {ms(r['step_s']):>9} "
            f"{r['steps_per_s']:>10,.0f} {r['factorisations_per_step']:>9.2f} {r['pcg_iterations_per_step']:>6.1f} "
            f"{ms(r['floor_s']):>8} {ratio:>10.2f} {ms(r.get('floor_cholmod_s')):>8} {ms(r['floor_splu_s']):>8} "
            f"{ms(dref):>10} {(dref / r['step_s'] if dref else float('nan')):>9.1f} {r['peak_mb']:>8.1f} "
            f"{r['trainer_mb']:>10.2f}"
        )
    print()
    print("floor = min(CHOLMOD refactor+solve, SciPy splu+solve, dense LAPACK Cholesky+solve); "
          "dense ref = two fresh numpy.linalg.solve (free and clamped reduced Laplacians)")
    print()
    print("## Sparse methods and factorisation back ends at 4,096 and 65,536 edges (ms)")
    print(f"{'network':<10} {'edges':>6} {'auto':>8} {'direct':>8} {'pcg':>8} {'best 1 step':>11} "
          f"{'CHOLMOD simplicial':>19} {'CHOLMOD supernodal':>19} {'CHOLMOD solve':>14} {'splu floor':>11}")
    for r in results["sizes"]:
        if r["size"] < 4096:
            continue
        print(
            f"{r['topology']:<10} {r['edges']:>6} {ms(r['step_s']):>8} {ms(r.get('step_s_direct', r['step_s'])):>8} "
            f"{ms(r.get('step_s_pcg', r['step_s'])):>8} {ms(r.get('step_s_best_single')):>11} "
            f"{ms(r.get('cholmod_refactor_simplicial_s')):>19} "
            f"{ms(r.get('cholmod_refactor_supernodal_s')):>19} {ms(r.get('cholmod_solve_s')):>14} {ms(r['floor_splu_s']):>11}"
        )
    small = [r for r in results["sizes"] if "step_s_python_loop" in r]
    if small:
        print()
        print("## Small networks: compiled loop vs one Python call per step (µs/step)")
        for r in small:
            print(f"{r['topology']:<10} {r['edges']:>6} edges: {r['step_s'] * 1e6:8.2f} µs ({r['method']}), "
                  f"python loop {r['step_s_python_loop'] * 1e6:8.2f} µs")
    if "epoch" in results:
        e = results["epoch"]
        print()
        print(f"## 1,000-sample regression epoch at {e['edges']} edges (full batch, one update)")
        for m in ("pcg", "direct"):
            v = e[m]
            print(f"{m:<7} epoch {ms(v['epoch_s'])} ms, single-sample step {ms(v['single_sample_step_s'])} ms, "
                  f"ratio {v['ratio']:.2f}")
    if "batched" in results:
        print()
        print("## Batched ensembles (one call trains every network; full-batch steps)")
        for name, v in results["batched"].items():
            print(f"{name:<55} B={v['networks']:>6}  {ms(v['step_s']):>9} ms/step  "
                  f"{v['network_steps_per_s']:>12,.0f} network-steps/s")
    if "rig" in results:
        print()
        print("## Engine on the 16-edge simulated rig (protocols/allostery.toml, host CPU per train_step)")
        for name, v in results["rig"].items():
            print(f"{name:<20} transport={v['transport']:<7} host CPU {ms(v['host_cpu_s_per_step'])} ms/step, "
                  f"wall {ms(v['host_wall_s_per_step'])} ms/step, modelled bench time {v['modelled_bench_s_per_step']:.3f} s/step")
            if "full_run_cpu_s_per_step" in v:
                print(f"{'':<20} whole `labnet run` (session CSV, fsyncs, checkpoints, evaluations): "
                      f"{ms(v['full_run_cpu_s_per_step'])} ms host CPU per step")
            if "bare_exchange_cpu_s" in v:
                print(f"{'':<20} {v['scpi_messages_per_step']:.2f} SCPI messages + {v['board_lines_per_step']:.2f} board "
                      f"lines per step; one bare pyvisa exchange {v['bare_exchange_cpu_s'] * 1e6:.1f} µs -> round-trip "
                      f"floor {ms(v['round_trip_floor_s'])} ms/step, stack/floor "
                      f"{v['host_cpu_s_per_step'] / v['round_trip_floor_s']:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="16–4,096 edges, fewer repeats")
    ap.add_argument("--only", type=int, choices=SIZES, help="one network size")
    ap.add_argument("--json", help="also write the numbers to this file")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind = a.child[0]
        quick = "quick" in a.child
        if kind == "size":
            res = bench_size(int(a.child[1]), a.child[2], quick)
        elif kind == "epoch":
            res = bench_epoch(quick)
        elif kind == "batched":
            res = bench_batched(quick)
        else:
            res = bench_rig(quick)
        print(json.dumps(res))
        return
    import scipy

    from labnet.core.solvers import HAVE_CHOLMOD
    from labnet.insilico.batched import HAVE_NUMBA

    sizes = [a.only] if a.only else ([16, 256, 4096] if a.quick else list(SIZES))
    q = ["quick"] if a.quick else []
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cholmod": HAVE_CHOLMOD,
        "numba": HAVE_NUMBA,
        "sizes": [],
    }
    for size in sizes:
        for topo in ("delaunay", "lattice"):
            print(f"... {topo} {size}", file=sys.stderr, flush=True)
            results["sizes"].append(run_child(["size", str(size), topo, *q]))
    if not a.only or a.only == 4096:
        print("... epoch", file=sys.stderr, flush=True)
        results["epoch"] = run_child(["epoch", *q])
    if not a.only:
        print("... batched", file=sys.stderr, flush=True)
        results["batched"] = run_child(["batched", *q])
        print("... rig", file=sys.stderr, flush=True)
        results["rig"] = run_child(["rig", *q])
    report(results)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
