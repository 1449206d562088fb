"""Non-idealities of a simulated bench: the settings of the breadboard model.

The rig file's ``[simulator]`` table is validated against :class:`SimSettings` (by
:mod:`labnet.config.rigfile`) without importing the simulator, which builds its model from it
(:class:`simulator.breadboard.Breadboard`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from labnet.core.wiring import WiringFaults


@dataclass(frozen=True)
class SimSettings:
    """Non-idealities of the simulated bench (all on by default; set to 0 to turn off).

    Attributes
    ----------
    seed : int
        Seed of the part draw, noise and drift.
    tolerance : bool
        Draw each part's R_AB within the part's tolerance (uniform in ±tolerance).
    wiper_spread : float
        Relative spread (uniform ±) of the wiper resistance around the typical value.
    inl_taps : float
        Amplitude (taps) of the integral non-linearity; each part draws a ∈ [−inl, inl].
    meter_noise_v : float
        RMS meter noise (V) at 1 PLC.
    meter_resolution_v : float
        Meter resolution (V); readings are rounded to it, or through the emulated DAQ970A/34970A
        to one A/D count of its NPLC and range where that is coarser (the 34970A/34972A guide's
        bits per NPLC: :data:`simulator.daq_emu.A_D_BITS`).
    meter_input_ohm : float
        Meter input resistance (Ω).
    mains_pickup_v : float
        Line-frequency pickup (V peak) at every node no source holds: a reading integrates it
        over its aperture, so it is rejected at whole PLCs and not below 1 PLC
        (:mod:`simulator.pickup`; 0: none).
    source_gain_error, source_offset_v : float
        Per-channel gain error (relative) and offset (V) drawn uniform in ±value.
    supply_tau_s, supply_dead_s : float
        Output response of every simulated E36312A channel after a new setpoint: dead time, then
        a first-order approach with time constant ``supply_tau_s`` (:mod:`labnet.core.settling`;
        no figure is documented for the E36312A, so the simulated bench states its own; 0: the
        output steps at once). The simulated Keithley 2450 follows its datasheet's settling time.
    drift_kelvin : float
        Amplitude (K) of the slow temperature swing.
    drift_period_s : float
        Period (s) of the temperature swing.
    wiring : WiringFaults
        Faults of the physical wiring (the ``[simulator.wiring]`` table; none by default).
    """

    seed: int = 0
    tolerance: bool = True
    wiper_spread: float = 0.25
    inl_taps: float = 0.5
    meter_noise_v: float = 20e-6
    meter_resolution_v: float = 1e-6
    meter_input_ohm: float = 10e6
    mains_pickup_v: float = 0.0
    source_gain_error: float = 5e-4
    source_offset_v: float = 1e-3
    supply_tau_s: float = 0.0
    supply_dead_s: float = 0.0
    drift_kelvin: float = 0.5
    drift_period_s: float = 3600.0
    wiring: WiringFaults = WiringFaults()

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values (``wiring`` only when it has a fault)."""
        d = asdict(self)
        d.pop("wiring")
        if not self.wiring.clean:
            d["wiring"] = self.wiring.to_dict()
        return d


class Range(NamedTuple):
    """Valid values of one numeric :class:`SimSettings` field: ``lo <= v`` (``lo < v`` if
    ``lo_open``) and ``v <= hi`` (``v < hi`` if ``hi_open``); None: unbounded."""

    lo: float | None
    hi: float | None
    lo_open: bool = False
    hi_open: bool = False


#: Largest noise, resolution and offset (V) a simulated bench may have: beyond 1 V the
#: instruments (signals of at most a few volts) would measure nothing but the non-ideality.
MAX_SIM_VOLTS = 1.0
#: Longest simulated source response time (s): a supply slower than this is not one to train with.
MAX_SETTLE_S = 10.0
#: Largest temperature swing (K): the digipots' whole operating range (-40 to 85 °C) is 125 K.
MAX_DRIFT_KELVIN = 100.0


def sim_ranges(max_code: int, tempco_ppm_per_k: float) -> dict[str, Range]:
    """The valid range of every numeric field for a part with taps ``0..max_code`` and a
    resistance tempco (ppm/K) — so a rig file is refused at validation, not deep in the model.

    * ``wiper_spread`` < 1: R_W = typical·(1 ± spread) stays > 0 for every draw.
    * ``inl_taps`` <= max_code/π: D + a·sin(πD/N) >= D·(1 − a·π/N) >= 0 for every code D and
      every drawn amplitude |a| <= inl_taps (sin x <= x), so R(D) is never negative.
    * ``drift_kelvin``: at most :data:`MAX_DRIFT_KELVIN` and below 10⁶/tempco, so the
      resistance scale 1 + tempco·ΔT stays > 0.
    * ``source_gain_error`` < 1: the drawn gain 1 ± error stays > 0 (no inverted source).
    * ``drift_period_s`` > 0 (it divides the time); ``meter_input_ohm`` >= 0 (0: no loading).
    """
    drift = Range(0.0, MAX_DRIFT_KELVIN)
    if tempco_ppm_per_k and 1e6 / abs(tempco_ppm_per_k) <= MAX_DRIFT_KELVIN:
        drift = Range(0.0, 1e6 / abs(tempco_ppm_per_k), hi_open=True)
    return {
        "seed": Range(0, None),
        "wiper_spread": Range(0.0, 1.0, hi_open=True),
        "inl_taps": Range(0.0, math.floor(max_code / math.pi * 100) / 100),  # rounded down: still safe
        "meter_noise_v": Range(0.0, MAX_SIM_VOLTS),
        "meter_resolution_v": Range(0.0, MAX_SIM_VOLTS),
        "meter_input_ohm": Range(0.0, None),
        "mains_pickup_v": Range(0.0, MAX_SIM_VOLTS),
        "source_gain_error": Range(0.0, 1.0, hi_open=True),
        "source_offset_v": Range(0.0, MAX_SIM_VOLTS),
        "supply_tau_s": Range(0.0, MAX_SETTLE_S),
        "supply_dead_s": Range(0.0, MAX_SETTLE_S),
        "drift_kelvin": drift,
        "drift_period_s": Range(0.0, None, lo_open=True),
    }


__all__ = ["MAX_DRIFT_KELVIN", "MAX_SETTLE_S", "MAX_SIM_VOLTS", "Range", "SimSettings", "sim_ranges"]
