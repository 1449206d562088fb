"""Analysis of a resistor network's physical Hessian: soft modes, task alignment, dimension.

Pure functions over numpy arrays. Conductances are in siemens (S), voltages in volts (V),
eigenvalues of the reduced Laplacian in siemens, forces in amperes (A).

The physical Hessian
--------------------
For a flow/resistor network the energy (dissipated power / 2) is quadratic in the node
voltages with Hessian L = Δᵀ diag(k) Δ (Δ: edge–node incidence matrix, shape (E, N)).
With the voltages of some nodes h held by sources (ground, inputs), the free nodes f obey

    H V_f = F,    H = L_ff (the *reduced Hessian*),    F = −L_fh V_h,

so F is the current the held nodes push into the free ones (the "input force") and
V_f = H⁻¹F = Σ_n v_n (f_n / λ_n) with eigenpairs (λ_n, v_n) of H and f_n = F·v_n.

Task alignment
--------------
A scalar output functional A (shape (F,), e.g. e_o for one output node o, or a weighted sum
of output nodes) reads the response A·V_f = Σ_n c_n with the mode shares

    c_n = f_n a_n / λ_n,      a_n = A·v_n.

Training on an allosteric task moves the response into the softest modes: the *share*
c_0 / Σ_n c_n of the softest mode grows. The raw overlaps |f_0|, |a_0| need not grow.

Dimension and susceptibility
----------------------------
Random forces with iid unit-variance components on the free nodes give responses
x = H⁻¹F whose covariance H⁻² has eigenvalues λ_n⁻². Its participation ratio is

    D_eff = (Σ_n λ_n⁻²)² / Σ_n λ_n⁻⁴      (1 ≤ D_eff ≤ number of free nodes),

and the susceptibility (rms response per unit rms force) is ḡ = sqrt(Σ_n λ_n⁻²).

**The talk's factor 1/3.** The talk (Balasubramanian, "The Physical Effects of Learning",
2024) writes D_eff = (Σ λ⁻²)² / (3 Σ λ⁻⁴). It builds the ratio from moments of the
per-mode projections p_n = v_n·x = f_n/λ_n of the response to one Gaussian random force:
Σ_n ⟨p_n²⟩ = Σ λ⁻², but Σ_n ⟨p_n⁴⟩ = 3 Σ λ⁻⁴ because a Gaussian's fourth moment is three
times its squared variance (⟨f⁴⟩ = 3⟨f²⟩²). Using second moments only — the eigenvalues
λ⁻² of the response covariance, which is what a probe measures — gives the participation
ratio above, without the 3. The two differ by exactly that constant factor
(:func:`talk_deff` = :func:`model_deff` / 3), so every trend (D_eff falls with training)
is the same; labnet reports the covariance participation ratio because it is 1 for a
single dominant mode and equals the number of modes when all are equal, and because the
probe's *measured* D_eff (participation ratio of the empirical covariance) estimates
exactly it.

A voltage-source bench cannot apply independent forces to every free node: it drives some
nodes with random voltages. Then the force covariance is L_fh Σ_V L_hf, the response
covariance H⁻¹ L_fh Σ_V L_hf H⁻¹ (:func:`probe_covariance_model`), and that is the model a
probe's measurement is compared with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from labnet.core.network import Network

#: Free-node count up to which eigenpairs are computed densely (all of them).
DENSE_EIG_MAX = 1500


@dataclass(frozen=True)
class Reduced:
    """The reduced Hessian of a network with some nodes held.

    Attributes
    ----------
    h : array (F, F) or sparse matrix
        L_ff in S: dense when F ≤ :data:`DENSE_EIG_MAX`, CSR otherwise.
    l_fh : sparse matrix (F, Hn)
        Coupling of free to held nodes (S).
    free_idx, held_idx : int arrays (F,), (Hn,)
        Positions in ``network.nodes``; ``held_idx`` lists ground first, then ``held`` order.
    """

    h: np.ndarray | sp.csr_matrix
    l_fh: sp.csr_matrix
    free_idx: np.ndarray
    held_idx: np.ndarray

    @property
    def dense(self) -> bool:
        return isinstance(self.h, np.ndarray)


def reduced_hessian(network: Network, conductances: np.ndarray, held: Sequence[str], *,
                    dense: bool | None = None) -> Reduced:
    """L_ff (the Laplacian on the nodes not held) and L_fh for conductances (S), shape (E,).

    ``held`` names the nodes whose voltage is imposed; ground is always held (added first).
    """
    names = list(dict.fromkeys([network.ground, *held]))
    held_idx = network.indices(names)
    mask = np.ones(network.n_nodes, dtype=bool)
    mask[held_idx] = False
    free_idx = np.flatnonzero(mask)
    lap = network.laplacian(np.asarray(conductances, dtype=float))
    l_ff = lap[free_idx][:, free_idx].tocsr()
    l_fh = lap[free_idx][:, held_idx].tocsr()
    use_dense = free_idx.size <= DENSE_EIG_MAX if dense is None else dense
    return Reduced(l_ff.toarray() if use_dense else l_ff, l_fh, free_idx, held_idx)


def eigenmodes(h: np.ndarray | sp.spmatrix, n_modes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of the reduced Hessian, ascending.

    Parameters
    ----------
    h : array (F, F) or sparse matrix
        Symmetric positive definite (S).
    n_modes : int, optional
        Number of lowest modes. Dense input: all modes when None. Sparse input: required;
        found by shift-invert Lanczos around 0 (``eigsh(sigma=0)``), which factorises h once.

    Returns
    -------
    lam : array (M,)
        Eigenvalues (S), ascending.
    vecs : array (F, M)
        Orthonormal eigenvectors as columns; the sign of each is fixed so that its largest
        component is positive.
    """
    if sp.issparse(h) and not isinstance(h, np.ndarray):  # (never an ndarray; narrows the type)
        f = h.shape[0]
        if n_modes is None:
            raise ValueError("sparse eigenmodes: give n_modes (the number of lowest modes)")
        if n_modes >= f - 1:
            return eigenmodes(h.toarray(), n_modes)
        lam, vecs = spla.eigsh(h.tocsc(), k=n_modes, sigma=0.0, which="LM")
    else:
        lam, vecs = la.eigh(np.asarray(h), check_finite=False)
        if n_modes is not None:
            lam, vecs = lam[:n_modes], vecs[:, :n_modes]
    order = np.argsort(lam)
    lam, vecs = lam[order], vecs[:, order]
    big = np.argmax(np.abs(vecs), axis=0)
    signs = np.sign(vecs[big, np.arange(vecs.shape[1])])
    signs[signs == 0] = 1.0
    return lam, vecs * signs


def input_force(l_fh: sp.spmatrix | np.ndarray, v_held: np.ndarray) -> np.ndarray:
    """F = −L_fh·V_h (A): what the held nodes push into the free ones; (F,) or (F, B) for V_h (Hn,) or (Hn, B)."""
    return -(l_fh @ np.asarray(v_held, dtype=float))


def output_functional(network: Network, free_idx: np.ndarray, outputs: Sequence[str],
                      weights: np.ndarray | None = None) -> np.ndarray:
    """A, shape (F,): Σ_o w_o e_o over the output nodes (which must be free); unit weights by default."""
    pos = -np.ones(network.n_nodes, dtype=np.int64)
    pos[free_idx] = np.arange(free_idx.size)
    p = pos[network.indices(outputs)]
    if np.any(p < 0):
        raise ValueError(f"outputs {list(outputs)} must all be free nodes")
    a = np.zeros(free_idx.size)
    w = np.ones(len(outputs)) if weights is None else np.asarray(weights, dtype=float)
    np.add.at(a, p, w)
    return a


def mode_shares(lam: np.ndarray, vecs: np.ndarray, force: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projections and each mode's share of the output response.

    Parameters
    ----------
    lam : (M,) eigenvalues (S); vecs : (F, M) eigenvectors; force : (F,) input force F (A);
    a : (F,) output functional A.

    Returns
    -------
    f : (M,) f_n = F·v_n (A); a_n : (M,) A·v_n; c : (M,) c_n = f_n a_n / λ_n (V).
    Over all modes Σ c_n = A·H⁻¹F, the output's response to the input.
    """
    f = vecs.T @ force
    an = vecs.T @ a
    return f, an, f * an / lam


def model_deff(lam: np.ndarray) -> float:
    """Participation ratio of the response covariance for isotropic random forces: (Σλ⁻²)²/Σλ⁻⁴."""
    w = np.asarray(lam, dtype=float) ** -2.0
    return float(w.sum() ** 2 / np.sum(w**2))


def talk_deff(lam: np.ndarray) -> float:
    """The talk's D_eff = (Σλ⁻²)² / (3 Σλ⁻⁴) = :func:`model_deff` / 3 (see the module docstring)."""
    return model_deff(lam) / 3.0


def model_gbar(lam: np.ndarray) -> float:
    """Susceptibility ḡ = sqrt(Σλ⁻²) (Ω = V/A): rms response per unit rms random force."""
    return float(np.sqrt(np.sum(np.asarray(lam, dtype=float) ** -2.0)))


def participation_ratio(cov: np.ndarray) -> float:
    """(tr C)² / tr(C²) of a covariance matrix C (D, D): its eigenvalues' participation ratio."""
    c = np.asarray(cov, dtype=float)
    tr = np.trace(c)
    tr2 = float(np.sum(c * c.T))
    return float(tr**2 / tr2) if tr2 > 0 else float("nan")


def empirical_covariance(x: np.ndarray) -> np.ndarray:
    """Sample covariance (unbiased) of responses x, shape (M, D) (M samples of D nodes) -> (D, D)."""
    x = np.asarray(x, dtype=float)
    xc = x - x.mean(axis=0)
    return xc.T @ xc / max(x.shape[0] - 1, 1)


def transfer_matrix(network: Network, conductances: np.ndarray, drive: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Linear map from driven-node voltages to free-node voltages, T = −L_ff⁻¹ L_fd.

    Ground and the ``drive`` nodes are held (ground at 0 V). Returns T, shape (F, len(drive)),
    and the free-node positions ``free_idx`` (F,) in ``network.nodes``.
    """
    if network.ground in drive or len(set(drive)) != len(drive):
        raise ValueError(f"drive nodes {list(drive)} must be distinct and exclude ground")
    red = reduced_hessian(network, conductances, drive)
    l_fd = red.l_fh[:, 1:].toarray()  # column 0 is ground (0 V)
    if isinstance(red.h, np.ndarray):  # red.dense, narrowed for the type checker
        t = -la.solve(red.h, l_fd, assume_a="pos")
    else:
        t = -spla.splu(red.h.tocsc()).solve(l_fd)
    return t, red.free_idx


def probe_covariance_model(network: Network, conductances: np.ndarray, drive: Sequence[str],
                           v_cov: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Model covariance of free-node responses to random voltages at ``drive`` nodes.

    ``v_cov`` is the covariance of the applied voltages (V²): a scalar σ² (iid) or a
    (D, D) matrix. Returns C = T Σ_V Tᵀ, shape (F, F) in V², and ``free_idx``.
    """
    t, free_idx = transfer_matrix(network, conductances, drive)
    sv = np.asarray(v_cov, dtype=float)
    sv = sv * np.eye(len(drive)) if sv.ndim == 0 else sv
    return t @ sv @ t.T, free_idx


@dataclass(frozen=True)
class TaskModes:
    """The soft-mode picture of a network on a task (see :func:`task_modes`).

    Attributes
    ----------
    lam : (M,) eigenvalues (S), ascending; f, a : (M,) projections; c : (M,) mode shares (V).
    response : float
        A·H⁻¹F (V): the output functional's free-state response (= Σ c over all modes).
    share_soft : float
        c_0 / response: the softest mode's share of the task response.
    abs_share_soft : float
        |c_0| / Σ|c_n|: the same without cancellations.
    deff, gbar : float
        :func:`model_deff` and :func:`model_gbar` of ``lam``.
    """

    lam: np.ndarray
    f: np.ndarray
    a: np.ndarray
    c: np.ndarray
    response: float
    share_soft: float
    abs_share_soft: float
    deff: float
    gbar: float

    def share(self, n: int) -> float:
        """Share of the task response carried by the n softest modes, Σ_{m<n} c_m / response."""
        return float(np.sum(self.c[:n]) / self.response) if self.response else float("nan")


def task_modes(network: Network, conductances: np.ndarray, inputs_v: Mapping[str, float] | np.ndarray,
               output_weights: np.ndarray | None = None) -> TaskModes:
    """Eigenmodes of the free-state Hessian and their alignment with the task.

    The free state holds ground and the network's inputs (at ``inputs_v``: a mapping node -> V
    or an array in ``network.inputs`` order); the outputs float. When the inputs are driven by
    current sources (``network.current_channels``; ``inputs_v`` then holds their currents, A) they
    are forces, not held voltages: H is the Laplacian over every non-ground node and F the
    injected currents (the talk's setting). ``output_weights`` (n_out,)
    define A = Σ_o w_o e_o (default: all ones; for several outputs a natural choice is the
    target vector divided by its norm). Dense (all modes) for small networks; for large ones
    the 50 lowest modes by shift-invert, and D_eff, ḡ from those (they dominate both sums).
    """
    if isinstance(inputs_v, Mapping):
        vin = np.array([float(inputs_v[n]) for n in network.inputs])
    else:
        vin = np.asarray(inputs_v, dtype=float)
    if any(n in network.current_channels for n in network.inputs):  # force inputs
        red = reduced_hessian(network, conductances, [])
        pos = {int(i): j for j, i in enumerate(red.free_idx)}
        force = np.zeros(red.free_idx.size)
        force[[pos[network.index[n]] for n in network.inputs]] = vin
    else:
        red = reduced_hessian(network, conductances, list(network.inputs))
        force = input_force(red.l_fh, np.concatenate([[0.0], vin]))
    a = output_functional(network, red.free_idx, list(network.outputs), output_weights)
    lam, vecs = eigenmodes(red.h, None if red.dense else min(50, red.h.shape[0] - 2))
    f, an, c = mode_shares(lam, vecs, force, a)
    if isinstance(red.h, np.ndarray):  # red.dense
        response = float(np.sum(c))
    else:
        response = float(a @ spla.splu(red.h.tocsc()).solve(force))
    return TaskModes(
        lam=lam, f=f, a=an, c=c, response=response,
        share_soft=float(c[0] / response) if response else float("nan"),
        abs_share_soft=float(abs(c[0]) / np.sum(np.abs(c))),
        deff=model_deff(lam), gbar=model_gbar(lam),
    )


__all__ = [
    "DENSE_EIG_MAX",
    "Reduced",
    "TaskModes",
    "eigenmodes",
    "empirical_covariance",
    "input_force",
    "mode_shares",
    "model_deff",
    "model_gbar",
    "output_functional",
    "participation_ratio",
    "probe_covariance_model",
    "reduced_hessian",
    "talk_deff",
    "task_modes",
    "transfer_matrix",
]
