"""Non-idealities of a simulated bench: the settings of the breadboard model.

The rig file's ``[simulator]`` table is validated against :class:`SimSettings` (by
:mod:`labnet.config.rigfile`) without importing the simulator, which builds its model from it
(:class:`simulator.breadboard.Breadboard`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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
        Meter resolution (V); readings are rounded to it.
    meter_input_ohm : float
        Meter input resistance (Ω).
    source_gain_error, source_offset_v : float
        Per-channel gain error (relative) and offset (V) drawn uniform in ±value.
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
    source_gain_error: float = 5e-4
    source_offset_v: float = 1e-3
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


__all__ = ["SimSettings"]
