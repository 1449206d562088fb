"""benchmarks/bench_peer.py's plumbing: clean skips, the issue's network sizes, and (when a peer
checkout is given in $LABNET_PEER) agreement with the peer on the conductances. Not a timing test."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_peer.py"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if k != "LABNET_PEER"} | (env or {})
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=e, timeout=600)


def test_skips_cleanly_without_a_peer() -> None:
    r = _run()
    assert r.returncode == 0 and r.stdout.startswith("skipped: no peer checkout"), r.stdout + r.stderr


def test_skips_cleanly_when_the_path_is_not_a_checkout(tmp_path: Path) -> None:
    r = _run("--peer", str(tmp_path), "--venv", str(tmp_path / "venv"))
    assert r.returncode == 0 and "is not a coupled_learning checkout" in r.stdout, r.stdout + r.stderr
    assert not (tmp_path / "venv").exists(), "no venv is made for a wrong path"


def _bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_peer", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("edges", [16, 255, 1024, 4097, 16385])
def test_networks_have_the_issue_edge_counts(tmp_path: Path, edges: int) -> None:
    cl, npz = _bench().problem(edges, tmp_path)
    d = np.load(npz)
    assert cl.network.n_edges == edges == len(d["edges"])
    assert np.all(d["edges"][:, 0] < d["edges"][:, 1]) and len(np.unique(d["edges"], axis=0)) == edges
    np.testing.assert_allclose(cl.outputs([[1.0, 0.0]])[0] + [0.1, -0.1], d["tgt_val"], rtol=1e-12)


@pytest.mark.skipif(not os.environ.get("LABNET_PEER"), reason="no peer checkout in $LABNET_PEER")
def test_agrees_with_the_peer(tmp_path: Path) -> None:
    bench = _bench()
    py, how = bench.peer_venv(Path(os.environ["LABNET_PEER"]), Path(os.environ.get("LABNET_PEER_VENV",
                                                                                   Path.home() / ".cache/labnet-bench/peer-venv")))
    assert py is not None, how
    r = bench.run_size(255, py, Path(os.environ["LABNET_PEER"]), tmp_path, rounds=1, chunk_s=0.01)
    assert r["agree"] < 1e-10 and r["peer_ms"] > 0 and r["labnet_ms"] > 0
