"""Equilibrium propagation (EP) in silico on a resistor network (issue 15, item 2).

Scellier & Bengio, "Equilibrium propagation: bridging the gap between energy-based models and
backpropagation", Front. Comput. Neurosci. 11, 24 (2017); on resistor networks with current
nudges, Kendall et al., "Training end-to-end analog neural networks with equilibrium
propagation", arXiv:2006.01981 (2020). One step on samples s (inputs x_s, targets t_s):

    free state    V^F: inputs held by voltage sources, outputs free:   L_ff V^F_f = −L_fh V_h
    nudged state  V^N: a current I_o = β (t_o − V^F_o) injected at each output o (outputs *not*
                  clamped):   L_ff V^N_f = −L_fh V_h + E_out I,  i.e.  V^N_f = V^F_f + Z I,
                  Z = L_ff⁻¹ E_out (Ω) — the same matrix as the free state, only the right-hand
                  side differs, so one factorisation serves both (EP's cheapness on a computer)
    update        Δk_e = (α/β) · mean_s [ (ΔV^F_e)² − (ΔV^N_e)² ]

β is a conductance (S), so β·(t − V^F) is a current (A). The nudge current is set from the free
state (what a current source programmed from the measured free output does); the "elastic" nudge
β(t − V^N) has the same β → 0 limit.

**Sign and limit.** With δ = ΔV^N − ΔV^F = β D_f Z (t − o) (linear in β, exact for this nudge),
(ΔV^F)² − (ΔV^N)² = −δ(2ΔV^F + δ), so

    Δk = −α · mean_s [ r_e (2ΔV^F_e + β r_e) ],   r = D_f Z (t − o)  (V/S: δ = β r)

and as β → 0, Δk → −2α ∂C/∂k with C = ½ mean_s Σ_o (V^F_o − t_o)² (V²): since
∂V^F_o/∂k_e = −(D_f Z)_{e,o} ΔV^F_e, ∂C/∂k_e = mean_s Σ_o (t_o − o) (D_f Z)_{e,o} ΔV^F_e. EP descends C
with an error O(β) (``tests/test_insilico_ep.py`` measures it). Δk is computed in this
cancellation-free form, which equals (α/β)[(ΔV^F)² − (ΔV^N)²] exactly.

**Units of α.** Δk must be in S and (ΔV)²/β is in V²/S, so α here is in S²/V² — not coupled
learning's S/V². The two rules coincide for one output when β = η / Z_oo (then V^N = V^C, the
clamped state of coupled learning) and α_EP = α_CL·β/η = α_CL / Z_oo; a coupled-learning α of 5e-3 S/V²
on networks with Z_oo ≈ 1 kΩ corresponds to α_EP ≈ 5e-6 S²/V².

Tap-quantised EP turns Δk into tap moves exactly as coupled learning does (the trainer's
:meth:`~labnet.insilico.trainer.CoupledLearning.apply`: the :class:`labnet.core.rules.Rule`'s
``kind``, ``max_taps``, dead band and ``update_probability``).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from labnet.core.conductance import PartModel
from labnet.core.errors import ConfigError
from labnet.core.network import Network
from labnet.core.rules import Rule
from labnet.core.threads import limited
from labnet.insilico.trainer import CoupledLearning

#: The sweep point's ``formula`` that selects equilibrium propagation.
EP_FORMULA = "ep"


def equilibrium_propagation(dv_free: np.ndarray, dv_nudged: np.ndarray, *, alpha: float, beta: float) -> np.ndarray:
    """EP update Δk (S) = (α/β)[(ΔV^F)² − (ΔV^N)²], same shape as the inputs; a trailing batch
    axis (E, B) is averaged. ``dv_free``/``dv_nudged``: edge drops (V) in the free and the
    nudged state; ``alpha`` in S²/V², ``beta`` the nudge conductance (S, > 0)."""
    g = (np.asarray(dv_free) ** 2 - np.asarray(dv_nudged) ** 2) * (alpha / beta)
    return g.mean(axis=-1) if g.ndim > 1 else g


def check_beta(beta: float, key: str = "beta") -> float:
    """``beta`` as a float, or a one-line :class:`ConfigError` naming ``key`` unless it is finite and > 0 (S)."""
    b = float(beta)
    if not (np.isfinite(b) and b > 0.0):
        raise ConfigError("<code>", key, f"expected a finite nudge conductance > 0 S, got {beta!r}")
    return b


class EquilibriumPropagation(CoupledLearning):
    """Equilibrium propagation in silico on one network: :class:`CoupledLearning`'s solves, its
    continuous and tap-quantised :meth:`apply`, with the clamped state replaced by the nudged one.

    ``beta`` is the nudge conductance β (S, finite, > 0); ``alpha`` is in S²/V² (module
    docstring). Every other keyword is :class:`CoupledLearning`'s (``eta`` is not used; the
    compiled coupled-learning kernel and the lean single-sample path are not used either).
    """

    def __init__(self, network: Network, conductances: np.ndarray | None, inputs: np.ndarray, targets: np.ndarray,
                 *, alpha: float, beta: float, **kwargs: Any) -> None:
        self.beta = check_beta(beta)
        super().__init__(network, conductances, inputs, targets, alpha=alpha, eta=1.0, use_kernel=False, **kwargs)

    @limited
    def gradient(self, samples: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """EP's Δk (S), shape (E,), averaged over ``samples`` (default: all), and their mean free error (V²)."""
        idx = None if samples is None else np.asarray(samples, dtype=np.int64).reshape(-1)
        x, t = (self.inputs, self.targets) if idx is None else (self.inputs[idx], self.targets[idx])
        a, b = self.alpha, self.beta
        if x.shape[0] < self.n_in:  # fewer samples than inputs (allostery): solve for the samples themselves
            g, z = self.responses(x.T)  # g (F, n): free states; z (F, n_out): Z = L_ff⁻¹ E_out (Ω)
            o = g[self.out_pos]
            dv_f = self.d_free @ g + self.d_in @ x.T  # (E, n)
            r = self.d_free @ (z @ (t.T - o))  # δ / β, (E, n)
            return -a * np.mean(r * (2.0 * dv_f + b * r), axis=1), float(np.mean((o.T - t) ** 2))
        g, z = self.responses()
        g_out = g[self.out_pos]  # (n_out, n_in)
        q_f = self.d_free @ g + self.d_in  # ΔV^F = Q_F x, (E, n_in)
        rz = self.d_free @ z  # drops per ampere injected at each output (Ω), (E, n_out)
        # with u = [x; t]: ΔV^F = A u, δ/β = B u; the batch means are quadratic forms in M = mean u uᵀ
        n_out = self.n_out
        amat = np.concatenate([q_f, np.zeros((q_f.shape[0], n_out))], axis=1)
        bmat = np.concatenate([-rz @ g_out, rz], axis=1)
        m = self._moments_all if idx is None else self._moments(idx)
        cross = np.einsum("ej,jk,ek->e", amat, m, bmat)
        sq = np.einsum("ej,jk,ek->e", bmat, m, bmat)
        return -a * (2.0 * cross + b * sq), float(np.mean((x @ g_out.T - t) ** 2))

    def _step(self, samples: np.ndarray | None = None) -> float:
        """One EP step on ``samples`` (default: all); the mean free error (V²) before the update
        (``train`` calls it unwrapped, inside one thread limit)."""
        dk, err = self.gradient(samples)
        self.apply(dk)
        return err

    step = epoch = limited(_step)

    @limited
    def states(self, samples: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Node voltages (V) of the free and the nudged state, each (N, S), for ``samples`` (checks only)."""
        idx = np.arange(self.inputs.shape[0]) if samples is None else np.asarray(samples).reshape(-1)
        g, z = self.responses()
        x, t = self.inputs[idx], self.targets[idx]
        vf_free = g @ x.T
        vn_free = vf_free + z @ (self.beta * (t.T - vf_free[self.out_pos]))
        vf, vn = np.zeros((self.network.n_nodes, len(idx))), np.zeros((self.network.n_nodes, len(idx)))
        in_idx = self.network.indices(self.network.inputs)
        for v, free in ((vf, vf_free), (vn, vn_free)):
            v[self.red.free_idx] = free
            v[in_idx] = x.T
        return vf, vn


class EpPoint(Protocol):
    """What :func:`point_trainer` reads of a sweep point (:class:`labnet.insilico.effects.PointSpec`)."""

    @property
    def alpha(self) -> float: ...
    @property
    def beta_siemens(self) -> float: ...
    @property
    def rule(self) -> str: ...
    @property
    def deadband_siemens(self) -> float: ...
    @property
    def max_taps(self) -> int: ...
    @property
    def update_probability(self) -> float: ...
    @property
    def k_min_siemens(self) -> float: ...
    @property
    def k_max_siemens(self) -> float: ...


class EpTaps(Protocol):
    """Tap-quantised edges (:class:`labnet.insilico.effects.Taps`)."""

    @property
    def model(self) -> PartModel: ...
    @property
    def codes(self) -> np.ndarray: ...
    @property
    def max_code(self) -> int: ...
    @property
    def seed(self) -> int: ...


def point_trainer(net: Network, k0: np.ndarray, x: np.ndarray, t: float, p: EpPoint,
                  taps: EpTaps | None = None) -> EquilibriumPropagation:
    """EP on one allostery sample: inputs ``x`` (V), target ``t`` (V) at the one output; continuous
    from ``k0`` (S) within [k_min, k_max], or on ``taps`` with the point's tap rule."""
    xs, ts = np.asarray(x, dtype=float)[None, :], np.array([[float(t)]])
    if taps is None:
        return EquilibriumPropagation(net, k0, xs, ts, alpha=p.alpha, beta=check_beta(p.beta_siemens, "beta_siemens"),
                                      k_min=p.k_min_siemens, k_max=p.k_max_siemens)
    rule = Rule(kind=p.rule, alpha=p.alpha, deadband_siemens=p.deadband_siemens, max_taps=p.max_taps,
                update_probability=p.update_probability)
    return EquilibriumPropagation(net, None, xs, ts, alpha=p.alpha, beta=check_beta(p.beta_siemens, "beta_siemens"),
                                  rule=rule, model=taps.model, codes=taps.codes, code_range=(0, taps.max_code),
                                  seed=taps.seed)


__all__ = ["EP_FORMULA", "EpPoint", "EpTaps", "EquilibriumPropagation", "check_beta", "equilibrium_propagation",
           "point_trainer"]
