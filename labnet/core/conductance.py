"""Code -> conductance models the engine and the rules use to think in siemens.

The nominal model is the part's datasheet curve; a calibration table (``labnet.experiments.calibration``)
replaces it with what was measured on the bench. Both give, per edge, k(D) and dk/dD.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from labnet.core.parts import PartSpec


class ConductanceModel(Protocol):
    """Per-edge code -> conductance curve."""

    def conductance(self, codes: np.ndarray) -> np.ndarray:
        """Conductances (S), shape (E,), of the edges at integer ``codes``, shape (E,)."""

    def slope(self, codes: np.ndarray) -> np.ndarray:
        """dk/dD (S per tap), shape (E,): the change of conductance for one tap up."""


class PartModel:
    """R(D) = D/N·R_AB + R_W per edge, with per-edge R_AB and R_W (Ω), shape (E,) or scalars.

    With the part's nominal values this is the *nominal* model; with fitted values it is
    what a calibration recovered.
    """

    def __init__(self, part: PartSpec, n_edges: int, r_ab_ohm: np.ndarray | float | None = None,
                 r_w_ohm: np.ndarray | float | None = None) -> None:
        self.part = part
        self.r_ab_ohm = np.broadcast_to(np.asarray(part.r_ab_ohm if r_ab_ohm is None else r_ab_ohm, float), (n_edges,))
        self.r_w_ohm = np.broadcast_to(np.asarray(part.r_w_ohm if r_w_ohm is None else r_w_ohm, float), (n_edges,))

    def conductance(self, codes: np.ndarray) -> np.ndarray:
        return self.part.conductance(codes, self.r_ab_ohm, self.r_w_ohm)

    def slope(self, codes: np.ndarray) -> np.ndarray:
        r = self.part.resistance(codes, self.r_ab_ohm, self.r_w_ohm)
        return -(self.r_ab_ohm / self.part.max_code) / r**2
