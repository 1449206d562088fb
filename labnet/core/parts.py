"""Digital potentiometer parts: taps, end-to-end resistance, wiper resistance, ratings.

A digipot used as a rheostat (wiper to one end) has, at code D of N+1 positions,

    R(D) = D / N · R_AB + R_W          (Ω)

and conductance k(D) = 1 / R(D) (S). Real parts deviate from the nominal R_AB by their
tolerance (±20 % for X9C/MCP41xx) — the simulator draws that per part; calibration measures it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from labnet.core.errors import ConfigError


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

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _p(name: str, positions: int, r_ab: float, r_w: float, tol: float, readback: bool, nv: bool,
       iface: str, i_max: float, tempco: float, pu: int) -> PartSpec:
    return PartSpec(name, positions, r_ab, r_w, tol, readback, nv, iface, i_max, tempco, pu)


#: Parts from their datasheets (design.md). Power-up code of X9C is the stored one; we assume
#: it was left at mid-scale.
CATALOG: dict[str, PartSpec] = {
    p.name: p
    for p in [
        _p("X9C103", 100, 10e3, 40.0, 0.20, False, True, "updown", 1e-3, 300.0, 49),
        _p("X9C303", 100, 30e3, 40.0, 0.20, False, True, "updown", 1e-3, 300.0, 49),
        _p("AD5220-10", 128, 10e3, 40.0, 0.30, False, False, "updown", 1e-3, 800.0, 64),
        _p("AD5220-50", 128, 50e3, 40.0, 0.30, False, False, "updown", 1e-3, 800.0, 64),
        _p("AD5220-100", 128, 100e3, 40.0, 0.30, False, False, "updown", 1e-3, 800.0, 64),
        _p("MCP4131-103", 129, 10e3, 75.0, 0.20, True, False, "spi", 2.5e-3, 150.0, 64),
        _p("MCP4151-103", 257, 10e3, 75.0, 0.20, True, False, "spi", 2.5e-3, 150.0, 128),
        _p("MCP4151-503", 257, 50e3, 75.0, 0.20, True, False, "spi", 2.5e-3, 150.0, 128),
        # MCP4251-103: the two-wiper MCP4251 (DS22060B covers MCP413X/415X/423X/425X: same
        # RAB tolerance, wiper resistance, current and tempco as the MCP4151)
        _p("MCP4251-103", 257, 10e3, 75.0, 0.20, True, False, "spi", 2.5e-3, 150.0, 128),
        _p("AD5206-10", 256, 10e3, 45.0, 0.30, False, False, "spi", 5e-3, 700.0, 128),
        _p("AD5272-20", 1024, 20e3, 35.0, 0.01, True, True, "i2c", 3e-3, 5.0, 512),
        _p("AD5274-20", 256, 20e3, 35.0, 0.01, True, True, "i2c", 3e-3, 5.0, 128),
    ]
}


def get_part(name: str, file: str = "<code>", key: str = "parts.model") -> PartSpec:
    """The catalog entry for ``name``; a ConfigError naming the file and key otherwise."""
    try:
        return CATALOG[name]
    except KeyError:
        raise ConfigError(file, key, f"unknown part {name!r} (known: {', '.join(sorted(CATALOG))})") from None
