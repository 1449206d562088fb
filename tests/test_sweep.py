"""`labnet sweep`: validation, exact reproducibility, resume after a kill, a killed worker, an external cluster."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

from labnet.app.cli import main  # noqa: E402
from labnet.app.sweep import RESULTS, run_sweep  # noqa: E402
from labnet.app.sweep_report import write_sweep_report  # noqa: E402
from labnet.config.sweep_file import load_sweep  # noqa: E402
from labnet.insilico.effects import METRICS, PointSpec, run_chunk, run_point  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

TINY = """
[sweep]
name = "tiny"
seed = 3
chunk = {chunk}

[base]
nodes = 14
edges = 26
steps = {steps}
block = 50

[[axis]]
zip = {{ inputs = ["voltage", "force"], alpha = [5e-3, 1e-5] }}

[[axis]]
grid = {{ demand = [0.5, 1.0] }}

[[axis]]
seeds = {seeds}
"""


def _tiny(tmp_path: Path, chunk: int = 3, steps: int = 150, seeds: int = 4, name: str = "tiny.toml") -> Path:
    p = tmp_path / name
    p.write_text(TINY.format(chunk=chunk, steps=steps, seeds=seeds), encoding="utf-8")
    return p


def _metrics_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a["point"]) == list(b["point"])
    for col in METRICS:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if x.dtype.kind == "f":
            assert np.array_equal(x, y, equal_nan=True), col  # bit-identical, NaN where NaN
        else:
            assert (x == y).all(), col


def _serial(sweep) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    rows = run_chunk([(i, dataclasses.asdict(p)) for i, p in reversed(list(enumerate(sweep.points)))])
    return pd.DataFrame(rows).sort_values("point").reset_index(drop=True)


@pytest.fixture(scope="module")
def client():
    from labnet.app.sweep import open_client

    c, cluster = open_client(workers=2)
    yield c
    c.close()
    cluster.close()


# ------------------------------------------------------------------ validation
BAD = [
    ("[base]\nnodes = 10\n", "sweep", "missing required key"),
    ("[sweep]\n[[axis]]\ngrid = { nodez = [1, 2] }\n", "axis[0].grid.nodez", "unknown parameter"),
    ("[sweep]\n[[axis]]\ngrid = { demand = [0.1] }\nseeds = 3\n", "axis[0]", "exactly one of"),
    ("[sweep]\n[[axis]]\nzip = { demand = [0.1, 0.2], eta = [0.5] }\n", "axis[0].zip", "equal lengths"),
    ("[sweep]\n[[axis]]\ngrid = { inputs = [\"voltage\", \"current\"] }\n", "axis[0].grid.inputs[1]", "expected one of"),
    ("[sweep]\n[base]\nnodes = 10\nedges = 5\n", "base.edges", "connected graph"),
    ("[sweep]\n[base]\neta = 0\n", "base.eta", "expected a value"),
    ("[sweep]\nchunks = 3\n", "sweep.chunks", "unknown key"),
    ("[sweep]\n[[axis]]\nrandom = { param = \"steps\", low = 1, high = 2, n = 3 }\n", "axis[0].random.param", "float"),
    ("[sweep]\n[base]\nrule = \"sign\"\n", "base.rule", "need a part"),
    ("[sweep]\n[base]\npart = \"X9C999\"\nrule = \"sign\"\n", "base.part", "expected one of"),
    ("[sweep]\n[[axis]]\ngrid = { demand = [0.1] }\n[[axis]]\nzip = { demand = [0.2], eta = [0.3] }\n", "axis",
     "two axes"),
]


@pytest.mark.parametrize("text,key,problem", BAD)
def test_bad_sweep_file_exit_2_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str,
                                        problem: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text, encoding="utf-8")
    assert main(["sweep", str(f), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{f}: {key}: " in err and problem in err, err
    assert not (tmp_path / "out").exists()  # nothing started


def test_shipped_sweeps_validate() -> None:
    small = load_sweep(ROOT / "protocols/sweeps/small.toml")
    talk = load_sweep(ROOT / "protocols/sweeps/physical_effects.toml")
    assert len(small.points) == 48 and len(talk.points) == 2 * 4 * 24
    assert {p.inputs for p in talk.points} == {"voltage", "force"}
    taps = load_sweep(ROOT / "protocols/sweeps/taps.toml")
    assert {p.rule for p in taps.points} == {"sign", "stochastic", "coupled"}


def test_tap_quantised_point_is_reproducible() -> None:
    spec = PointSpec(nodes=16, edges=30, steps=200, part="MCP4151-103", tolerance=0.2, rule="stochastic", seed=1)
    a, b = run_point(spec), run_point(spec)
    assert a.keys() == b.keys() and all(a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]) for k in a)  # NaN: NaN
    assert a["err_after"] < a["err_before"]


def test_random_axis_is_seeded(tmp_path: Path) -> None:
    f = tmp_path / "r.toml"
    f.write_text("[sweep]\nseed = 5\n[[axis]]\nrandom = { param = \"eta\", low = 0.2, high = 0.9, n = 4, log = true }\n")
    a, b = load_sweep(f), load_sweep(f)
    etas = [p.eta for p in a.points]
    assert etas == [p.eta for p in b.points] and all(0.2 <= e <= 0.9 for e in etas) and len(set(etas)) == 4


def test_point_matches_the_old_benchmark_script() -> None:
    """run_point is the hand-written script's computation moved into the library: the values the
    script (before it became a wrapper, commit fce657e) printed for network 2 at demand 0.7."""
    v = run_point(PointSpec(nodes=20, edges=40, steps=300, demand=0.7, seed=2))
    # voltage inputs now train on the packed (batched) trainer: same arithmetic up to rounding order
    assert v["lam_min_after"] == pytest.approx(0.00021592763200591248, rel=1e-12)
    assert v["deff_after"] == pytest.approx(2.912772287582118, rel=1e-12)
    f = run_point(PointSpec(nodes=20, edges=40, steps=300, demand=0.7, seed=2, inputs="force", alpha=1e-5))
    # to the last bits only with the same BLAS kernels: OpenBLAS picks them by CPU (OPENBLAS_CORETYPE);
    # a fresh venv without that variable differs by 2e-15 relative
    assert f["lam_min_after"] == pytest.approx(4.013273620682478e-05, rel=1e-12)
    assert f["deff_after"] == pytest.approx(1.0561148785946926, rel=1e-12)


# ------------------------------------------------------------------ reproducibility
def test_reproducible_across_workers_and_order(tmp_path: Path, client) -> None:  # type: ignore[no-untyped-def]
    sweep = load_sweep(_tiny(tmp_path))
    two = run_sweep(sweep, tmp_path / "two", client=client, progress=False)
    assert two.computed == len(sweep.points) == 16
    df2 = pd.read_parquet(tmp_path / "two" / RESULTS)
    _metrics_equal(df2, _serial(sweep))  # other process, reversed order, one big chunk
    one = run_sweep(sweep, tmp_path / "one", workers=1, progress=False)
    assert one.workers == 1
    _metrics_equal(df2, pd.read_parquet(tmp_path / "one" / RESULTS))
    page = write_sweep_report(tmp_path / "two")
    assert "| inputs=force, alpha=1e-05 | 1 | 4 |" in page.read_text()
    assert (tmp_path / "two" / "effects_vs_demand.png").stat().st_size > 1000
    assert (tmp_path / "two" / "report.html").read_text().count("data:image/png;base64,") >= 2
    again = run_sweep(sweep, tmp_path / "two", client=client, progress=False)  # complete: nothing to do
    assert again.computed == 0 and again.skipped == 16


def test_other_sweep_in_folder_refused(tmp_path: Path, client) -> None:  # type: ignore[no-untyped-def]
    run_sweep(load_sweep(_tiny(tmp_path, seeds=1)), tmp_path / "out", client=client, progress=False)
    other = _tiny(tmp_path, seeds=2, name="other.toml")
    assert main(["sweep", str(other), "--out", str(tmp_path / "out"), "--quiet"]) == 2


# ------------------------------------------------------------------ kills
def _parts(folder: Path) -> dict[str, tuple[int, int]]:
    return {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in (folder / "parts").glob("chunk-*.parquet")}


def test_killed_sweep_rerun_computes_only_missing(tmp_path: Path, client) -> None:  # type: ignore[no-untyped-def]
    f = _tiny(tmp_path, chunk=1, steps=400, seeds=6)  # 24 one-point chunks
    sweep = load_sweep(f)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "labnet", "sweep", str(f), "--out", str(out), "--workers", "1",
                             "--quiet"], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(_parts(out)) < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole sweep: client, cluster and its worker
        proc.wait(timeout=30)
    before = _parts(out)
    assert 3 <= len(before) < len(sweep.points), len(before)
    assert not (out / RESULTS).exists()
    res = run_sweep(sweep, out, client=client, progress=False)
    assert res.skipped == len(before) and res.computed == len(sweep.points) - len(before)
    after = _parts(out)
    assert all(after[k] == v for k, v in before.items())  # finished chunks untouched
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["runs"][-1]["computed_chunks"]) == sorted(
        i for i in range(len(sweep.points)) if f"chunk-{i:05d}.parquet" not in before)
    df = pd.read_parquet(out / RESULTS)
    assert sorted(df["point"]) == list(range(len(sweep.points)))
    _metrics_equal(df, _serial(sweep))


def test_worker_sigkilled_mid_sweep(tmp_path: Path, client) -> None:  # type: ignore[no-untyped-def]
    sweep = load_sweep(_tiny(tmp_path, chunk=1, steps=300, seeds=5))
    killed: list[int] = []

    def kill_one(index: int, c) -> None:  # type: ignore[no-untyped-def]
        if not killed:
            pid = next(iter(c.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    res = run_sweep(sweep, tmp_path / "out", client=client, progress=False, on_chunk=kill_one)
    assert killed and res.computed == len(sweep.points)
    df = pd.read_parquet(tmp_path / "out" / RESULTS)
    assert sorted(df["point"]) == list(range(len(sweep.points)))
    _metrics_equal(df, _serial(sweep))
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it, for the next tests


# ------------------------------------------------------------------ separate scheduler and workers
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_external_scheduler_two_workers_bit_identical(tmp_path: Path, client) -> None:  # type: ignore[no-untyped-def]
    from dask.distributed import Client

    sweep = load_sweep(_tiny(tmp_path))
    run_sweep(sweep, tmp_path / "local", client=client, progress=False)
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([*dask, "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0",
                               "--scheduler-file", str(sched_file)],
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", addr, "--nthreads", "1", "--nworkers", "1",
                 "--host", "127.0.0.1", "--no-dashboard"], start_new_session=True, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}))
        with Client(addr, timeout=60) as c:
            c.wait_for_workers(2, timeout=90)
            assert len(c.scheduler_info()["workers"]) == 2
        res = run_sweep(sweep, tmp_path / "remote", scheduler=addr, progress=False)
        assert res.workers == 2 and res.computed == len(sweep.points)
        assert main(["sweep", str(sweep.file), "--scheduler-file", str(sched_file), "--out", str(tmp_path / "file"),
                     "--quiet"]) == 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=15)
    local = pd.read_parquet(tmp_path / "local" / RESULTS)
    _metrics_equal(local, pd.read_parquet(tmp_path / "remote" / RESULTS))
    _metrics_equal(local, pd.read_parquet(tmp_path / "file" / RESULTS))
    assert json.loads((tmp_path / "file" / "manifest.json").read_text())["runs"][0]["workers"] == 2


# ------------------------------------------------------------------ packing points into the batched trainer
def _packable_specs(n: int = 7, steps: int = 600, alpha_step: float = 0.5) -> list[PointSpec]:
    # different seeds (networks), demands, α and tolerances: runs stop in different blocks
    return [PointSpec(nodes=20, edges=40, steps=steps, block=100, demand=0.3 + 0.1 * (s % 6),
                      alpha=5e-3 * (1 + alpha_step * (s % 3)), tol=1e-8 if s % 2 else 1e-6, sweep_seed=3, seed=s)
            for s in range(n)]


def test_packed_points_bit_identical_to_each_alone() -> None:
    """A point's numbers do not depend on what else is packed with it (B = 1 vs B = 7, and order)."""
    specs = _packable_specs()
    packed = run_chunk([(i, dataclasses.asdict(p)) for i, p in enumerate(specs)])
    alone = [run_point(p) for p in specs]
    shuffled = run_chunk([(i, dataclasses.asdict(specs[i])) for i in (3, 0, 6, 1, 5, 2, 4)])
    by_point = {r["point"]: r for r in shuffled}
    steps = {r["steps_run"] for r in packed}
    assert len(steps) > 1, "the runs should stop in different blocks for this test to mean anything"
    for i, (row, ref) in enumerate(zip(packed, alone, strict=True)):
        for col in METRICS:
            a, b, c = row[col], ref[col], by_point[i][col]
            assert (a == b == c) or (a != a and b != b and c != c), (i, col, a, b, c)


def test_packed_run_stops_like_a_single_run() -> None:
    """train_packed keeps each run's block/tolerance semantics: against the single-network trainer
    (CoupledLearning) run block by block, steps run and the first step below tol agree, and the
    conductances agree to rounding. (One α for all: at α = 7.5e-3 one of these networks overshoots
    and its trajectory amplifies rounding differences between the two solvers to 1e-2.)"""
    from labnet.insilico.effects import prepare_voltage
    from labnet.insilico.packed import PackedRun, train_packed
    from labnet.insilico.trainer import CoupledLearning

    specs = _packable_specs(7, alpha_step=0.0)
    vps = [prepare_voltage(p) for p in specs]
    runs = [PackedRun(v.net, v.k0, v.x, np.array([v.t]), p.alpha, p.eta, p.k_min_siemens, p.k_max_siemens, p.tol)
            for v, p in zip(vps, specs, strict=True)]
    got = train_packed(runs, steps=600, block=100, engine="numpy")
    for v, p, r in zip(vps, specs, got, strict=True):
        cl = CoupledLearning(v.net, v.k0.copy(), v.x[None, :], np.array([[v.t]]), alpha=p.alpha, eta=p.eta,
                             k_min=p.k_min_siemens, k_max=p.k_max_siemens)
        run, hit = 0, float("nan")
        while run < 600:
            errs = cl.train(100)
            below = np.flatnonzero(errs < p.tol)
            if below.size and hit != hit:
                hit = float(run + below[0] + 1)
            run += 100
            if errs[-1] < p.tol:
                break
        assert r.steps_run == run
        assert (r.steps_to_target == hit) or (hit != hit and r.steps_to_target != r.steps_to_target)
        np.testing.assert_allclose(r.k, cl.k, rtol=1e-9)


def test_packing_refuses_mixed_shapes() -> None:
    from labnet.insilico.effects import prepare_voltage
    from labnet.insilico.packed import PackedRun, train_packed

    a, b = prepare_voltage(PointSpec(nodes=20, edges=40)), prepare_voltage(PointSpec(nodes=20, edges=41))
    runs = [PackedRun(v.net, v.k0, v.x, np.array([v.t]), 5e-3, 0.5, 1e-5, 1e-2, 1e-8) for v in (a, b)]
    with pytest.raises(ValueError, match="different network shapes"):
        train_packed(runs, steps=10, block=5)


def test_labnet_validate_takes_sweep_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "protocols/sweeps/small.toml")]) == 0
    assert "ok (sweep 'small', 48 points, varied: inputs, alpha, demand, seed)" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('[sweep]\nname = "x"\n[base]\nnodes = 2\n', encoding="utf-8")
    assert main(["validate", str(bad)]) == 2
    assert "base.nodes: expected a value >= 4, got 2" in capsys.readouterr().err
