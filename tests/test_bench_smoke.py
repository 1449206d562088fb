"""The benchmark script still runs (smallest size only) and reports consistent numbers.

Not a timing test: it checks the script's plumbing (networks of the advertised sizes, every
column present, the floor no larger than its parts) so the benchmark does not rot.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_insilico", ROOT / "benchmarks" / "bench_insilico.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_insilico"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("size,edges", [(16, 16), (256, 255), (4096, 4097)])
def test_delaunay_sizes_match_the_issue(bench, size: int, edges: int) -> None:  # type: ignore[no-untyped-def]
    assert bench.make_network(size, "delaunay").n_edges == edges
    r, c = bench.lattice_shape(size)
    assert abs(2 * r * c - r - c - size) <= 0.02 * size + 2


def test_smallest_size_runs(bench) -> None:  # type: ignore[no-untyped-def]
    r = bench.bench_size(16, "lattice", quick=True)
    assert r["edges"] == 16
    for key in ("step_s", "steps_per_s", "floor_s", "floor_splu_s", "dense_ref_s", "peak_mb", "error_ratio"):
        assert key in r and np.isfinite(r[key])
    assert r["floor_s"] <= r["floor_splu_s"]
    assert r["steps_per_s"] == pytest.approx(1 / r["step_s"])
    assert r["error_ratio"] < 1.0  # the benchmark task is being learned


def test_rig_benchmark_runs(bench) -> None:  # type: ignore[no-untyped-def]
    """The driver-stack figures: plumbing and the counts they rest on (not the times)."""
    r = bench.bench_rig(quick=True)
    wire, direct = r["sim16.toml"], r["sim16-direct.toml"]
    assert wire["transport"] == "wire" and direct["transport"] == "direct"
    assert wire["scpi_messages_per_step"] == 6.0  # 2 x READ?;:SYST:ERR?, 4 verified setpoint changes
    assert 0.0 < wire["board_lines_per_step"] <= 1.0  # one W line when a code moves
    assert 0 < wire["round_trip_floor_s"] < wire["host_cpu_s_per_step"]
    for v in (wire, direct):
        assert 0 < v["host_cpu_s_per_step"] < v["full_run_cpu_s_per_step"]  # a run adds CSV and checkpoints
        assert v["modelled_bench_s_per_step"] > 0.3  # the virtual clock: settle + scans + transfers
