"""In-situ calibration: every edge's code -> conductance curve, measured without unwiring.

Method
------
1. **Conductances at one code vector** (:func:`solve_conductances`). Drive a few source
   patterns (a node alone, or a node against another held at 0 V; the rest float) and scan
   every node. Kirchhoff's current law is *linear in the conductances*: with ΔV_j the
   measured drop across edge j and B the (E, N) incidence matrix,

       Σ_j B_ji ΔV_j k_j = 0         at every node i that no source holds,
       Σ_j B_js ΔV_j k_j = I_s       at a driven node s whose source reports its current I_s.

   All patterns stacked give an over-determined linear system for k (shape (E,)), solved by
   weighted least squares; the parameter covariance gives each k_j's uncertainty.
   **Scale.** Node voltages alone fix only the *ratios* of the conductances (multiplying
   every k by a constant changes no voltage), so something must fix the scale. Where the
   sources report their current (``Rig.read_source_currents``: SMUs, the simulator) the
   current rows fix it absolutely. Otherwise (``scale = "nominal"``) the homogeneous
   solution is scaled so that the geometric mean of the conductances equals the nominal
   part model's at the same codes: the scale then carries the parts' mean tolerance error
   (±tol/√(3E): about ±2.9 % for 16 X9C parts) — a known reference resistor in the network
   would remove it.
2. **Code sweep** (:func:`calibrate`). Every edge must be measured at several codes, and
   one set of patterns recovers *all* edges at once — but not always uniquely: a sub-network
   without a source (on sim16, nodes n8 and n9) acts between its two attachment nodes like
   one conductance in parallel with the edge joining them, so at a single code vector its
   internal scale trades off exactly against that edge. Sharing unknowns across code
   vectors removes the ambiguity: the edges are split into groups (:func:`choose_groups`,
   checked for identifiability on the nominal model before anything is applied), and the
   sweep (:func:`sweep_design`) measures the base vector (all edges at the middle sweep code)
   and then, for each group and each other sweep code, that group at the code while every
   other edge holds the base code. One joint least-squares fit over every (edge, code)
   unknown (:func:`solve_conductances`) uses all of it: 1 + G·(m−1) code vectors instead of
   E·m for one edge at a time (11 instead of 96 for 16 edges, 2 groups and 6 codes).
3. **Part model per edge** (:func:`fit_part`). R(D) = D/N·R_AB + R_W is linear in
   (R_AB, R_W); a correction term c·sin(πD/N) (integral non-linearity, in Ω) is added where
   the data need it (``correction = "auto"``: when it lowers χ² by more than
   :data:`CORRECTION_DCHI2`). The fitted curve gives the table k(D) for every code with an
   uncertainty propagated from the fit covariance.
4. **Meter loading.** A scanning DMM loads the node it reads (10 MΩ by default), which biases
   floating-node readings by R_th/R_in (~1e-4) — enough to matter for the sourceless
   sub-networks above. With ``meter_input_ohm`` the readings are corrected to first order
   from the fitted conductances and the fit is repeated once (:func:`unload`).

Modules: :mod:`~labnet.experiments.calibration.design` (patterns, groups, code vectors),
:mod:`~labnet.experiments.calibration.fit` (least squares, part model, meter loading),
:mod:`~labnet.experiments.calibration.table` (the table), and
:mod:`~labnet.experiments.calibration.procedure` (:func:`calibrate`). The ``[calibration]``
table of a calibrate protocol is read by :mod:`labnet.config.calibrate_file`; running it as a
session (``labnet calibrate``) is :mod:`labnet.app.calibrate`.

The result is a :class:`CalibrationTable` (a :class:`~labnet.core.conductance.ConductanceModel`)
stored as ``calibration.csv`` in the calibration session folder (``# key: JSON`` header like
the session CSV, then ``edge,code,conductance_siemens,sigma_siemens``); a training protocol uses it with
``[calibration] table = "path/to/calibration.csv"``. ``labnet calibrate`` binds the table to its
rig (``binding`` and ``content_sha256`` header lines); a damaged, unbound or another rig's table
is refused when the protocol is validated (:mod:`labnet.config.tables`).
"""

from __future__ import annotations

from labnet.experiments.calibration.design import (
    choose_groups,
    default_codes,
    estimate_noise,
    measure_patterns,
    scaled_pattern,
    source_patterns,
    sweep_design,
)
from labnet.experiments.calibration.fit import (
    CORRECTION_DCHI2,
    ConductanceFit,
    PartFit,
    PatternData,
    fit_part,
    joint_system,
    kcl_system,
    solve_conductances,
    unload,
)
from labnet.experiments.calibration.procedure import CalibrationResult, calibrate, calibration_columns
from labnet.experiments.calibration.table import CalibrationTable
from labnet.experiments.settings import CORRECTIONS, SCALES, CalibrationSettings

__all__ = [
    "CORRECTIONS",
    "CORRECTION_DCHI2",
    "SCALES",
    "CalibrationResult",
    "CalibrationSettings",
    "CalibrationTable",
    "ConductanceFit",
    "PartFit",
    "PatternData",
    "calibrate",
    "calibration_columns",
    "choose_groups",
    "default_codes",
    "estimate_noise",
    "fit_part",
    "joint_system",
    "kcl_system",
    "measure_patterns",
    "scaled_pattern",
    "solve_conductances",
    "source_patterns",
    "sweep_design",
    "unload",
]
