"""Memory of a long run stays bounded (issue 13, "memory growing ~0.2 kB per step").

Measured with tracemalloc (benchmarks/memory_per_step.py has the full breakdown): besides the
run's own evaluation history (one record per evaluation, kept for the result and the
checkpoint; the record now shares the event's score dicts instead of copying them), what
grows is bounded — the simulator's code-resistance cache (64 entries) and, on the emulated
wire, each SCPI emulator's parse cache (PARSE_CACHE_SIZE entries, emptied when full).
"""

from __future__ import annotations

import gc
import tracemalloc
from dataclasses import replace
from pathlib import Path

from labnet.app.runner import run_protocol
from labnet.config.protocol import load_protocol

ROOT = Path(__file__).resolve().parent.parent


def test_no_growth_per_step_without_evaluations(tmp_path: Path) -> None:
    # The bounded caches fill and are emptied when full, so traced memory is a saw-tooth: two
    # single marks can land on an empty and a full cache (CI once saw "83 B per step" that way).
    # Compare the *peaks* of two windows instead: a bounded cache has the same peak in both, a
    # real leak (the old ~200 B per step) raises the later peak by ~60 kB over 300 steps.
    steps, every = 800, 20
    early, late = range(200, 500), range(500, steps + 1)
    proto = load_protocol(ROOT / "protocols" / "allostery.toml", steps=steps,
                          rig=ROOT / "protocols" / "rigs" / "sim16-direct.toml")
    proto = replace(proto, train=replace(proto.train, eval_every=10**9))
    marks: dict[int, int] = {}

    def sub(ev: object) -> None:
        done = getattr(ev, "step", -2) + 1
        if type(ev).__name__ == "StepDone" and done >= early.start and done % every == 0:
            gc.collect()
            marks[done] = tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    try:
        out = run_protocol(proto, tmp_path, progress=False, subscribers=[sub])
    finally:
        tracemalloc.stop()
    assert out.result.status == "completed"
    peak_early = max(v for k, v in marks.items() if k in early)
    peak_late = max(v for k, v in marks.items() if k in late)
    per_step = (peak_late - peak_early) / (late.start - early.start)
    print(f"peak-to-peak growth: {per_step:.1f} B per step over {len(marks)} marks")
    assert len(marks) == (steps - early.start) // every + 1
    assert per_step < 60, f"{per_step:.1f} B per step"  # measured 16-22 B (bounded caches filling); the leak was ~200 B


def test_evaluation_records_share_the_scores() -> None:
    from labnet.experiments.engine import Engine
    from labnet.experiments.events import Evaluated

    eng = Engine.__new__(Engine)  # only the evaluation bookkeeping is exercised
    eng.evaluations = [Evaluated(i, {"mse": 0.1 * i}, {"mse": 0.2 * i}) for i in range(3)]
    eng._eval_records = []
    recs = eng._evaluation_records()
    assert recs == [{"step": i, "train": {"mse": 0.1 * i}, "test": {"mse": 0.2 * i}} for i in range(3)]
    assert all(r["train"] is e.train and r["test"] is e.test for r, e in zip(recs, eng.evaluations))
    eng.evaluations.append(Evaluated(3, {"mse": 0.3}, {"mse": 0.6}))
    assert eng._evaluation_records()[3]["step"] == 3 and len(eng._eval_records) == 4


def test_scpi_parse_cache_is_bounded() -> None:
    from labnet.app.build import build_rig
    from labnet.config.rigfile import load_rig
    from simulator.bench import get_bench
    from simulator.scpi_core import PARSE_CACHE_SIZE

    rig = build_rig(load_rig(ROOT / "protocols" / "rigs" / "sim16.toml"))
    try:
        bench = get_bench(rig.extra["sim_bench"])
        emu = next(i for i in bench.instruments.values() if type(i).__name__ == "E36312AEmulator")
        for k in range(3 * PARSE_CACHE_SIZE):  # a new setpoint every time, as training produces
            emu.write(f"VOLT {k * 1e-4:.6f},(@1)\n".encode())
        assert 0 < len(emu._parsed) <= PARSE_CACHE_SIZE
    finally:
        rig.close()
