"""labnet against the public coupled-learning code, maguzj/coupled_learning (its sparse mode), issue 17.

    python benchmarks/bench_peer.py --peer /path/to/coupled_learning           # the table, six sizes
    python benchmarks/bench_peer.py --peer /path/to/coupled_learning --quick   # ≤ 16,385 edges, 2 rounds
    python benchmarks/bench_peer.py --peer ... --load                          # with a CPU-bound process alongside
    LABNET_PEER=/path/to/coupled_learning python benchmarks/bench_peer.py      # same as --peer

The peer is not on a package index, so the benchmark takes an existing checkout (``--peer`` or
``$LABNET_PEER``; without one it prints why and exits 0 — skipped). It makes a separate venv
(``--venv``, default ``~/.cache/labnet-bench/peer-venv``) and installs the checkout's own
``requirements.txt`` into it from the package index with pip (``jupyter`` left out: the code
never imports it), once; the marker ``labnet-peer-req.txt`` in the venv records what was
installed. If the venv cannot be made, the benchmark says so and exits 0.

Same problem on both sides: seeded Delaunay networks (``labnet.core.generators.delaunay_network``,
16 / 255 / 1,024 / 4,097 / 16,385 / 65,537 edges), conductances log-uniform in 0.1–1 mS, the
allostery task (ground 0 V, inputs 1 V and 0 V, two outputs pushed 0.1 V up and down from where
they start), η = 0.5, α = 1e-3 S/V², k in [1e-6, 1e-2] S. The peer's ``CL`` (``jax=False``:
``scipy.sparse.linalg.spsolve`` on the bordered Laplacian, free and clamped) holds the ground and
the inputs as its sources; its Δk = −(lr/η)((ΔV^C)² − (ΔV^F)²) is labnet's rule with lr = α.
Agreement is checked first: both take 5 steps from the same conductances and the largest
relative difference of the conductances (edge order mapped; networkx orders edges its own way)
is printed (≈1e-12 expected). Then the two are timed *interleaved*, round by round (one chunk of
≥ ~0.2 s of steps each, best chunk kept), each in its own process: the peer in the venv's
Python, labnet here. Default threads on both sides: the peer's libraries as they come, labnet's
own limit (one BLAS thread, :mod:`labnet.core.threads`); nothing is set in the environment.
``--load`` starts ``python -c "while True: pass"`` alongside for the whole run (ended by its pid).
Besides wall time (the ratio that counts), both sides' CPU time per step (``time.process_time``
of the timing process, BLAS threads included; best chunk) is printed: on an oversubscribed
machine the wall-time best of a few chunks measures scheduler luck as much as code, the CPU
time does not.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Delaunay node counts (seed 0) giving the edge counts
NODES = {16: 8, 255: 90, 1024: 348, 4097: 1373, 16385: 5469, 65537: 21855}
QUICK = (16, 255, 1024, 4097, 16385)
ALPHA, ETA, K_MIN, K_MAX = 1e-3, 0.5, 1e-6, 1e-2
CHECK_STEPS = 5
NOT_NEEDED = {"jupyter", "notebook", "jupyterlab", "ipykernel"}


# ------------------------------------------------------------------ the peer's side (runs in its venv)
def peer_child(peer_dir: str, npz: str) -> None:
    """Serve timing requests on stdin ("check" / "time N" / "quit") for one network, in the peer's venv."""
    sys.path.insert(0, str(Path(peer_dir) / "coupled_learning"))
    import networkx as nx
    from cl_utils import CL

    d = np.load(npz)
    n = int(d["n_nodes"])
    g = nx.Graph()
    for i in range(n):
        g.add_node(i, pos=(0.0, 0.0))
    g.add_edges_from((int(a), int(b)) for a, b in d["edges"])
    index = {(int(a), int(b)): j for j, (a, b) in enumerate(d["edges"])}
    perm = np.array([index[(min(a, b), max(a, b))] for a, b in g.edges])  # peer edge i = labnet edge perm[i]

    def fresh() -> Any:
        cl = CL(g, d["k0"][perm].copy(), learning_rate=ALPHA, min_k=K_MIN, max_k=K_MAX, jax=False)
        cl.set_task(d["src_idx"], d["src_val"], d["tgt_idx"], d["tgt_val"])
        return cl

    cl = fresh()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        if cmd[0] == "check":
            c = fresh()
            c.iterate_CL(CHECK_STEPS, eta=ETA)
            k = np.empty(len(perm))
            k[perm] = np.asarray(c.conductances)
            print(json.dumps({"k": k.tolist()}), flush=True)
        elif cmd[0] == "time":
            steps = int(cmd[1])
            t0, c0 = time.perf_counter(), time.process_time()
            cl.iterate_CL(steps, eta=ETA)
            print(json.dumps({"s": (time.perf_counter() - t0) / steps, "cpu": (time.process_time() - c0) / steps}),
                  flush=True)


# ------------------------------------------------------------------ venv
def peer_venv(peer: Path, venv: Path) -> tuple[Path | None, str]:
    """The venv's python with the checkout's requirements installed, or (None, why not)."""
    req_file = peer / "requirements.txt"
    if not (peer / "coupled_learning" / "cl_utils.py").is_file() or not req_file.is_file():
        return None, f"{peer} is not a coupled_learning checkout (no coupled_learning/cl_utils.py or requirements.txt)"
    reqs = [r.strip() for r in req_file.read_text().splitlines() if r.strip() and not r.startswith("#")]
    reqs = [r for r in reqs if r.split("=")[0].split("<")[0].split(">")[0].strip().lower() not in NOT_NEEDED]
    want = "\n".join(reqs) + "\n"
    py = venv / "bin" / "python"
    marker = venv / "labnet-peer-req.txt"
    if py.exists() and marker.exists() and marker.read_text() == want:
        return py, "reused"
    print(f"making the peer's venv {venv} and installing {len(reqs)} requirements from the package index ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *reqs], check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        return None, f"could not make the peer's venv: {exc}"
    marker.write_text(want)
    return py, "installed " + hashlib.sha1(want.encode()).hexdigest()[:8]


# ------------------------------------------------------------------ labnet's side
def problem(edges: int, folder: Path) -> tuple[Any, Path]:
    """labnet's trainer for the network and the .npz the peer reads."""
    sys.path.insert(0, str(ROOT))
    from labnet.core.generators import delaunay_network
    from labnet.insilico.trainer import CoupledLearning

    net = delaunay_network(NODES[edges], seed=0, n_inputs=2, n_outputs=2)
    assert net.n_edges == edges, (net.n_edges, edges)
    k0 = 10 ** np.random.default_rng(1).uniform(-4, -3, net.n_edges)
    x = np.array([[1.0, 0.0]])
    cl = CoupledLearning(net, k0, x, np.zeros((1, 2)), alpha=ALPHA, eta=ETA, k_min=K_MIN, k_max=K_MAX)
    cl.targets[:] = cl.outputs(x) + np.array([0.1, -0.1])
    src, dst = net.edge_ends
    pairs = np.sort(np.stack([src, dst], axis=1), axis=1)
    path = folder / f"net{edges}.npz"
    np.savez(path, n_nodes=net.n_nodes, edges=pairs, k0=k0,
             src_idx=np.array(net.indices([net.ground, *net.inputs])), src_val=np.array([0.0, 1.0, 0.0]),
             tgt_idx=np.array(net.indices(net.outputs)), tgt_val=cl.targets[0].copy())
    return cl, path


def picked(cl: Any) -> str:
    if cl.method == "dense":
        kind = "kernel" if cl._kernel is not None else ("band" if getattr(cl.solver, "band", None) is not None else "LAPACK")
        return f"dense ({kind})"
    return f"{cl.method} / {cl.backend}"


def run_size(edges: int, py: Path, peer: Path, folder: Path, rounds: int, chunk_s: float) -> dict[str, Any]:
    cl, npz = problem(edges, folder)
    child = subprocess.Popen([str(py), str(Path(__file__).resolve()), "--child-peer", str(peer), str(npz)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(folder))
    assert child.stdin is not None and child.stdout is not None

    def ask(cmd: str) -> dict[str, Any]:
        child.stdin.write(cmd + "\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        return json.loads(child.stdout.readline())  # type: ignore[union-attr]

    try:
        json.loads(child.stdout.readline())
        k_peer = np.array(ask("check")["k"])
        k_start = cl.k.copy()
        cl.train(CHECK_STEPS)
        agree = float(np.max(np.abs(cl.k - k_peer)) / np.max(np.abs(cl.k - k_start)))
        cl.k = k_start.copy()
        # chunk sizes: about chunk_s of work each, from the faster of two 1-step and one 3-step
        # timings (a slow first call must not make one side's chunks short: short chunks' best
        # is luckier on a loaded machine)
        t_p = min(min(ask("time 1")["s"], ask("time 1")["s"]), ask("time 3")["s"])
        t_l = np.inf
        for n in (1, 1, 3):
            t0 = time.perf_counter()
            cl.train(n)
            t_l = min(t_l, (time.perf_counter() - t0) / n)
        n_p, n_l = max(1, int(chunk_s / t_p)), max(1, int(chunk_s / max(t_l, 1e-7)))
        best_p = best_l = cpu_p = cpu_l = np.inf
        for _ in range(rounds):
            got = ask(f"time {n_p}")
            best_p, cpu_p = min(best_p, got["s"]), min(cpu_p, got["cpu"])
            t0, c0 = time.perf_counter(), time.process_time()
            cl.train(n_l)
            best_l = min(best_l, (time.perf_counter() - t0) / n_l)
            cpu_l = min(cpu_l, (time.process_time() - c0) / n_l)
    finally:
        if child.poll() is None:
            child.stdin.write("quit\n")
            child.stdin.flush()
            child.wait(timeout=30)
    return {"edges": edges, "free": cl.n_free, "peer_ms": 1e3 * best_p, "labnet_ms": 1e3 * best_l,
            "ratio": best_p / best_l, "picked": picked(cl), "agree": agree, "steps_per_chunk": [n_p, n_l],
            "peer_cpu_ms": 1e3 * cpu_p, "labnet_cpu_ms": 1e3 * cpu_l, "cpu_ratio": cpu_p / cpu_l}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer", default=os.environ.get("LABNET_PEER"), help="checkout of maguzj/coupled_learning")
    ap.add_argument("--venv", default=str(Path.home() / ".cache" / "labnet-bench" / "peer-venv"))
    ap.add_argument("--quick", action="store_true", help=f"sizes {QUICK}, 2 rounds")
    ap.add_argument("--sizes", type=int, nargs="*", help=f"edge counts among {tuple(NODES)}")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--chunk", type=float, default=0.2, help="seconds of steps per timed chunk")
    ap.add_argument("--load", action="store_true", help="run a CPU-bound process alongside")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--child-peer", nargs=2, metavar=("PEER", "NPZ"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_peer:
        peer_child(*args.child_peer)
        return
    if not args.peer:
        print("skipped: no peer checkout (give --peer PATH or LABNET_PEER; the code is github.com/maguzj/coupled_learning)")
        return
    peer = Path(args.peer).resolve()
    py, how = peer_venv(peer, Path(args.venv))
    if py is None:
        print(f"skipped: {how}")
        return
    sizes = args.sizes or (QUICK if args.quick else tuple(NODES))
    rounds = min(args.rounds, 2) if args.quick else args.rounds
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.load else None
    rows = []
    try:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            print(f"peer: {peer} (venv {how}); load average at start {os.getloadavg()[0]:.2f}"
                  f"{'; CPU-bound process alongside, pid ' + str(hog.pid) if hog else ''}")
            print("| edges | peer ms/step | labnet ms/step | peer / labnet | labnet picked | k agree (rel) "
                  "| CPU ms/step peer / labnet | CPU ratio |")
            print("|---:|---:|---:|---:|---|---:|---:|---:|")
            for e in sizes:
                r = run_size(e, py, peer, Path(tmp), rounds, args.chunk)
                rows.append(r)
                print(f"| {e:,} | {r['peer_ms']:.3g} | {r['labnet_ms']:.3g} | {r['ratio']:,.1f}× | {r['picked']} | "
                      f"{r['agree']:.1e} | {r['peer_cpu_ms']:.3g} / {r['labnet_cpu_ms']:.3g} | {r['cpu_ratio']:,.1f}× |",
                      flush=True)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    print(f"load average at end {os.getloadavg()[0]:.2f}; minimum ratio {min(r['ratio'] for r in rows):.1f}× "
          f"(CPU time: {min(r['cpu_ratio'] for r in rows):.1f}×)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
