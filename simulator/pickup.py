"""Line-frequency pickup on the simulated bench, as an integrating voltmeter sees it.

A node no source holds picks up the mains field: a sinusoid of amplitude A (V peak) at the line
frequency. An integrating A/D converter averages its input over the aperture T = n / f_line
(n: NPLC); the average of A·sin(2πf t + φ) over n whole cycles is zero and over a fraction of a
cycle it is not. The instrument's documented normal-mode rejection (NMR) says how well that
works on the real meter — Agilent 34970A/34972A User's Guide, ch. 7 "Rejecting Power-Line Noise
Voltages" (the DAQ970A User's Guide, ch. 4, repeats it): "If you set the integration time to a
whole number of power line cycles (PLCs) of the spurious input, these errors (and their
harmonics) will average out to approximately zero"; NMR 0 dB at 0.02 and 0.2 PLC, 60 dB at 1,
90 at 2, 95 at 10, 100 at 20, 105 at 100 and 110 dB at 200 PLC. The emulator keeps its own copy
of the table (it models the manual, not the driver's catalog).

A reading therefore carries A · 10^(−NMR/20) · sin φ with φ uniform per reading (the scan is not
synchronised to the line): rms A · 10^(−NMR/20) / √2.
"""

from __future__ import annotations

import numpy as np

#: NPLC -> normal-mode rejection (dB), 34970A/34972A User's Guide ch. 7.
NMR_DB = {0.02: 0.0, 0.2: 0.0, 1.0: 60.0, 2.0: 90.0, 10.0: 95.0, 20.0: 100.0, 100.0: 105.0, 200.0: 110.0}


def pickup(rng: np.random.Generator, amplitude_v: float, nplc: float, floating: np.ndarray) -> np.ndarray:
    """Pickup (V) each reading carries, shape of ``floating`` (bool: the node no source holds)."""
    db = NMR_DB.get(float(nplc))
    if db is None:
        raise ValueError(f"NPLC {nplc}: the meter's NMR is documented at {sorted(NMR_DB)} only")
    phase = rng.uniform(0.0, 2.0 * np.pi, floating.shape)
    return amplitude_v * 10.0 ** (-db / 20.0) * np.sin(phase) * floating
