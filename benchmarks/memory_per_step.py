"""Memory per training step of a long run (issue 13): tracemalloc's traced total at every
``--every`` steps of protocols/allostery.toml on a rig (default sim16: real drivers over the
emulated transports, a dry run), and what grew over the second half, by allocation site.

    python benchmarks/memory_per_step.py --steps 3000 --every 500 --eval-every 10
    python benchmarks/memory_per_step.py --steps 3000 --eval-every 1000000000   # no evaluation history

What may grow: the run's evaluation history (one record per evaluation, kept for the result
and the checkpoint) and, on an emulated rig, the SCPI emulators' parse caches (at most
``simulator.scpi_core.PARSE_CACHE_SIZE`` entries each, emptied when full).
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

from labnet.app.runner import run_protocol
from labnet.config.protocol import load_protocol

ROOT = Path(__file__).resolve().parent.parent


def measure(steps: int, every: int, eval_every: int, rig: str | None = None, top: int = 8) -> dict:
    """Run ``steps`` steps; return the traced bytes at every ``every`` steps and the growth per step."""
    proto = load_protocol(ROOT / "protocols" / "allostery.toml", steps=steps, rig=rig)
    proto = replace(proto, train=replace(proto.train, eval_every=eval_every))
    marks: dict[int, int] = {}
    snaps: dict[int, tracemalloc.Snapshot] = {}
    half = steps // 2

    def sub(ev: object) -> None:
        if type(ev).__name__ == "StepDone":
            n = ev.step + 1  # type: ignore[attr-defined]
            if n % every == 0 or n in (half, steps):
                gc.collect()
                marks[n] = tracemalloc.get_traced_memory()[0]
                if n in (half, steps):
                    snaps[n] = tracemalloc.take_snapshot()

    tracemalloc.start()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        out = run_protocol(proto, d, progress=False, subscribers=[sub])
    tracemalloc.stop()
    sites = [(st.size_diff, st.count_diff, f"{Path(st.traceback[0].filename).name}:{st.traceback[0].lineno}")
             for st in snaps[steps].compare_to(snaps[half], "lineno")[:top]]
    return {"status": out.result.status, "seconds": time.perf_counter() - t0, "marks": marks,
            "per_step_b": (marks[steps] - marks[half]) / (steps - half), "sites": sites,
            "evaluations": len(out.result.evaluations)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--rig", help="rig file (default: the protocol's, sim16)")
    a = ap.parse_args()
    r = measure(a.steps, a.every, a.eval_every, a.rig)
    print(f"{a.steps} steps, eval_every {a.eval_every}: {r['status']}, {r['evaluations']} evaluations, "
          f"{r['seconds']:.0f} s (tracemalloc on)")
    print("traced kB: " + " ".join(f"{k}:{v / 1024:.0f}" for k, v in sorted(r["marks"].items())))
    print(f"growth over the second half: {r['per_step_b']:.1f} B per step")
    for size, count, site in r["sites"]:
        print(f"  {size:8d} B {count:6d} blocks  {site}")


if __name__ == "__main__":
    main()
