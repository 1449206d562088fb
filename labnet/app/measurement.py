"""The run's measurement plan from its protocol and rig file (``[train] measurement``).

``"fixed"``: None (every state at the rig file's NPLC). ``"auto"`` (the default): the planned one
where the rule (sign rule with a dead band) and the rig (wired: the meter changes NPLC) allow it
and it reads faster than the rig's NPLC, else None. ``"planned"``:
:func:`labnet.experiments.measureplan.plan_measurement` with the sign rule's Δk per unit of
(ΔV^F)² − (ΔV^C)² (α/η; α/β for equilibrium propagation: :attr:`labnet.core.rules.Rule.dk_scale`)
and dead band, the meter's NPLC choices from :mod:`labnet.bench.catalog`, one power-line cycle from
``[rig] mains_hz``, the meter noise at 1 NPLC from the rig's ``[simulator] meter_noise_v`` (the
simulator's default when the rig file has no ``[simulator]`` table) and ``v_scale`` the typical
edge drop (:func:`typical_drop`: the RMS edge drop of the free state in the nominal model at the
initial codes, largest over the train samples; an edge with larger drops has a larger σ_D and is
held when its decision is marginal); the line-frequency pickup from
``[simulator] mains_pickup_v``, the meter's normal-mode rejection and resolution per NPLC on the
rig's range (catalog).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from labnet.bench.catalog import METERS
from labnet.config.protocol import Protocol
from labnet.core.conductance import PartModel
from labnet.core.currents import solve_injected
from labnet.core.nonideal import SimSettings
from labnet.experiments.measureplan import MeasurementPlan, plan_measurement


def typical_drop(protocol: Protocol, max_samples: int = 20) -> float:
    """RMS edge drop (V) of the free state in the rig's nominal part model at its initial codes
    (the part's power-up code when the rig file gives none), largest over the first
    ``max_samples`` train samples; current-driven inputs inject their currents."""
    spec, net = protocol.rig, protocol.network
    code = spec.initial_code if spec.initial_code is not None else spec.part.power_up_code
    k = PartModel(spec.part, net.n_edges).conductance(np.full(net.n_edges, code))
    x = protocol.build_task().train.inputs
    out = 0.0
    for row in x[:max_samples]:
        pat = dict(zip(net.inputs, map(float, row)))
        held = {n: v for n, v in pat.items() if n not in net.current_channels}
        v = solve_injected(net, k, held, {n: a for n, a in pat.items() if n in net.current_channels})
        out = max(out, math.sqrt(float(np.mean(net.delta_v(v) ** 2))))
    return out


def measurement_plan(protocol: Protocol) -> MeasurementPlan | None:
    """The plan a run of ``protocol`` uses (None: fixed measurement)."""
    mode = protocol.train.measurement
    if mode == "fixed":
        return None
    spec, rule = protocol.rig, protocol.rule
    if mode == "auto" and (rule.kind != "sign" or rule.deadband_siemens <= 0 or rule.formula == "power_efficient"
                           or spec.transport != "wire"):
        return None
    meter = spec.instruments.meter if spec.instruments is not None else None
    model = METERS[meter.model] if meter is not None else METERS["DAQ970A"]
    nplc = float(meter.options.get("nplc", 1.0)) if meter is not None else 1.0
    rng_v = float(meter.options.get("range_v", 10.0)) if meter is not None else 10.0
    sigma1 = float(spec.sim.get("meter_noise_v", SimSettings().meter_noise_v))
    net = spec.network
    scan = tuple(n for n in net.nodes if n in net.meter_channels)
    plan = plan_measurement(alpha=rule.dk_scale, deadband_s=rule.deadband_siemens, sigma1_v=sigma1,
                            v_scale=typical_drop(protocol), nplc_choices=model.nplc, nplc_reread=nplc,
                            plc_s=1.0 / spec.mains_hz, scan=scan, nmr_db=model.nmr_db,
                            lsb_v={n: model.lsb_v(n, rng_v) for n in model.nplc},
                            pickup_v=float(spec.sim.get("mains_pickup_v", SimSettings().mains_pickup_v)),
                            on_marginal="reread" if mode == "planned-reread" else "hold")
    return None if mode == "auto" and plan.nplc_train >= nplc else plan


def plan_record(protocol: Protocol) -> dict[str, Any]:
    """``measurement_plan`` for the session header of a planned run (nothing for a fixed one: its header as before)."""
    plan = measurement_plan(protocol)
    return {} if plan is None else {"measurement_plan": plan.record()}


def plan_text(protocol: Protocol, bench_s: float, steps: int) -> str:
    """What the dry run prints: the plan (or the fixed NPLC) and the run's modelled bench time."""
    plan = measurement_plan(protocol)
    if plan is None:
        meter = protocol.rig.instruments.meter if protocol.rig.instruments is not None else None
        nplc = meter.options.get("nplc", 1.0) if meter is not None else 1.0
        head = f"  measurement: fixed, every state at {nplc:g} NPLC ([train] measurement = \"planned\" plans it)"
    else:
        head = "  " + plan.text()
    per = f", {bench_s / steps * 1e3:.1f} ms per step (evaluations included)" if steps else ""
    return f"{head}\n  modelled bench time of the run: {bench_s:.1f} s{per}"


__all__ = ["measurement_plan", "plan_record", "plan_text"]
