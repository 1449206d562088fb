"""In-situ calibration: every edge's code -> conductance curve, measured without unwiring.

Method
------
1. **Conductances at one code vector** (:func:`solve_conductances`). Drive a few source
   patterns (a node alone, or a node against another held at 0 V; the rest float) and scan
   every node. Kirchhoff's current law is *linear in the conductances*: with ΔV_j the
   measured drop across edge j and B the (E, N) incidence matrix,

       Σ_j B_ji ΔV_j k_j = 0         at every node i that no source holds,
       Σ_j B_js ΔV_j k_j = I_s       at a driven node s whose source reports its current I_s.

   All patterns stacked give an over-determined linear system for k (shape (E,)), solved by
   weighted least squares; the parameter covariance gives each k_j's uncertainty.
   **Scale.** Node voltages alone fix only the *ratios* of the conductances (multiplying
   every k by a constant changes no voltage), so something must fix the scale. Where the
   sources report their current (``Rig.read_source_currents``: SMUs, the simulator) the
   current rows fix it absolutely. Otherwise (``scale = "nominal"``) the homogeneous
   solution is scaled so that the geometric mean of the conductances equals the nominal
   part model's at the same codes: the scale then carries the parts' mean tolerance error
   (±tol/√(3E): about ±2.9 % for 16 X9C parts) — a known reference resistor in the network
   would remove it.
2. **Code sweep** (:func:`calibrate`). Every edge must be measured at several codes, and
   one set of patterns recovers *all* edges at once — but not always uniquely: a sub-network
   without a source (on sim16, nodes n8 and n9) acts between its two attachment nodes like
   one conductance in parallel with the edge joining them, so at a single code vector its
   internal scale trades off exactly against that edge. Sharing unknowns across code
   vectors removes the ambiguity: the edges are split into groups (:func:`choose_groups`,
   checked for identifiability on the nominal model before anything is applied), and the
   sweep (:func:`sweep_design`) measures the base vector (all edges at the middle sweep code)
   and then, for each group and each other sweep code, that group at the code while every
   other edge holds the base code. One joint least-squares fit over every (edge, code)
   unknown (:func:`solve_conductances`) uses all of it: 1 + G·(m−1) code vectors instead of
   E·m for one edge at a time (11 instead of 96 for 16 edges, 2 groups and 6 codes).
3. **Part model per edge** (:func:`fit_part`). R(D) = D/N·R_AB + R_W is linear in
   (R_AB, R_W); a correction term c·sin(πD/N) (integral non-linearity, in Ω) is added where
   the data need it (``correction = "auto"``: when it lowers χ² by more than
   :data:`CORRECTION_DCHI2`). The fitted curve gives the table k(D) for every code with an
   uncertainty propagated from the fit covariance.
4. **Meter loading.** A scanning DMM loads the node it reads (10 MΩ by default), which biases
   floating-node readings by R_th/R_in (~1e-4) — enough to matter for the sourceless
   sub-networks above. With ``meter_input_ohm`` the readings are corrected to first order
   from the fitted conductances and the fit is repeated once (:func:`unload`).

The result is a :class:`CalibrationTable` (a :class:`~labnet.core.conductance.ConductanceModel`)
stored as ``calibration.csv`` in the calibration session folder (``# key: JSON`` header like
the session CSV, then ``edge,code,conductance_s,sigma_s``); a training protocol uses it with
``[calibration] table = "path/to/calibration.csv"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labnet.bench.rig import Rig
from labnet.config.rigfile import RigSpec, load_rig
from labnet.config.schema import Table, read_toml
from labnet.core.errors import ConfigError, LimitError
from labnet.core.network import Network
from labnet.session.folder import SessionWriter, header_json, versions

#: χ² drop needed to keep the non-linearity correction term (one extra parameter: ~3σ).
CORRECTION_DCHI2 = 9.0
SCALES = ("source_current", "nominal")
CORRECTIONS = ("auto", "none", "inl")


@dataclass(frozen=True)
class CalibrationSettings:
    """The ``[calibration]`` table of a calibrate protocol.

    Attributes
    ----------
    codes : list of int
        Sweep codes (every edge is measured at each); default: 6 codes spread over the rig's
        code limits.
    pairs : bool
        Add "node s at V, next source node at 0 V" patterns to the single-node ones.
    current_fraction : float
        Patterns are scaled so the *predicted* largest edge current (nominal model) is this
        fraction of the rig's edge current limit (margin for the parts' tolerance).
    scans : int
        Meter scans averaged per pattern.
    settle_s : float
        Wait after applying a pattern (s).
    scale : {"source_current", "nominal"}
        What fixes the overall scale (see the module docstring); ``source_current`` falls
        back to ``nominal`` (with a warning in the result) when the sources cannot measure.
    correction : {"auto", "none", "inl"}
        Non-linearity term in the part model: where the data need it, never, always.
    meter_input_ohm : float
        The meter's input resistance (Ω): 10 MΩ, a DMM's default on its DC voltage ranges
        (0: ideal, e.g. a meter switched to > 10 GΩ input). A scanning meter loads each floating node
        while it reads it, V_read = V / (1 + R_th/R_in); given R_in the readings are corrected
        to first order with R_th computed from the fitted conductances (one refit). Matters
        for sourceless sub-networks, whose conductances rest on small voltage differences.
    """

    codes: tuple[int, ...] = ()
    pairs: bool = True
    current_fraction: float = 0.5
    scans: int = 2
    settle_s: float = 0.01
    scale: str = "source_current"
    correction: str = "auto"
    meter_input_ohm: float = 10e6


@dataclass
class CalibrateProtocol:
    """A validated ``kind = "calibrate"`` protocol file (or the defaults for a bare rig file)."""

    path: Path | None
    name: str
    seed: int
    rig: RigSpec
    settings: CalibrationSettings
    text: str = ""


def load_calibrate_protocol(path: str | Path, *, rig: str | Path | None = None) -> CalibrateProtocol:
    """Read a calibrate protocol, or a rig file (then default settings); validate everything."""
    p = Path(path)
    data = read_toml(p)
    if "protocol" not in data:
        spec = load_rig(p if rig is None else rig)
        return CalibrateProtocol(None, "calibrate", 0, spec, CalibrationSettings())
    from labnet.config.protocol import read_head

    f = str(p)
    top = Table(data, f)
    head = read_head(top, p, ["calibrate"], rig)
    name, seed = head.name, head.seed
    spec = load_rig(head.rig_path)
    t = top.table("calibration", required=False)
    settings = parse_settings(t, spec)
    top.finish()
    return CalibrateProtocol(p, name, seed, spec, settings, p.read_text(encoding="utf-8"))


def parse_settings(t: Table, spec: RigSpec) -> CalibrationSettings:
    """Validate a ``[calibration]`` table against the rig's code limits."""
    lo, hi = spec.limits.code_min, spec.limits.code_max
    codes = tuple(int(c) for c in t.floats("codes", [], lo=lo, hi=hi)) if t.has("codes") else ()
    if codes and any(float(c) != c for c in t.raw("codes")):
        raise t.error("codes", "expected integer codes")
    if codes and len(set(codes)) < 3:
        raise t.error("codes", f"expected at least 3 distinct codes (the part model has up to 3 parameters), got {list(codes)}")
    s = CalibrationSettings(
        codes=codes,
        pairs=t.bool("pairs", True),
        current_fraction=t.float("current_fraction", 0.5, lo=0.0, hi=1.0, lo_open=True),
        scans=t.int("scans", 2, lo=1, hi=1000),
        settle_s=t.float("settle_s", 0.01, lo=0.0, hi=60.0),
        scale=t.str("scale", "source_current", choices=SCALES),
        correction=t.str("correction", "auto", choices=CORRECTIONS),
        meter_input_ohm=t.float("meter_input_ohm", 10e6, lo=0.0),
    )
    t.finish()
    return s


def default_codes(code_min: int, code_max: int, n: int = 6) -> tuple[int, ...]:
    """``n`` codes spread evenly over [code_min, code_max] (ends included)."""
    return tuple(int(c) for c in np.unique(np.rint(np.linspace(code_min, code_max, n)).astype(int)))


# ---------------------------------------------------------------------------------- patterns
def source_patterns(network: Network, pairs: bool = True) -> list[dict[str, float]]:
    """Unit-amplitude patterns (node -> relative voltage): each source node alone at 1, and
    (``pairs``) each at 1 with the next source node held at 0. Ground is always at 0 V."""
    nodes = [n for n in network.nodes if n in network.source_channels]
    pats: list[dict[str, float]] = [{n: 1.0} for n in nodes]
    if pairs and len(nodes) > 1:
        pats += [{a: 1.0, b: 0.0} for a, b in zip(nodes, nodes[1:] + nodes[:1])]
    return pats


def scaled_pattern(rig: Rig, pattern: Mapping[str, float], fraction: float) -> dict[str, float]:
    """Scale a unit pattern so the predicted largest edge current is ``fraction`` of the limit
    (and no source exceeds its voltage limit). Predicts with the rig's model at its present codes."""
    from labnet.core.physics import Solver, edge_currents

    k = rig.conductances()
    v = Solver(rig.network, k, list(pattern)).solve(dict(pattern))
    i = float(np.max(np.abs(edge_currents(rig.network, k, v))))
    amp = fraction * rig.limits.max_edge_current_a / i if i > 0 else 1.0
    for n, val in pattern.items():
        if val != 0:
            amp = min(amp, rig.limits.channel_limit(rig.network.source_channels[n]) / abs(val))
    out = {n: float(val * amp) for n, val in pattern.items()}
    rig.check_pattern(out)
    return out


@dataclass
class PatternData:
    """Measurements of one source pattern: held voltages, node voltages (N,), source currents."""

    held: dict[str, float]
    voltages: np.ndarray
    currents: np.ndarray | None  # (len(held),) in held order, or None


def measure_patterns(rig: Rig, patterns: Sequence[Mapping[str, float]], *, scans: int, settle_s: float,
                     log: Any = None, step: int = 0) -> list[PatternData]:
    """Apply each pattern, settle, average ``scans`` meter scans; read source currents if possible.

    ``log(row)`` (optional) receives one dict per pattern for the session CSV.
    """
    out = []
    for p_i, pat in enumerate(patterns):
        rig.apply(pat)
        rig.settle(settle_s)
        v = np.mean([rig.measure() for _ in range(scans)], axis=0)
        cur = rig.read_source_currents(list(pat))
        out.append(PatternData(dict(pat), v, None if cur is None else np.asarray(cur, float)))
        if log is not None:
            row: dict[str, Any] = {"bench_s": rig.clock.now(), "step": step, "pattern": p_i}
            row.update({f"set_{n}": v_ for n, v_ in pat.items()})
            row.update({f"v_{n}": float(x) for n, x in zip(rig.network.nodes, v)})
            if cur is not None:
                row.update({f"i_{n}": float(c) for n, c in zip(pat, cur)})
            row.update({f"code_e{j}": int(c) for j, c in enumerate(rig.codes)})
            log(row)
    rig.safe_state()
    return out


# ---------------------------------------------------------------------------------- least squares
@dataclass(frozen=True)
class ConductanceFit:
    """Least-squares conductances of (edge, code) unknowns.

    Attributes
    ----------
    keys : list of (edge, code)
        What each unknown is.
    k, sigma : arrays (U,)
        Conductances and 1σ uncertainties (S).
    chi2_dof : float
        Weighted residual per degree of freedom (≈1 when the noise model is right; the
        uncertainties are scaled up by sqrt of it when larger).
    rank_deficit : int
        Directions the data cannot determine (0 for a good design).
    scale : str
        ``"source_current"`` or ``"nominal"``.
    """

    keys: list[tuple[int, int]]
    k: np.ndarray
    sigma: np.ndarray
    chi2_dof: float
    rank_deficit: int
    scale: str

    def at(self, codes: np.ndarray) -> np.ndarray:
        """Conductances (S), shape (E,), at a code vector that was measured."""
        pos = {key: i for i, key in enumerate(self.keys)}
        return np.array([self.k[pos[(j, int(c))]] for j, c in enumerate(codes)])


def kcl_system(network: Network, data: Sequence[PatternData],
               use_currents: bool) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Rows of the linear system M k = b from measured patterns at one code vector.

    Returns M (R, E), b (R,) in A and the (pattern, node) of each row. A node gives a row when
    its voltage and all its neighbours' are measured; driven nodes give rows only with
    ``use_currents`` (their right-hand side is the source's current).
    """
    src, dst = network.edge_ends
    rows, rhs, where = [], [], []
    for p, d in enumerate(data):
        v = d.voltages
        dv = v[src] - v[dst]
        held_pos = {network.index[n]: i for i, n in enumerate(d.held)}
        for i in range(network.n_nodes):
            if network.nodes[i] == network.ground:
                continue
            at_src, at_dst = src == i, dst == i
            touching = at_src | at_dst
            if not np.all(np.isfinite(dv[touching])):
                continue
            row = np.where(at_src, dv, 0.0) - np.where(at_dst, dv, 0.0)
            if i in held_pos:
                if not use_currents or d.currents is None:
                    continue
                b = float(d.currents[held_pos[i]])
            else:
                b = 0.0
            rows.append(row)
            rhs.append(b)
            where.append((p, i))
    return np.array(rows), np.array(rhs), where


def solve_conductances(network: Network, measured: Sequence[tuple[np.ndarray, Sequence[PatternData]]], *,
                       noise_v: float, scale: str = "source_current", k_nominal: Any = None,
                       current_rel: float = 1e-4) -> ConductanceFit:
    """Joint weighted least squares for the conductance of every (edge, code) pair measured.

    Parameters
    ----------
    measured : sequence of (codes (E,), patterns)
        The code vector and the patterns measured at it. An edge whose code is the same in
        two vectors has *one* unknown for both — that sharing is what makes sub-networks
        without a source identifiable (a sourceless 2-terminal cluster is otherwise
        indistinguishable from a rescaled parallel edge).
    noise_v : float
        1σ noise (V) of one (averaged) node reading; sets the row weights (a KCL row's
        residual variance is σ²[(Σ_j k_j)² + Σ_j k_j²] over the node's edges).
    scale : {"source_current", "nominal"}
        How the overall scale is fixed (module docstring); ``source_current`` needs currents.
    k_nominal : ConductanceModel, optional
        Nominal model; required for ``scale = "nominal"``, and gives the starting weights.
    current_rel : float
        Relative 1σ error assumed for a reported source current.
    """
    has_i = any(d.currents is not None for _, data in measured for d in data)
    use_i = scale == "source_current" and has_i
    mat, b, touch, key_list = joint_system(network, measured, use_i)
    u = len(key_list)
    if k_nominal is not None:
        k = np.array([float(k_nominal.conductance(np.full(network.n_edges, c))[j]) for j, c in key_list])
    else:
        k = np.ones(u)
    k_nom0 = k.copy()
    for _ in range(3):  # the weights depend on k: iterate
        sig = np.array([noise_v * np.sqrt(np.sum(k[t]) ** 2 + np.sum(k[t] ** 2)) for t in touch])
        sig = np.hypot(sig, current_rel * np.abs(b))
        mw, bw = mat / sig[:, None], b / sig
        if use_i:
            k, *_ = np.linalg.lstsq(mw, bw, rcond=None)
        else:
            if k_nominal is None:
                raise ValueError("scale = 'nominal' needs k_nominal")
            _, _, vt = np.linalg.svd(mw, full_matrices=False)
            k = vt[-1] * np.sign(np.sum(vt[-1]))
            k = k * np.exp(np.mean(np.log(k_nom0)) - np.mean(np.log(np.abs(k))))
    sv = np.linalg.svd(mw, compute_uv=False)
    tol = sv[0] * 1e-10
    n_free = u if use_i else u - 1
    deficit = int(n_free - np.sum(sv > tol))
    resid = mw @ k - bw
    dof = max(mw.shape[0] - n_free, 1)
    chi2_dof = float(resid @ resid / dof)
    cov = np.linalg.pinv(mw.T @ mw, rcond=1e-12) * max(chi2_dof, 1.0)
    sigma = np.sqrt(np.clip(np.diag(cov), 0, None))
    return ConductanceFit(key_list, k, sigma, chi2_dof, max(deficit, 0), "source_current" if use_i else "nominal")


def joint_system(network: Network, measured: Sequence[tuple[np.ndarray, Sequence[PatternData]]],
                 use_currents: bool) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[tuple[int, int]]]:
    """The stacked KCL rows of every code vector over (edge, code) unknowns.

    Returns M (R, U), b (R,) in A, the unknown columns each row touches, and the (edge, code)
    of each of the U unknowns.
    """
    keys: dict[tuple[int, int], int] = {}
    for codes, _ in measured:
        for j, c in enumerate(codes):
            keys.setdefault((j, int(c)), len(keys))
    src, dst = network.edge_ends
    blocks, rhs, touch = [], [], []
    for codes, data in measured:
        m, b, where = kcl_system(network, data, use_currents)
        cols = np.array([keys[(j, int(c))] for j, c in enumerate(codes)])
        big = np.zeros((m.shape[0], len(keys)))
        np.add.at(big, (np.arange(m.shape[0])[:, None], cols[None, :]), m)
        blocks.append(big)
        rhs.append(b)
        touch += [cols[(src == i) | (dst == i)] for _, i in where]
    return np.vstack(blocks), np.concatenate(rhs), touch, list(keys)


def sweep_design(n_edges: int, sweep: np.ndarray, base: int, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Code vectors (V, E): all edges at ``base``, then for each group and each sweep code ≠ base
    the group at that code while every other edge holds ``base``."""
    vecs = [np.full(n_edges, base)]
    for g in groups:
        for c in sweep:
            if c == base:
                continue
            v = np.full(n_edges, base)
            v[list(g)] = c
            vecs.append(v)
    return np.array(vecs, dtype=np.int64)


def choose_groups(network: Network, model: Any, sweep: np.ndarray, base: int, patterns: Sequence[Mapping[str, float]],
                  rng: np.random.Generator, n_groups: int = 2, tries: int = 20) -> list[list[int]]:
    """A partition of the edges into ``n_groups`` whose sweep design is fully identifiable.

    Checked before touching the bench: the whole design is simulated with the nominal
    ``model`` (noise-free), and a partition whose joint least-squares system has a rank
    deficit is rejected. Falls back to one edge per group (always identifiable where anything is).
    """
    from labnet.core.physics import Solver

    e = network.n_edges
    cand = [[list(range(g, e, n_groups)) for g in range(n_groups)]]
    for _ in range(tries):
        perm = rng.permutation(e)
        cand.append([sorted(int(x) for x in perm[g::n_groups]) for g in range(n_groups)])
    cand.append([[j] for j in range(e)])
    for groups in cand:
        design = sweep_design(e, sweep, base, groups)
        measured = []
        for codes in design:
            k = model.conductance(codes)
            data = []
            for pat in patterns:
                v = Solver(network, k, list(pat)).solve(dict(pat))
                inj = network.laplacian(k) @ v
                data.append(PatternData(dict(pat), v, np.array([inj[network.index[n]] for n in pat])))
            measured.append((codes, data))
        mat, _, _, keys = joint_system(network, measured, use_currents=False)
        mat = mat / np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-300)
        sv = np.linalg.svd(mat, compute_uv=False)
        if int(np.sum(sv > sv[0] * 1e-9)) == len(keys) - 1:  # only the global scale is free
            return groups
    return cand[-1]


# ---------------------------------------------------------------------------------- part model
@dataclass(frozen=True)
class PartFit:
    """R(D) = D/N·R_AB + R_W (+ c·sin(πD/N)) fitted to one edge (Ω); ``cov`` is 3×3 (c=0 row/col when unused)."""

    r_ab_ohm: float
    r_w_ohm: float
    inl_ohm: float
    cov: np.ndarray
    chi2: float
    dof: int
    corrected: bool

    def basis(self, codes: np.ndarray, max_code: int) -> np.ndarray:
        d = np.asarray(codes, dtype=float)
        return np.stack([d / max_code, np.ones_like(d), np.sin(np.pi * d / max_code)], axis=-1)

    def resistance(self, codes: np.ndarray, max_code: int) -> tuple[np.ndarray, np.ndarray]:
        """R (Ω) and its 1σ (Ω) at ``codes``."""
        g = self.basis(codes, max_code)
        p = np.array([self.r_ab_ohm, self.r_w_ohm, self.inl_ohm])
        return g @ p, np.sqrt(np.einsum("...i,ij,...j->...", g, self.cov, g))


def fit_part(codes: np.ndarray, k: np.ndarray, sigma_k: np.ndarray, max_code: int, correction: str = "auto") -> PartFit:
    """Fit one edge's part model to conductances ``k`` (S) ± ``sigma_k`` at ``codes`` (shape (m,))."""
    codes = np.asarray(codes, dtype=float)
    r = 1.0 / np.asarray(k, float)
    sr = np.asarray(sigma_k, float) * r**2
    sr = np.where(sr > 0, sr, 1e-12 * r)
    g = np.stack([codes / max_code, np.ones_like(codes), np.sin(np.pi * codes / max_code)], axis=1)

    def fit(cols: int) -> tuple[np.ndarray, np.ndarray, float]:
        gw = g[:, :cols] / sr[:, None]
        p, *_ = np.linalg.lstsq(gw, r / sr, rcond=None)
        res = gw @ p - r / sr
        return p, np.linalg.pinv(gw.T @ gw), float(res @ res)

    p2, c2, chi2_2 = fit(2)
    use = correction == "inl" or (correction == "auto" and len(codes) > 3)
    if use:
        p3, c3, chi2_3 = fit(3)
        if correction == "inl" or chi2_2 - chi2_3 > CORRECTION_DCHI2:
            dof = len(codes) - 3
            cov = c3 * max(chi2_3 / dof, 1.0) if dof > 0 else c3
            return PartFit(float(p3[0]), float(p3[1]), float(p3[2]), cov, chi2_3, dof, True)
    dof = len(codes) - 2
    cov = np.zeros((3, 3))
    cov[:2, :2] = c2 * (max(chi2_2 / dof, 1.0) if dof > 0 else 1.0)
    return PartFit(float(p2[0]), float(p2[1]), 0.0, cov, chi2_2, dof, False)


# ---------------------------------------------------------------------------------- the table
class CalibrationTable:
    """Per-edge code -> conductance table with uncertainties: a ConductanceModel.

    Parameters
    ----------
    k : array (E, C)
        Conductance (S) of edge j at code c (codes 0 … C−1).
    sigma : array (E, C)
        1σ uncertainty (S).
    meta : dict
        What produced the table (written into the CSV header).
    """

    def __init__(self, k: np.ndarray, sigma: np.ndarray, meta: Mapping[str, Any] | None = None) -> None:
        self.k = np.asarray(k, dtype=float)
        self.sigma = np.asarray(sigma, dtype=float)
        if self.k.ndim != 2 or self.k.shape != self.sigma.shape:
            raise ValueError(f"table: expected matching (E, C) arrays, got {self.k.shape} and {self.sigma.shape}")
        if not np.all(self.k > 0):
            raise ValueError("table: every conductance must be > 0 S")
        self.meta = dict(meta or {})
        self._rows = np.arange(self.k.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.k.shape[0])

    def conductance(self, codes: np.ndarray) -> np.ndarray:
        """Conductances (S), shape (E,), at integer codes (E,)."""
        c = np.asarray(codes, dtype=np.int64)
        return self.k[self._rows, c]

    def uncertainty(self, codes: np.ndarray) -> np.ndarray:
        """1σ (S), shape (E,), at integer codes (E,)."""
        return self.sigma[self._rows, np.asarray(codes, dtype=np.int64)]

    def slope(self, codes: np.ndarray) -> np.ndarray:
        """dk/dD (S per tap), shape (E,): k(D+1) − k(D), backward difference at the top code."""
        c = np.asarray(codes, dtype=np.int64)
        top = self.k.shape[1] - 1
        up = np.minimum(c + 1, top)
        lo = np.where(c >= top, top - 1, c)
        return (self.k[self._rows, up] - self.k[self._rows, lo]) / np.maximum(up - lo, 1)

    def to_csv(self, path: str | Path) -> Path:
        """Write ``# key: JSON`` header lines, then ``edge,code,conductance_s,sigma_s`` rows."""
        p = Path(path)
        e, c = np.meshgrid(np.arange(self.k.shape[0]), np.arange(self.k.shape[1]), indexing="ij")
        with open(p, "w", encoding="utf-8", newline="") as fh:
            for key, val in self.meta.items():
                fh.write(f"# {key}: {header_json(val)}\n")
            fh.write("edge,code,conductance_s,sigma_s\n")
            for a, b, kk, ss in zip(e.ravel(), c.ravel(), self.k.ravel(), self.sigma.ravel()):
                fh.write(f"{a},{b},{float(kk)!r},{float(ss)!r}\n")
        return p

    @classmethod
    def from_csv(cls, path: str | Path, n_edges: int | None = None) -> CalibrationTable:
        """Read a table written by :meth:`to_csv`; ConfigError if it does not fit ``n_edges``."""
        import pandas as pd

        from labnet.session.folder import read_header

        p = Path(path)
        if not p.exists():
            raise ConfigError(str(p), "-", "calibration table not found")
        df = pd.read_csv(p, comment="#")
        need = {"edge", "code", "conductance_s", "sigma_s"}
        if not need <= set(df.columns):
            raise ConfigError(str(p), "-", f"expected columns {sorted(need)}, got {list(df.columns)}")
        e = int(df["edge"].max()) + 1
        c = int(df["code"].max()) + 1
        if len(df) != e * c:
            raise ConfigError(str(p), "-", f"expected {e}x{c} rows (every edge at every code), got {len(df)}")
        if n_edges is not None and e != n_edges:
            raise ConfigError(str(p), "edge", f"table has {e} edges, the network has {n_edges}")
        k = np.full((e, c), np.nan)
        s = np.full((e, c), np.nan)
        k[df["edge"].to_numpy(), df["code"].to_numpy()] = df["conductance_s"].to_numpy()
        s[df["edge"].to_numpy(), df["code"].to_numpy()] = df["sigma_s"].to_numpy()
        return cls(k, s, read_header(p))


# ---------------------------------------------------------------------------------- the procedure
@dataclass
class CalibrationResult:
    """What :func:`calibrate` measured and fitted."""

    table: CalibrationTable
    fits: list[PartFit]
    points: ConductanceFit  # least-squares conductance of every (edge, code) measured
    design: np.ndarray  # (V, E) code vectors measured
    scale: str
    bench_s: float
    n_states: int
    notes: list[str] = field(default_factory=list)


def calibrate(rig: Rig, settings: CalibrationSettings, *, log: Any = None, noise_v: float | None = None,
              seed: int = 0) -> CalibrationResult:
    """Run the calibration on an open rig; leaves it in the safe state with its codes restored.

    ``noise_v`` is the 1σ noise of one meter reading (V); by default estimated from repeated
    scans of the first pattern. ``log(row)`` receives every measured pattern; ``seed`` seeds
    the choice of edge groups.
    """
    from labnet.core.conductance import PartModel

    net, part, lim = rig.network, rig.part, rig.limits
    sweep = np.array(settings.codes or default_codes(lim.code_min, lim.code_max), dtype=np.int64)
    base = int(sweep[len(sweep) // 2])
    codes0 = rig.codes
    t0 = rig.clock.now()
    notes: list[str] = []
    scale = settings.scale
    if scale == "source_current" and rig.read_source_currents(list(net.source_channels)[:1]) is None:
        scale = "nominal"
        notes.append("sources cannot measure current: scale fixed by the nominal part model (geometric mean)")
    unit = source_patterns(net, settings.pairs)
    nominal = PartModel(part, net.n_edges)
    groups = choose_groups(net, nominal, sweep, base, unit, np.random.default_rng([seed, 5]))
    design = sweep_design(net.n_edges, sweep, base, groups)
    measured = []
    n_states = 0
    est_noise = noise_v
    try:
        for s, codes in enumerate(design):
            rig.write_codes(codes)
            pats = [scaled_pattern(rig, p, settings.current_fraction) for p in unit]
            if est_noise is None:
                est_noise = _estimate_noise(rig, pats[0], settings.settle_s)
                n_states += 8
            data = measure_patterns(rig, pats, scans=settings.scans, settle_s=settings.settle_s, log=log, step=s)
            n_states += len(pats) * settings.scans
            measured.append((codes, data))
    finally:
        rig.safe_state()
        try:
            rig.write_codes(codes0)
        except LimitError:
            pass
    fit = solve_conductances(net, measured, noise_v=est_noise / np.sqrt(settings.scans), scale=scale, k_nominal=nominal)
    if settings.meter_input_ohm > 0:
        measured = [(codes, unload(net, fit.at(codes), data, settings.meter_input_ohm)) for codes, data in measured]
        fit = solve_conductances(net, measured, noise_v=est_noise / np.sqrt(settings.scans), scale=scale,
                                 k_nominal=nominal)
    if fit.rank_deficit:
        notes.append(f"{fit.rank_deficit} direction(s) of the conductances are not determined by the data")
    keys = np.array(fit.keys)
    fits = []
    for j in range(net.n_edges):
        sel = keys[:, 0] == j
        fits.append(fit_part(keys[sel, 1], fit.k[sel], fit.sigma[sel], part.max_code, settings.correction))
    all_codes = np.arange(part.positions)
    table_k = np.empty((net.n_edges, part.positions))
    table_s = np.empty_like(table_k)
    for j, f in enumerate(fits):
        r, sr = f.resistance(all_codes, part.max_code)
        r = np.maximum(r, 1e-3)
        table_k[j] = 1.0 / r
        table_s[j] = sr / r**2
    bench = rig.clock.now() - t0
    meta = {
        "labnet_calibration": 1,
        "rig": rig.name,
        "part": part.name,
        "scale": scale,
        "sweep_codes": sweep.tolist(),
        "base_code": base,
        "groups": groups,
        "noise_v": est_noise,
        "chi2_dof": fit.chi2_dof,
        "bench_s": bench,
        "fits": [{"edge": j, "r_ab_ohm": f.r_ab_ohm, "r_w_ohm": f.r_w_ohm, "inl_ohm": f.inl_ohm,
                  "corrected": f.corrected, "chi2": f.chi2, "dof": f.dof} for j, f in enumerate(fits)],
        "notes": notes,
        "versions": versions(),
    }
    table = CalibrationTable(table_k, table_s, meta)
    return CalibrationResult(table, fits, fit, design, scale, bench, n_states, notes)


def unload(network: Network, k: np.ndarray, data: Sequence[PatternData], r_in_ohm: float) -> list[PatternData]:
    """Undo the meter's loading to first order: V = V_read·(1 + R_th/R_in) at floating nodes,
    with Thevenin resistances R_th (Ω) from conductances ``k`` (S, shape (E,))."""
    from labnet.core.physics import Solver, thevenin_resistance

    out = []
    for d in data:
        solver = Solver(network, k, list(d.held))
        free = [network.nodes[i] for i in solver.free_idx]
        v = d.voltages.copy()
        v[solver.free_idx] *= 1.0 + thevenin_resistance(solver, free) / r_in_ohm
        out.append(PatternData(d.held, v, d.currents))
    return out


def _estimate_noise(rig: Rig, pattern: Mapping[str, float], settle_s: float, n: int = 8) -> float:
    """1σ of one meter reading (V): pooled std of ``n`` repeated scans of one pattern."""
    rig.apply(pattern)
    rig.settle(settle_s)
    v = np.array([rig.measure() for _ in range(n)])
    rig.safe_state()
    sd = np.nanstd(v, axis=0, ddof=1)
    sd = sd[np.isfinite(sd) & (sd > 0)]
    return float(np.sqrt(np.mean(sd**2))) if sd.size else 1e-6


def calibration_columns(network: Network) -> list[str]:
    """Columns of the calibration session CSV (one row per measured pattern)."""
    src = [n for n in network.nodes if n in network.source_channels]
    return (["bench_s", "step", "pattern"] + [f"set_{n}" for n in src] + [f"v_{n}" for n in network.nodes]
            + [f"i_{n}" for n in src] + [f"code_e{j}" for j in range(network.n_edges)])


def run_calibration(proto: CalibrateProtocol, out: str | Path = "sessions", *,
                    session_dir: Path | None = None) -> tuple[CalibrationResult, Path, Rig]:
    """Build the rig, calibrate, write the session folder (session.csv, calibration.csv, calibration_fit.csv)."""
    from labnet.config.rigfile import build_rig
    from labnet.session.folder import new_session_dir

    rig = build_rig(proto.rig, sim_seed=proto.seed)
    folder = session_dir or new_session_dir(out, proto.name)
    header = {"labnet_session": 1, "protocol": {"name": proto.name, "kind": "calibrate", "seed": proto.seed},
              "calibration": asdict(proto.settings), "network": rig.network.to_dict(), "versions": versions()}
    files = {"rig.toml": proto.rig.text}
    if proto.text:
        files["protocol.toml"] = proto.text
    with rig:
        header["rig"] = rig.describe()
        writer = SessionWriter(folder, header, calibration_columns(rig.network), files=files)
        try:
            if proto.rig.initial_code is not None:
                rig.write_codes(np.full(rig.network.n_edges, proto.rig.initial_code))
            res = calibrate(rig, proto.settings, log=writer.write)
        finally:
            writer.close()
    res.table.to_csv(folder / "calibration.csv")
    rows = ["edge,r_ab_ohm,r_w_ohm,inl_ohm,sigma_r_ab_ohm,sigma_r_w_ohm,sigma_inl_ohm,corrected,chi2,dof"]
    for j, f in enumerate(res.fits):
        sd = np.sqrt(np.diag(f.cov))
        vals = [f.r_ab_ohm, f.r_w_ohm, f.inl_ohm, *sd]
        rows.append(f"{j}," + ",".join(repr(float(v)) for v in vals) + f",{int(f.corrected)},{float(f.chi2)!r},{f.dof}")
    (folder / "calibration_fit.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    pts = ["edge,code,conductance_s,sigma_s"]
    for (j, c), kk, ss in zip(res.points.keys, res.points.k, res.points.sigma):
        pts.append(f"{j},{c},{float(kk)!r},{float(ss)!r}")
    (folder / "calibration_points.csv").write_text("\n".join(pts) + "\n", encoding="utf-8")
    return res, folder, rig


def calibration_summary(res: CalibrationResult, folder: Path, rig: Rig) -> str:
    """The end-of-calibration summary (modelled bench time on a simulator)."""
    rel = res.points.sigma / res.points.k
    n_corr = sum(f.corrected for f in res.fits)
    lines = [
        f"labnet calibrate: {rig.name} — {rig.network.n_edges} edges, {len(res.design)} code vectors, "
        f"{res.n_states} meter scans",
        f"  edge groups    {res.table.meta.get('groups')}",
        f"  scale          {res.scale}",
        f"  median 1σ      {np.median(rel) * 100:.3f} % of k (least squares, {len(rel)} edge-code points)",
        f"  LS χ²/dof      {res.points.chi2_dof:.3g}",
        f"  INL correction {n_corr} of {len(res.fits)} edges",
        f"  bench time     {res.bench_s:.1f} s" + (" (modelled)" if rig.simulated else ""),
        f"  table          {folder / 'calibration.csv'}",
    ]
    lines += [f"  note           {n}" for n in res.notes]
    return "\n".join(lines)


__all__ = [
    "CalibrateProtocol",
    "CalibrationResult",
    "CalibrationSettings",
    "CalibrationTable",
    "ConductanceFit",
    "PartFit",
    "calibrate",
    "fit_part",
    "load_calibrate_protocol",
    "run_calibration",
    "solve_conductances",
    "source_patterns",
]
