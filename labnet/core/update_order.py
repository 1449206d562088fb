"""In which order edges apply their updates: all at once, or in random order.

Desynchronous learning (Wycoff, Dillavou, Stern, Liu & Durian, "Desynchronous learning in a
physics-driven learning network", J. Chem. Phys. 156, 144903 (2022)) lets edges update without a
global clock. Besides independent per-edge draws (:func:`labnet.core.rules.desynchronise`), labnet
offers a *random order*: each sweep of ``groups`` steps draws a fresh random permutation of the
edges and splits it into ``groups`` near-equal parts; step t of the sweep lets only part t move.
Every edge therefore updates exactly once per sweep, at a random time within it.

The permutation of sweep s is ``default_rng([seed, 13, s]).permutation(E)``: a pure function of
(seed, step), so a resumed run continues the same order with no generator state to checkpoint.
"""

from __future__ import annotations

import numpy as np

#: ``[rule] update_order`` values.
UPDATE_ORDERS = ("simultaneous", "random")


def moving_edges(n_edges: int, step: int, groups: int, seed: int) -> np.ndarray:
    """Boolean mask (E,) of the edges allowed to move at training step ``step`` (1-based, as the
    engine counts). ``groups`` = 1 lets every edge move every step."""
    if groups <= 1:
        return np.ones(n_edges, dtype=bool)
    sweep, t = divmod(step - 1, groups)
    perm = np.random.default_rng([seed, 13, sweep]).permutation(n_edges)
    mask = np.zeros(n_edges, dtype=bool)
    mask[np.array_split(perm, groups)[t]] = True
    return mask


def order_step(taps: np.ndarray, order: str, step: int, groups: int, seed: int) -> np.ndarray:
    """``taps`` (E,) with the edges that may not move at ``step`` zeroed (``order = "random"``);
    unchanged for ``"simultaneous"``."""
    if order != "random":
        return taps
    return np.where(moving_edges(len(taps), step, groups, seed), taps, 0).astype(np.asarray(taps).dtype)
