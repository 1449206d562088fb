"""Several in-silico training runs of one network shape packed into one batched trainer.

:func:`train_packed` trains B networks that share node, edge, input and output counts by
continuous coupled learning with :class:`labnet.insilico.many.BatchedCoupledLearning`
(``wiring="each"``), each with its own conductances, input, target, α, η, conductance range and
stopping tolerance. Every run keeps the semantics of training it alone: blocks of ``block``
steps, stopping after the first block whose last free error is below its ``tol`` or after
``steps`` steps, and the first step below ``tol`` is recorded. Runs that stop leave the batch
(the rest are re-packed with their current conductances).

A run's numbers do not depend on what else is packed with it: with ``wiring="each"`` every
network is assembled, solved (LAPACK per matrix) and updated by element-wise array operations
on its own slice, so packing B = 1 or B = 25 gives bit-identical conductances and errors
(``tests/test_sweep.py`` checks it). This is what lets :func:`labnet.insilico.effects.run_chunk`
pack a sweep's points without their results depending on the chunking.

Units: conductances in siemens (S), voltages in volts (V), α in S/V², errors in V².
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labnet.core.network import Network
from labnet.insilico.many import BatchedCoupledLearning


@dataclass(frozen=True)
class PackedRun:
    """One run to pack: network, initial conductances (E,) S, inputs (n_in,) V, target (n_out,) V,
    α (S/V²), η, conductance range k_min..k_max (S) and the squared-error tolerance ``tol`` (V²)."""

    network: Network
    k0: np.ndarray
    x: np.ndarray
    target: np.ndarray
    alpha: float
    eta: float
    k_min: float
    k_max: float
    tol: float


@dataclass(frozen=True)
class PackedResult:
    """A run's trained conductances (E,) in S, steps run, and the first (1-based) step whose free
    error was below ``tol`` (NaN if none)."""

    k: np.ndarray
    steps_run: int
    steps_to_target: float


def shape_of(net: Network) -> tuple[int, int, int, int]:
    """What runs must share to be packed: nodes, edges, inputs, outputs."""
    return net.n_nodes, net.n_edges, len(net.inputs), len(net.outputs)


def _trainer(runs: Sequence[PackedRun], k: np.ndarray, engine: str) -> BatchedCoupledLearning:
    b = len(runs)
    return BatchedCoupledLearning(
        [r.network for r in runs], k,
        np.stack([np.asarray(r.x, float) for r in runs])[:, None, :],
        np.stack([np.atleast_1d(np.asarray(r.target, float)) for r in runs])[:, None, :],
        alpha=np.array([r.alpha for r in runs]), eta=np.array([r.eta for r in runs]),
        k_min=np.array([r.k_min for r in runs])[:, None] * np.ones((b, 1)),
        k_max=np.array([r.k_max for r in runs])[:, None] * np.ones((b, 1)),
        engine=engine, threads=1, wiring="each")


def train_packed(runs: Sequence[PackedRun], *, steps: int, block: int, engine: str = "auto") -> list[PackedResult]:
    """Train every run of ``runs`` (one shape, see :func:`shape_of`) for at most ``steps`` steps in
    blocks of ``block``; results in the order given. ``engine`` as for
    :class:`~labnet.insilico.many.BatchedCoupledLearning` (numba when installed, else NumPy)."""
    if not runs:
        return []
    shapes = {shape_of(r.network) for r in runs}
    if len(shapes) != 1:
        raise ValueError(f"runs of different network shapes cannot be packed: {sorted(shapes)}")
    if steps < 1 or block < 1:
        raise ValueError(f"steps and block must be >= 1, got {steps} and {block}")
    active = list(range(len(runs)))
    tol = np.array([r.tol for r in runs])
    hit = np.full(len(runs), np.nan)
    out: dict[int, PackedResult] = {}
    bc = _trainer(runs, np.stack([np.asarray(r.k0, float) for r in runs]), engine)
    done = 0
    while active:
        errs = bc.train(min(block, steps - done))  # (L, B_active)
        for col, i in enumerate(active):
            below = np.flatnonzero(errs[:, col] < tol[i])
            if below.size and np.isnan(hit[i]):
                hit[i] = done + below[0] + 1
        done += errs.shape[0]
        k = bc.k
        stop = (errs[-1] < tol[active]) | (done >= steps)
        for col in map(int, np.flatnonzero(stop)):
            i = active[col]
            out[i] = PackedResult(k[col].copy(), done, float(hit[i]))
        if stop.all():
            break
        if stop.any():  # re-pack the runs that go on, with their current conductances
            keep = np.flatnonzero(~stop)
            active = [active[c] for c in keep]
            bc = _trainer([runs[i] for i in active], np.ascontiguousarray(k[keep]), engine)
    return [out[i] for i in range(len(runs))]


__all__ = ["PackedResult", "PackedRun", "shape_of", "train_packed"]
