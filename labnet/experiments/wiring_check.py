"""The wiring check of ``labnet doctor``: which code vectors and source patterns, and measuring them safely.

Design (:func:`wiring_design`)
------------------------------
* **Code vectors** (shape (3, E)): every edge at the highest allowed code (the highest
  resistance, against which a load to ground stands out most); then two *signature* vectors in
  which every digipot channel has its own code (spread geometrically over the upper part of the
  code range, where one tap of integral non-linearity is a small fraction of R), assigned in
  two orders chosen so that any two channels differ by several code steps in at least one of
  them. A digipot in another edge's place then shows up as an edge whose conductance does not
  follow its own channel's codes, whatever the parts' ±tolerance (the ratio
  R(c₁)/R(c₂) of one part hardly depends on its R_AB).
* **Source patterns**: each source node alone, and each with the next source node at 0 V
  (:func:`labnet.experiments.calibration.source_patterns`), every other source released.
* **Safe by construction, whatever the wiring**: every digipot sees at most the span of the
  held voltages (maximum principle), so the amplitude is chosen such that the span across the
  lowest-resistance part the design uses (lowest code, R_AB at its −tolerance end, no wiper
  resistance) drives at most ``current_fraction`` of the rated current — also when an edge
  sits in the wrong place. No source exceeds its channel limit, and every pattern still goes
  through ``Rig.apply``'s limit checks.

Measuring (:func:`measure_wiring`) reads the meter directly (no plausibility re-reads: a swapped
lead *is* an implausible reading, and it is what the check is looking for) and always ends in
the safe state with the codes it found restored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from labnet.bench.limits import Limits
from labnet.bench.rig import Rig
from labnet.core.network import Network
from labnet.core.parts import PartSpec
from labnet.experiments.calibration import source_patterns


@dataclass(frozen=True)
class WiringDesign:
    """What the wiring check applies.

    Attributes
    ----------
    vectors : array (V, E) of int
        Code vectors, ``network.edges`` order (vector 0: every edge at the base code).
    patterns : tuple of dict
        Source patterns (node -> V); nodes not named are released.
    scans : int
        Meter scans per pattern (their spread estimates the noise).
    settle_s : float
        Wait after applying a pattern (s).
    amplitude_v : float
        Voltage of the driven node of every pattern (V).
    """

    vectors: np.ndarray
    patterns: tuple[dict[str, float], ...]
    scans: int
    settle_s: float
    amplitude_v: float


@dataclass
class WiringData:
    """Raw readings of the wiring check: ``scans`` (V, P, S, N) in V, ``network.nodes`` order
    (NaN at unmetered nodes, 0 at an unmetered ground)."""

    design: WiringDesign
    scans: np.ndarray


def signature_codes(n_edges: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Two signature vectors (E,) of distinct codes in [lo, hi] (as distinct as the range allows):
    geometric spacing in edge order, and the same codes in the order i -> m·i mod E whose
    multiplier m keeps every pair of channels furthest apart in rank in one vector or the other."""
    if hi - lo + 1 >= n_edges:
        q = np.rint(np.geomspace(lo, hi, n_edges)).astype(np.int64)
        for i in range(1, n_edges):  # rounding may collide at the low end: push up
            q[i] = max(q[i], q[i - 1] + 1)
        q = np.minimum(q, hi)
        for i in range(n_edges - 2, -1, -1):
            q[i] = min(q[i], q[i + 1] - 1)
    else:  # fewer codes than edges: repeat (some pairs of channels stay alike; the fit reports it)
        q = np.rint(np.linspace(lo, hi, n_edges)).astype(np.int64)
    best, best_m = -1, 1
    idx = np.arange(n_edges)
    for m in range(1, max(n_edges, 2)):
        if math.gcd(m, n_edges) != 1:
            continue
        r = (m * idx) % n_edges
        sep = np.maximum(np.abs(idx[:, None] - idx[None, :]), np.abs(r[:, None] - r[None, :]))
        np.fill_diagonal(sep, n_edges)
        if sep.min() > best:
            best, best_m = int(sep.min()), m
    return q, q[(best_m * idx) % n_edges]


def wiring_design(network: Network, part: PartSpec, limits: Limits, *, current_fraction: float = 0.5,
                  scans: int = 2, settle_s: float = 0.05) -> WiringDesign:
    """The code vectors and source patterns of the wiring check (module docstring)."""
    e = network.n_edges
    lo = max(limits.code_min, part.max_code // 4, 1)
    hi = limits.code_max
    if lo >= hi:
        lo = limits.code_min
    sig2, sig3 = signature_codes(e, lo, hi)
    base = hi  # the highest resistance: a load to ground shows most against the edges
    vectors = np.stack([np.full(e, base, dtype=np.int64), sig2, sig3])
    r_min = min(int(vectors.min()), base) / part.max_code * part.r_ab_ohm * (1 - part.tolerance)
    amp = current_fraction * limits.max_edge_current_a * max(r_min, 1e-9)
    units = source_patterns(network, pairs=True)
    for n in network.source_channels:
        amp = min(amp, limits.channel_limit(network.source_channels[n]))
    pats = tuple({n: float(v * amp) for n, v in p.items()} for p in units)
    return WiringDesign(vectors, pats, int(scans), float(settle_s), float(amp))


def metered_nodes(network: Network) -> list[str]:
    """The nodes the meter reads, in the order ``Rig.open`` configures the scan (``network.nodes`` order)."""
    return [n for n in network.nodes if n in network.meter_channels]


def measure_wiring(rig: Rig, design: WiringDesign, log: Any = None) -> WiringData:
    """Apply every code vector and pattern of ``design`` on an open rig and scan the meter.

    Ends in the safe state with the rig's codes as they were, whatever happens (the first
    error is re-raised after that). ``log(message)`` (optional) hears about each code vector.
    """
    net = rig.network
    idx = net.indices(metered_nodes(net))
    g = net.index[net.ground]
    n_v, n_p = design.vectors.shape[0], len(design.patterns)
    out = np.full((n_v, n_p, design.scans, net.n_nodes), np.nan)
    codes0 = rig.codes
    try:
        for v, codes in enumerate(design.vectors):
            rig.safe_state()
            rig.write_codes(codes)
            if log is not None:
                log(f"code vector {v + 1}/{n_v}")
            for p, pat in enumerate(design.patterns):
                rig.apply(pat)
                rig.settle(design.settle_s)
                for s in range(design.scans):
                    row = np.full(net.n_nodes, np.nan)
                    row[idx] = np.asarray(rig.meter.read(), dtype=float)
                    if net.ground not in net.meter_channels:
                        row[g] = 0.0
                    out[v, p, s] = row
    finally:
        try:
            rig.safe_state()
        finally:
            rig.write_codes(codes0)
    return WiringData(design, out)


__all__ = ["WiringData", "WiringDesign", "measure_wiring", "metered_nodes", "signature_codes", "wiring_design"]
