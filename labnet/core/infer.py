"""What was it trained for? Ranking a network's task inputs and outputs from random-probe responses.

What the estimator knows (and nothing else): a probe drove the ``D`` nodes ``drive`` with
random voltages v_m (M, D) and measured the ``F`` other non-ground nodes ``measured``,
responses x_m (M, F). Nothing about roles. The task's inputs are assumed among the driven nodes
and its outputs among the measured ones (on the 16-edge rig, ``protocols/probe.toml`` drives the
inputs n1, n2 and the decoys n5, n7); the candidates for inputs are the D driven nodes, for
outputs the F measured nodes, so ranking at random puts a given true node in the top k with
probability k/D (inputs) or k/F (outputs) — :func:`chance`.

1. The transfer matrix T (F, D), x = T v + x₀, by least squares over the M patterns
   (:func:`fit_transfer`; exact for a linear network, M ≥ D + 1).
2. Coupled learning changes the conductances so that the *outputs' response to the inputs*
   moves toward the target. To first order the change of the transfer, ΔT = T_after − T_before
   (two probes with the same drive set: before and after training), is dominated by that
   change: its leading singular pair (u₁ over measured nodes, w₁ over driven nodes) is the task's
   output–input direction. Outputs are ranked by |u₁|, inputs by |w₁| (:func:`infer_roles`).
3. Without a probe before training, the same ranking on T itself (the leading principal
   direction of the response covariance C = T Σ_V Tᵀ ∝ T Tᵀ and its drive loadings). Measured
   in silico (``benchmarks/infer_ensemble.py``) this is at chance: a trained network's leading
   response direction is set by the geometry (nodes near the drives), not by the task.

Units: voltages in V, T dimensionless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def fit_transfer(applied: np.ndarray, responses: np.ndarray) -> np.ndarray:
    """Least-squares transfer T (F, D) with offset: responses (M, F) ≈ applied (M, D) Tᵀ + x₀.

    Raises ValueError unless M ≥ D + 1 and the shapes agree.
    """
    a, r = np.asarray(applied, dtype=float), np.asarray(responses, dtype=float)
    if a.ndim != 2 or r.ndim != 2 or a.shape[0] != r.shape[0]:
        raise ValueError(f"applied (M, D) and responses (M, F) must share M; got {a.shape} and {r.shape}")
    if a.shape[0] < a.shape[1] + 1:
        raise ValueError(f"need at least D + 1 = {a.shape[1] + 1} patterns, got {a.shape[0]}")
    design = np.column_stack([a, np.ones(a.shape[0])])
    coef, *_ = np.linalg.lstsq(design, r, rcond=None)
    return np.asarray(coef[:-1].T)


@dataclass(frozen=True)
class Inference:
    """Role ranking of one network.

    Attributes
    ----------
    inputs : driven nodes, most likely task input first (D,)
    outputs : measured nodes, most likely task output first (F,)
    input_score, output_score : |w₁| (D,) and |u₁| (F,) in the order of ``inputs``/``outputs``
    share : σ₁² / Σσ²: the leading direction's share of the (change of the) transfer
    method : ``"change"`` (ΔT from probes before and after) or ``"single"`` (T alone)
    """

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    input_score: np.ndarray
    output_score: np.ndarray
    share: float
    method: str


def infer_roles(t_after: np.ndarray, drive: Sequence[str], measured: Sequence[str],
                t_before: np.ndarray | None = None) -> Inference:
    """Rank the driven nodes as task inputs and the measured nodes as task outputs.

    ``t_after`` (F, D) the trained network's transfer, ``t_before`` (F, D) the same probe's
    transfer before training (optional; see the module docstring). Raises ValueError on shapes.
    """
    t1 = np.asarray(t_after, dtype=float)
    if t1.shape != (len(measured), len(drive)):
        raise ValueError(f"transfer shape {t1.shape} is not (measured {len(measured)}, drive {len(drive)})")
    if t_before is not None and np.shape(t_before) != t1.shape:
        raise ValueError(f"before/after transfers differ in shape: {np.shape(t_before)} vs {t1.shape}")
    m = t1 if t_before is None else t1 - np.asarray(t_before, dtype=float)
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    uo, wi = np.abs(u[:, 0]), np.abs(vt[0])
    oo, oi = np.argsort(-uo, kind="stable"), np.argsort(-wi, kind="stable")
    share = float(s[0] ** 2 / np.sum(s**2)) if np.sum(s**2) > 0 else float("nan")
    return Inference(tuple(drive[i] for i in oi), tuple(measured[i] for i in oo), wi[oi], uo[oo], share,
                     "single" if t_before is None else "change")


def topk_hits(ranking: Sequence[str], truth: Sequence[str], k: int) -> float:
    """Fraction of the true nodes ``truth`` found among the first ``k`` of ``ranking``."""
    if not truth:
        raise ValueError("no true nodes to score")
    top = set(ranking[:k])
    return sum(t in top for t in truth) / len(truth)


def chance(k: int, n_candidates: int) -> float:
    """Probability that a given true node is in the top k of a uniformly random ranking: k/n."""
    if not 0 < k <= n_candidates:
        raise ValueError(f"need 0 < k <= n_candidates, got k={k}, n={n_candidates}")
    return k / n_candidates


__all__ = ["Inference", "chance", "fit_transfer", "infer_roles", "topk_hits"]
