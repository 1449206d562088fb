"""Local learning rules: pure per-edge functions.

Every function here is element-wise over edges: edge j's result depends only on edge j's own
voltage drops (free ΔV_j^F, clamped ΔV_j^C), its present code or conductance and its own
code -> conductance curve. A rule never sees another edge — that is what makes it physical.

Coupled learning (Stern et al., PRX 11, 021045, 2021):

    Δk_j = (α/η) [ (ΔV_j^F)² − (ΔV_j^C)² ]          (S)

The power-efficient variant (Stern, Dillavou, Jayaraman, Durian & Liu, "Training self-learning
circuits for power-efficient solutions", APL Mach. Learn. 2, 016114, 2024) adds a penalty on the
free state's dissipation, weight λ (0 ≤ λ ≤ 1; λ = 0 is coupled learning):

    Δk_j = (α/η) [ (1 − λ) (ΔV_j^F)² − (ΔV_j^C)² ]

Desynchronous updates (Wycoff, Dillavou, Stern, Liu & Durian, "Desynchronous learning in a
physics-driven learning network", J. Chem. Phys. 156, 144903, 2022): at each step every edge
applies its update with probability p, independently of the others (p = 1: all at once).

On a digipot the change is quantised to whole taps. Conductance falls as the code rises
(R = D/N·R_AB + R_W), so the tap step has the sign of Δk / (dk/dD).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labnet.core.update_order import order_step


def coupled_learning(dv_free: np.ndarray, dv_clamped: np.ndarray, *, alpha: float, eta: float) -> np.ndarray:
    """Continuous coupled-learning update Δk (S), same shape as the inputs.

    Parameters
    ----------
    dv_free, dv_clamped : array, shape (E,) or (E, B)
        Voltage drop (V) across each edge in the free and in the clamped state. With a trailing
        batch axis the update is averaged over the batch.
    alpha : float
        Learning rate (S/V²).
    eta : float
        Nudge amplitude (dimensionless, 0 < η ≤ 1).
    """
    g = (np.asarray(dv_free) ** 2 - np.asarray(dv_clamped) ** 2) * (alpha / eta)
    return g.mean(axis=-1) if g.ndim > 1 else g


def power_efficient(dv_free: np.ndarray, dv_clamped: np.ndarray, *, alpha: float, eta: float,
                    lam: float) -> np.ndarray:
    """Power-efficient coupled learning Δk (S): (α/η)[(1 − λ)(ΔV^F)² − (ΔV^C)²], same shapes as
    :func:`coupled_learning` (a trailing batch axis is averaged). ``lam`` λ in [0, 1]."""
    g = ((1.0 - lam) * np.asarray(dv_free) ** 2 - np.asarray(dv_clamped) ** 2) * (alpha / eta)
    return g.mean(axis=-1) if g.ndim > 1 else g


def equilibrium_propagation(dv_free: np.ndarray, dv_nudged: np.ndarray, *, alpha: float, beta: float) -> np.ndarray:
    """Equilibrium propagation Δk (S): (α/β)[(ΔV^F)² − (ΔV^N)²] (Scellier & Bengio 2017; Kendall et
    al. 2020 for resistor networks), the nudged state with a current β(V_T − V^F) injected at each
    output (β in S, α in S²/V²); same shapes as :func:`coupled_learning`. As β → 0 it descends
    C = ½Σ(V_o − V_T)² (Δk → −2α ∂C/∂k); for one output at β = η/Z_oo it equals coupled learning
    with α_CL = α·η/β."""
    g = (np.asarray(dv_free) ** 2 - np.asarray(dv_nudged) ** 2) * (alpha / beta)
    return g.mean(axis=-1) if g.ndim > 1 else g


def desynchronise(step: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Keep each edge's update with probability ``p`` (independent draws), zero elsewhere; shape of
    ``step``. ``p = 1`` returns ``step`` unchanged and draws nothing."""
    if p >= 1.0:
        return step
    return np.where(rng.random(np.shape(step)) < p, step, 0).astype(np.asarray(step).dtype)


def clip_conductance(k: np.ndarray, k_min: np.ndarray | float, k_max: np.ndarray | float) -> np.ndarray:
    """Conductances clipped to what each part can do, [k_min, k_max] (S)."""
    return np.clip(k, k_min, k_max)


def taps_wanted(dk: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """The continuous tap change that would realise Δk, Δk / (dk/dD) (taps, float)."""
    return np.asarray(dk) / np.asarray(slope)


def sign_step(dk: np.ndarray, slope: np.ndarray, *, deadband: float) -> np.ndarray:
    """Sign rule: one tap in the direction of Δk where |Δk| > ``deadband`` (S), else none.

    Returns integer tap changes in {−1, 0, +1}, shape (E,).
    """
    dk = np.asarray(dk)
    step = np.sign(dk) * np.sign(slope)
    return np.where(np.abs(dk) > deadband, step, 0.0).astype(np.int64)


def stochastic_round(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Round each element down or up with probability given by its fractional part.

    Unbiased: E[result] = x. Integer array of x's shape.
    """
    x = np.asarray(x, dtype=float)
    lo = np.floor(x)
    return (lo + (rng.random(x.shape) < (x - lo))).astype(np.int64)


def stochastic_step(dk: np.ndarray, slope: np.ndarray, rng: np.random.Generator, *, max_taps: int) -> np.ndarray:
    """Tap change by stochastic rounding of Δk/(dk/dD), limited to ±``max_taps``; shape (E,)."""
    return np.clip(stochastic_round(taps_wanted(dk, slope), rng), -max_taps, max_taps)


def nearest_step(dk: np.ndarray, slope: np.ndarray, *, max_taps: int) -> np.ndarray:
    """Tap change by rounding Δk/(dk/dD) to the nearest integer, limited to ±``max_taps``."""
    return np.clip(np.rint(taps_wanted(dk, slope)), -max_taps, max_taps).astype(np.int64)


def apply_step(codes: np.ndarray, step: np.ndarray, code_min: int, code_max: int) -> np.ndarray:
    """New codes, codes + step clipped to [code_min, code_max]; shape (E,)."""
    return np.minimum(np.maximum(np.asarray(codes, dtype=np.int64) + step, code_min), code_max)  # = np.clip


RULE_KINDS = ("sign", "stochastic", "coupled")
#: What Δk is computed from: coupled learning, or its power-efficient variant.
RULE_FORMULAS = ("coupled", "power_efficient")
#: formulas of a bench rule (``[rule] formula``): these and equilibrium propagation
BENCH_FORMULAS = (*RULE_FORMULAS, "ep")


@dataclass(frozen=True)
class Rule:
    """A configured learning rule (from a protocol's ``[rule]`` table).

    Attributes
    ----------
    kind : {"sign", "stochastic", "coupled"}
        ``sign``: one tap where |Δk| exceeds ``deadband_siemens``; ``stochastic``: stochastic rounding
        of Δk to taps; ``coupled``: nearest-tap rounding on a rig, continuous Δk in silico.
    eta : float
        Nudge amplitude η.
    alpha : float
        Learning rate α (S/V²).
    deadband_siemens : float
        Dead band of the sign rule (S).
    max_taps : int
        Largest tap step per update.
    formula : {"coupled", "power_efficient", "ep"}
        Δk of coupled learning, of its power-efficient variant with weight ``power_lambda``, or of
        equilibrium propagation (outputs nudged by currents β(V_T − V^F), not clamped).
    power_lambda : float
        λ of the power-efficient rule (0 ≤ λ ≤ 1).
    beta_siemens : float
        β of equilibrium propagation (S); α is then in S²/V².
    update_probability : float
        Desynchronous updates: each edge applies its tap change with this probability per step.
    update_order : {"simultaneous", "random"}
        ``random``: edges move in a random order, one of ``update_groups`` parts per step
        (:mod:`labnet.core.update_order`, Wycoff et al. 2022); ``order_seed`` seeds the permutations.
    """

    kind: str = "sign"
    eta: float = 0.5
    alpha: float = 1e-3
    deadband_siemens: float = 0.0
    max_taps: int = 4
    formula: str = "coupled"
    power_lambda: float = 0.0
    beta_siemens: float = 0.0
    update_probability: float = 1.0
    update_order: str = "simultaneous"
    update_groups: int = 1
    order_seed: int = 0

    def dk(self, dv_free: np.ndarray, dv_clamped: np.ndarray) -> np.ndarray:
        """Δk (S) per edge for this rule's formula, α and η."""
        if self.formula == "ep":
            return equilibrium_propagation(dv_free, dv_clamped, alpha=self.alpha, beta=self.beta_siemens)
        if self.formula == "power_efficient":
            return power_efficient(dv_free, dv_clamped, alpha=self.alpha, eta=self.eta, lam=self.power_lambda)
        return coupled_learning(dv_free, dv_clamped, alpha=self.alpha, eta=self.eta)

    @property
    def dk_scale(self) -> float:
        """Δk per unit of D = (ΔV^F)² − (ΔV^C)² (S/V²): α/η for coupled learning, α/β for
        equilibrium propagation (the power-efficient rule's D weighs ΔV^F² by 1 − λ)."""
        return self.alpha / (self.beta_siemens if self.formula == "ep" else self.eta)

    def nudge(self, free_out: np.ndarray, target: np.ndarray) -> np.ndarray:
        """The second state's output setpoints: clamp voltages V_F + η(V_T − V_F) (V), or for
        equilibrium propagation the nudge currents β(V_T − V_F) (A)."""
        if self.formula == "ep":
            return self.beta_siemens * (target - free_out)
        return free_out + self.eta * (target - free_out)

    def step(self, dk: np.ndarray, slope: np.ndarray, rng: np.random.Generator, index: int = 1) -> np.ndarray:
        """Integer tap changes, shape (E,), realising Δk on parts with local slope dk/dD (each kept
        with probability ``update_probability``; at training step ``index`` only the edges the
        update order lets move)."""
        if self.kind == "sign":
            taps = sign_step(dk, slope, deadband=self.deadband_siemens)
        elif self.kind == "stochastic":
            taps = stochastic_step(dk, slope, rng, max_taps=self.max_taps)
        else:
            taps = nearest_step(dk, slope, max_taps=self.max_taps)
        taps = order_step(taps, self.update_order, index, self.update_groups, self.order_seed)
        return desynchronise(taps, self.update_probability, rng)
