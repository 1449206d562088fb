"""``labnet sweep``: run a sweep file's points on Dask and keep the results in a folder.

The folder (``--out DIR``, default ``sweeps/<name>``) holds:

* ``sweep.toml`` (the file as given) and ``versions.json`` (labnet, numpy, scipy, dask, …);
* ``manifest.json``: the sweep's identity (:attr:`Sweep.key`), the chunking, and one entry per
  run (when, where, how many points it computed) — rewritten atomically after every chunk;
* ``parts/chunk-NNNNN.parquet``: one file per finished chunk, written atomically (temp file +
  rename), so a killed sweep leaves only whole chunks; a re-run with the same command computes
  the chunks that have no file and nothing else;
* ``results.parquet``: every point once, sorted by ``point`` (parameters and metrics).

Points are packed ``[sweep] chunk`` to a task (the scheduler costs ~1–2 ms a task, a small
point a few ms), and inside a task the points that share a network shape train together in the
batched trainer (:mod:`labnet.insilico.packed`). The cluster: a ``LocalCluster`` of processes with one thread each (BLAS,
OpenMP and numba pinned to one thread through the workers' environment, and threadpoolctl in
every task), an existing scheduler (``--scheduler tcp://host:8786``) or a scheduler file
(``--scheduler-file``, e.g. from ``dask-jobqueue`` or ``dask scheduler --scheduler-file``).
A worker that dies has its task re-run elsewhere by Dask; a chunk's file is written once, by
this process, when its result arrives.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labnet.config.sweep_file import Sweep
from labnet.core.errors import ConfigError
from labnet.insilico.effects import run_chunk

#: Environment of LocalCluster workers: one thread for every BLAS/OpenMP/numba pool.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1"}
MANIFEST = "manifest.json"
RESULTS = "results.parquet"
_PART = re.compile(r"chunk-(\d{5,})\.parquet$")


@dataclass
class SweepOutcome:
    """What a sweep run did: folder, points in the sweep, computed now, already there, wall time (s)."""

    folder: Path
    n_points: int
    computed: int
    skipped: int
    wall_s: float
    workers: int


def _atomic_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def versions() -> dict[str, str]:
    """Versions of Python and of every package a result depends on."""
    from importlib import metadata

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("labnet", "numpy", "scipy", "pandas", "pyarrow", "dask", "distributed", "numba", "threadpoolctl"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def done_chunks(folder: Path) -> set[int]:
    """Indices of the chunks whose part file exists."""
    parts = folder / "parts"
    return {int(m.group(1)) for f in parts.glob("chunk-*.parquet") if (m := _PART.search(f.name))} if parts.is_dir() else set()


def prepare_folder(sweep: Sweep, folder: Path) -> dict[str, Any]:
    """Create or re-open the sweep folder; refuse one that holds a different sweep (ConfigError)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "parts").mkdir(exist_ok=True)
    mpath = folder / MANIFEST
    if mpath.exists():
        manifest: dict[str, Any] = json.loads(mpath.read_text(encoding="utf-8"))
        if manifest.get("key") != sweep.key:
            raise ConfigError(str(mpath), "key", f"{folder} holds a different sweep ({manifest.get('name')!r}); "
                              "use another --out folder")
        return manifest
    (folder / "sweep.toml").write_text(sweep.text, encoding="utf-8")
    _atomic_json(folder / "versions.json", versions())
    manifest = {"key": sweep.key, "name": sweep.name, "file": sweep.file, "n_points": len(sweep.points),
                "chunk": sweep.chunk, "n_chunks": len(sweep.chunks()), "varied": list(sweep.varied), "runs": []}
    _atomic_json(mpath, manifest)
    return manifest


def write_part(folder: Path, index: int, rows: list[dict[str, Any]]) -> None:
    """One chunk's rows to ``parts/chunk-<index>.parquet``, atomically."""
    import pandas as pd

    path = folder / "parts" / f"chunk-{index:05d}.parquet"
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    pd.DataFrame(rows).to_parquet(tmp, index=False)
    os.replace(tmp, path)


def collect(folder: Path, n_points: int) -> Any:
    """All parts as one DataFrame sorted by point, written to ``results.parquet``; checks each point once."""
    import pandas as pd

    files = sorted((folder / "parts").glob("chunk-*.parquet"))
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).sort_values("point", kind="stable")
    df = df.reset_index(drop=True)
    if df["point"].duplicated().any() or len(df) != n_points:
        raise RuntimeError(f"{folder}: parts hold {len(df)} rows for {n_points} points "
                           f"({int(df['point'].duplicated().sum())} duplicated)")
    tmp = folder / (RESULTS + ".tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, folder / RESULTS)
    return df


def open_client(scheduler: str | None = None, scheduler_file: str | None = None, workers: int | None = None,
                timeout_s: float = 30.0) -> tuple[Any, Any]:
    """A Dask client and the LocalCluster it owns (None for an existing cluster)."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout=timeout_s), None
    if scheduler_file:
        return Client(scheduler_file=scheduler_file, timeout=timeout_s), None
    n = workers or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, env=WORKER_ENV,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    return Client(cluster), cluster


def _progress(total: int, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm  # a widget in Jupyter, text elsewhere

    return tqdm(total=total, initial=initial, unit="pt", desc="points", disable=not enabled, dynamic_ncols=True,
                smoothing=0.1, file=sys.stderr)


def run_sweep(sweep: Sweep, folder: Path, *, scheduler: str | None = None, scheduler_file: str | None = None,
              workers: int | None = None, progress: bool = True, client: Any = None,
              on_chunk: Callable[[int, Any], None] | None = None) -> SweepOutcome:
    """Compute every missing chunk of ``sweep`` on Dask, write its part, then ``results.parquet``.

    ``client``: use this Dask client (the caller owns it); ``on_chunk(index, client)`` is called
    after each part is written (tests use it to kill a worker mid-sweep).
    """
    t0 = time.perf_counter()
    folder = Path(folder)
    manifest = prepare_folder(sweep, folder)
    chunks = sweep.chunks()
    have = done_chunks(folder)
    todo = [i for i in range(len(chunks)) if i not in have]
    skipped = sum(len(chunks[i]) for i in have if i < len(chunks))
    run: dict[str, Any] = {"started": datetime.now(UTC).isoformat(timespec="seconds"),
                           "computed_points": 0, "computed_chunks": [], "skipped_points": skipped}
    manifest["runs"].append(run)
    n_workers = 0
    if todo:
        own = client is None
        cluster = None
        if own:
            client, cluster = open_client(scheduler, scheduler_file, workers)
        try:
            from dask.distributed import as_completed

            n_workers = len(client.scheduler_info().get("workers", {}))
            run["scheduler"] = scheduler or scheduler_file or "LocalCluster"
            run["workers"] = n_workers
            payload = {i: [(j, dataclasses.asdict(sweep.points[j])) for j in chunks[i]] for i in todo}
            futures = {client.submit(run_chunk, payload[i], key=f"labnet-sweep-{sweep.key[:12]}-{i:05d}",
                                     pure=False): i for i in todo}
            bar = _progress(len(sweep.points), skipped, progress)
            try:
                for fut, rows in as_completed(futures, with_results=True):
                    i = futures[fut]
                    write_part(folder, i, rows)
                    run["computed_points"] += len(rows)
                    run["computed_chunks"].append(i)
                    _atomic_json(folder / MANIFEST, manifest)
                    bar.update(len(rows))
                    if on_chunk is not None:
                        on_chunk(i, client)
            finally:
                bar.close()
        finally:
            if own:
                client.close()
                if cluster is not None:
                    cluster.close()
    run["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    _atomic_json(folder / MANIFEST, manifest)
    collect(folder, len(sweep.points))
    return SweepOutcome(folder, len(sweep.points), run["computed_points"], skipped, time.perf_counter() - t0, n_workers)


def summary(out: SweepOutcome) -> str:
    """A few lines for the terminal."""
    rate = out.computed / out.wall_s * 60 if out.computed and out.wall_s > 0 else 0.0
    return (f"sweep: {out.n_points} points ({out.computed} computed now, {out.skipped} already done) "
            f"in {out.wall_s:.1f} s on {out.workers} workers ({rate:.0f} points/min)\n"
            f"results: {out.folder / RESULTS}   figures: labnet report {out.folder}")


__all__ = ["MANIFEST", "RESULTS", "WORKER_ENV", "SweepOutcome", "collect", "done_chunks", "open_client",
           "prepare_folder", "run_sweep", "summary", "versions", "write_part"]
