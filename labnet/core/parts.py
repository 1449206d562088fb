"""Digital potentiometer parts: taps, end-to-end resistance, wiper resistance, ratings.

A digipot used as a rheostat (wiper to one end) has, at code D of N+1 positions,

    R(D) = D / N · R_AB + R_W          (Ω)

and conductance k(D) = 1 / R(D) (S). Real parts deviate from the nominal R_AB by their
tolerance (±20 % for X9C/MCP41xx) — the simulator draws that per part; calibration measures it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from labnet.core.errors import ConfigError

#: How far (K) the bench's temperature may be from the 25 °C at which R_AB is specified: a lab
#: between 10 °C and 40 °C. It widens the conductance box by tempco × this (0.45 % for X9C).
BENCH_DELTA_T_K = 15.0


@dataclass(frozen=True)
class PartSpec:
    """Datasheet facts of one digipot part.

    Attributes
    ----------
    name : str
    positions : int
        Number of wiper positions; codes run 0 … positions−1.
    r_ab_ohm : float
        Nominal end-to-end resistance (Ω).
    r_w_ohm : float
        Typical wiper resistance (Ω).
    tolerance : float
        Relative tolerance of R_AB (0.2 = ±20 %).
    readback : bool
        The part can report its wiper code.
    nonvolatile : bool
        The part can store its code (EEPROM / OTP); training never stores.
    interface : str
        ``"updown"`` (X9C, AD5220), ``"spi"`` (MCP41xx, AD5206) or ``"i2c"`` (AD5272).
    max_current_a : float
        Rated wiper current (A).
    tempco_ppm_per_k : float
        Temperature coefficient of R_AB (ppm/K).
    power_up_code : int
        Wiper code after power-up or reset (volatile parts: mid-scale; X9C: last stored).
    r_w_max_ohm : float
        Largest wiper resistance the datasheet allows (Ω); its smallest is taken as 0 Ω (no
        datasheet gives a minimum).
    inl_taps : float
        Largest absolute (integral) non-linearity in taps (the datasheets' "absolute linearity"
        or rheostat-mode R-INL, in MI / LSB).
    """

    name: str
    positions: int
    r_ab_ohm: float
    r_w_ohm: float
    tolerance: float
    readback: bool
    nonvolatile: bool
    interface: str
    max_current_a: float
    tempco_ppm_per_k: float
    power_up_code: int
    r_w_max_ohm: float = math.inf
    inl_taps: float = 1.0

    @property
    def max_code(self) -> int:
        return self.positions - 1

    def resistance(self, codes: np.ndarray, r_ab_ohm: np.ndarray | float | None = None,
                   r_w_ohm: np.ndarray | float | None = None) -> np.ndarray:
        """R(D) = D/N·R_AB + R_W in Ω for integer codes, broadcast over arrays."""
        r_ab = self.r_ab_ohm if r_ab_ohm is None else r_ab_ohm
        r_w = self.r_w_ohm if r_w_ohm is None else r_w_ohm
        return np.asarray(codes, dtype=float) / self.max_code * r_ab + r_w

    def conductance(self, codes: np.ndarray, r_ab_ohm: np.ndarray | float | None = None,
                    r_w_ohm: np.ndarray | float | None = None) -> np.ndarray:
        """k(D) = 1/R(D) in S."""
        return 1.0 / self.resistance(codes, r_ab_ohm, r_w_ohm)

    def conductance_box(self, codes: np.ndarray, delta_t_k: float = BENCH_DELTA_T_K) -> tuple[np.ndarray, np.ndarray]:
        """Smallest and largest conductance (S), each shaped like ``codes``, that any part of this
        type can have at ``codes`` within its datasheet limits.

        R(D) = (D + INL)/N · R_AB·(1 + α ΔT) + R_W with |INL| ≤ ``inl_taps``, R_AB within
        ±``tolerance`` of nominal, |ΔT| ≤ ``delta_t_k`` from the 25 °C at which R_AB is specified
        (α = ``tempco_ppm_per_k``) and 0 ≤ R_W ≤ ``r_w_max_ohm``. R(D) is increasing in each of
        these, so its extremes are at their ends: k_hi = 1/R(lowest ends) (``inf`` where that is
        0 Ω), k_lo = 1/R(highest ends).
        """
        d = np.asarray(codes, dtype=float)
        n = self.max_code
        temp = self.tempco_ppm_per_k * 1e-6 * delta_t_k
        r_lo = np.maximum(d - self.inl_taps, 0.0) / n * self.r_ab_ohm * (1 - self.tolerance) * (1 - temp)
        r_hi = (d + self.inl_taps) / n * self.r_ab_ohm * (1 + self.tolerance) * (1 + temp) + self.r_w_max_ohm
        with np.errstate(divide="ignore"):
            return 1.0 / r_hi, np.where(r_lo > 0, 1.0 / np.where(r_lo > 0, r_lo, 1.0), np.inf)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _p(name: str, positions: int, r_ab: float, r_w: float, tol: float, readback: bool, nv: bool,
       iface: str, i_max: float, tempco: float, pu: int, r_w_max: float, inl: float) -> PartSpec:
    return PartSpec(name, positions, r_ab, r_w, tol, readback, nv, iface, i_max, tempco, pu, r_w_max, inl)


#: Parts from their datasheets (design.md). Power-up code of X9C is the stored one; we assume
#: it was left at mid-scale. The last two columns (R_W max in Ω, INL in taps) bound the
#: worst-case limit check (:meth:`PartSpec.conductance_box`): X9C from the Renesas/Intersil
#: X9C102/103/104/503 datasheet FN8222, "Electrical Specifications — Potentiometer
#: characteristics" (R_TOTAL −20…+20 %, R_W 40 Ω typ / 100 Ω max at 1 mA, absolute linearity
#: ±1 MI, tempco ±300 ppm/°C); the others from their datasheets' R_W max and rheostat INL
#: (MCP41x1 DS22059, AD5220, AD5206, AD5272/4), taken as ±1 LSB where the part's table gives
#: ±1 LSB or less. Only R_W's minimum (taken as 0 Ω) and the INL bound the largest conductance.
CATALOG: dict[str, PartSpec] = {
    p.name: p
    for p in [
        _p("X9C103", 100, 10e3, 40.0, 0.20, False, True, "updown", 1e-3, 300.0, 49, 100.0, 1.0),
        _p("X9C303", 100, 30e3, 40.0, 0.20, False, True, "updown", 1e-3, 300.0, 49, 100.0, 1.0),
        _p("AD5220-10", 128, 10e3, 40.0, 0.30, False, False, "updown", 1e-3, 800.0, 64, 100.0, 1.0),
        _p("AD5220-50", 128, 50e3, 40.0, 0.30, False, False, "updown", 1e-3, 800.0, 64, 100.0, 1.0),
        _p("AD5220-100", 128, 100e3, 40.0, 0.30, False, False, "updown", 1e-3, 800.0, 64, 100.0, 1.0),
        _p("MCP4131-103", 129, 10e3, 75.0, 0.20, True, False, "spi", 2.5e-3, 150.0, 64, 160.0, 1.0),
        _p("MCP4151-103", 257, 10e3, 75.0, 0.20, True, False, "spi", 2.5e-3, 150.0, 128, 160.0, 1.0),
        _p("MCP4151-503", 257, 50e3, 75.0, 0.20, True, False, "spi", 2.5e-3, 150.0, 128, 160.0, 1.0),
        # MCP4251-103: the two-wiper MCP4251 (DS22060B covers MCP413X/415X/423X/425X: same
        # RAB tolerance, wiper resistance, current and tempco as the MCP4151)
        _p("MCP4251-103", 257, 10e3, 75.0, 0.20, True, False, "spi", 2.5e-3, 150.0, 128, 160.0, 1.0),
        _p("AD5206-10", 256, 10e3, 45.0, 0.30, False, False, "spi", 5e-3, 700.0, 128, 100.0, 1.0),
        _p("AD5272-20", 1024, 20e3, 35.0, 0.01, True, True, "i2c", 3e-3, 5.0, 512, 70.0, 1.0),
        _p("AD5274-20", 256, 20e3, 35.0, 0.01, True, True, "i2c", 3e-3, 5.0, 128, 70.0, 1.0),
    ]
}


def get_part(name: str, file: str = "<code>", key: str = "parts.model") -> PartSpec:
    """The catalog entry for ``name``; a ConfigError naming the file and key otherwise."""
    try:
        return CATALOG[name]
    except KeyError:
        raise ConfigError(file, key, f"unknown part {name!r} (known: {', '.join(sorted(CATALOG))})") from None
