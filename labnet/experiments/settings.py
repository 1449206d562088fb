"""Run settings: the one place their defaults live.

Each dataclass is what one table of a protocol file becomes. The file parsers in
:mod:`labnet.config` read their defaults from these classes (``dataclasses.fields``), so a
default is written once, here.
"""

from __future__ import annotations

from dataclasses import dataclass

#: What fixes the calibration's overall scale (see :mod:`labnet.experiments.calibration`).
SCALES = ("source_current", "nominal")
#: Non-linearity term in the calibration's part model: where the data need it, never, always.
CORRECTIONS = ("auto", "none", "inl")


#: ``[train] keep`` / ``labnet run --keep``: which state a run ends in.
KEEP_CHOICES = ("final", "best")


#: ``[train] measurement`` values: "auto" (the default: "planned" where the rule and the rig allow it
#: and it is cheaper, else "fixed"), "fixed" (every state at the rig's NPLC), "planned" (marginal
#: decisions held) or "planned-reread" (both states read again at the rig's NPLC when one is marginal).
MEASUREMENT_CHOICES = ("auto", "fixed", "planned", "planned-reread")


def planning_problem(measurement: str, rule_kind: str, deadband_s: float, formula: str = "coupled") -> str | None:
    """Why ``[train] measurement`` cannot be planned for this rule (None: it can, or it is fixed)."""
    if measurement == "auto":
        return None
    if formula == "power_efficient" and measurement != "fixed":
        return f'"{measurement}" plans D = (ΔV^F)² − (ΔV^C)²; the power-efficient rule weighs them otherwise'
    if measurement == "fixed" or (rule_kind == "sign" and deadband_s > 0):
        return None
    return f'"{measurement}" needs [rule] kind = "sign" with deadband_siemens > 0, got kind {rule_kind!r}'


@dataclass(frozen=True)
class TrainSettings:
    """The ``[train]`` table: how long and how to run the free/clamped cycles.

    Attributes
    ----------
    steps : int
        Training steps (one update each).
    batch : int
        Samples per step; their Δk are averaged before the one update.
    eval_every : int
        Evaluate train and test error every this many steps (and at the start and end).
    target_error : float
        Stop once the train error (V²) is at or below this (0: never).
    settle_s : float
        Wait after applying a voltage pattern before measuring (s).
    eval_train_max : int
        At most this many train samples in each evaluation (0: all).
    keep : str
        Which state the run ends in: ``"final"`` (the codes after the last step) or ``"best"``
        (the codes of the evaluation with the lowest train error, written back and re-measured
        once training ends: ``# kept`` line in the CSV, ``phase = "kept"`` rows).
    measurement : str
        ``"auto"`` (default): ``"planned"`` when the rule is the sign rule with a dead band (not the
        power-efficient formula), the rig is wired (its meter changes NPLC between states) and the
        plan reads faster than the rig's NPLC; else ``"fixed"``. ``"fixed"``: every state at the
        rig's NPLC; ``"planned"``: training states at the NPLC
        :func:`labnet.experiments.measureplan.plan_measurement` picks from the sign rule's dead
        band, re-read at the rig's NPLC where a decision is marginal.
    """

    steps: int = 200
    batch: int = 1
    eval_every: int = 10
    target_error: float = 0.0
    settle_s: float = 0.01
    eval_train_max: int = 0
    keep: str = "final"
    measurement: str = "auto"


@dataclass(frozen=True)
class ProbeSettings:
    """The ``[probe]`` table.

    Attributes
    ----------
    samples : int
        Number M of random patterns.
    drive : tuple of str
        Nodes driven with random voltages (empty: the network's inputs).
    v_min, v_max : float
        Each driven voltage is uniform in [v_min, v_max] (V); unipolar by default so bench
        supplies can apply it (``v_max`` is capped at the rig's source limit).
    settle_s : float
        Wait after applying a pattern (s).
    bootstrap : int
        Bootstrap resamples for the error bars.
    """

    samples: int = 200
    drive: tuple[str, ...] = ()
    v_min: float = 0.0
    v_max: float = 0.5
    settle_s: float = 0.01
    bootstrap: int = 500


@dataclass(frozen=True)
class CalibrationSettings:
    """The ``[calibration]`` table of a calibrate protocol.

    Attributes
    ----------
    codes : tuple of int
        Sweep codes (every edge is measured at each); empty: 6 codes spread over the rig's
        code limits.
    pairs : bool
        Add "node s at V, next source node at 0 V" patterns to the single-node ones.
    current_fraction : float
        Patterns are scaled so the *predicted* largest edge current (nominal model) is this
        fraction of the rig's edge current limit (margin for the parts' tolerance).
    scans : int
        Meter scans averaged per pattern.
    settle_s : float
        Wait after applying a pattern (s).
    scale : {"source_current", "nominal"}
        What fixes the overall scale (see :mod:`labnet.experiments.calibration`);
        ``source_current`` falls back to ``nominal`` (with a warning in the result) when the
        sources cannot measure.
    correction : {"auto", "none", "inl"}
        Non-linearity term in the part model: where the data need it, never, always.
    meter_input_ohm : float
        The meter's input resistance (Ω): 10 MΩ, a DMM's default on its DC voltage ranges
        (0: ideal, e.g. a meter switched to > 10 GΩ input). A scanning meter loads each
        floating node while it reads it, V_read = V / (1 + R_th/R_in); given R_in the readings
        are corrected to first order with R_th computed from the fitted conductances (one
        refit). Matters for sourceless sub-networks, whose conductances rest on small voltage
        differences.
    """

    codes: tuple[int, ...] = ()
    pairs: bool = True
    current_fraction: float = 0.5
    scans: int = 2
    settle_s: float = 0.01
    scale: str = "source_current"
    correction: str = "auto"
    meter_input_ohm: float = 10e6


@dataclass(frozen=True)
class AnalysisSettings:
    """The ``[analysis]`` table of a training protocol (see :mod:`labnet.experiments.tracking`).

    Attributes
    ----------
    track_every : int
        Model quantities every this many steps (and at the start and the end).
    probe_every : int
        A short random probe every this many steps (0: never).
    probe_samples : int
        Patterns per probe.
    probe_v_max : float
        Probe voltages are uniform in [0, probe_v_max] (V) at the probe nodes (capped at the
        rig's source limit).
    probe_drive : tuple of str
        Probe nodes (empty: the task's input nodes).
    probe_bootstrap : int
        Bootstrap resamples for the probes' error bars.
    """

    track_every: int = 10
    probe_every: int = 0
    probe_samples: int = 40
    probe_v_max: float = 0.5
    probe_drive: tuple[str, ...] = ()
    probe_bootstrap: int = 200


__all__ = ["CORRECTIONS", "SCALES", "AnalysisSettings", "CalibrationSettings", "ProbeSettings", "TrainSettings"]
