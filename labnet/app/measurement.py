"""The run's measurement plan from its protocol and rig file (``[train] measurement``).

``"fixed"``: None (every state at the rig file's NPLC, as before). ``"planned"``:
:func:`labnet.experiments.measureplan.plan_measurement` with the sign rule's ``alpha`` and dead
band, the meter's NPLC choices from :mod:`labnet.bench.catalog`, one power-line cycle from
``[rig] mains_hz``, the meter noise at 1 NPLC from the rig's ``[simulator] meter_noise_v`` (the
simulator's default when the rig file has no ``[simulator]`` table) and ``v_scale`` the largest
source voltage the rig allows (``[limits] max_source_v``); the line-frequency pickup from
``[simulator] mains_pickup_v`` and the meter's normal-mode rejection per NPLC (catalog).
"""

from __future__ import annotations

from typing import Any

from labnet.bench.catalog import METERS
from labnet.config.protocol import Protocol
from labnet.core.nonideal import SimSettings
from labnet.experiments.measureplan import MeasurementPlan, plan_measurement


def measurement_plan(protocol: Protocol) -> MeasurementPlan | None:
    """The plan a run of ``protocol`` uses (None: fixed measurement)."""
    if protocol.train.measurement == "fixed":
        return None
    spec = protocol.rig
    meter = spec.instruments.meter if spec.instruments is not None else None
    model = METERS[meter.model] if meter is not None else METERS["DAQ970A"]
    nplc = float(meter.options.get("nplc", 1.0)) if meter is not None else 1.0
    sigma1 = float(spec.sim.get("meter_noise_v", SimSettings().meter_noise_v))
    net = spec.network
    scan = tuple(n for n in net.nodes if n in net.meter_channels)
    rule = protocol.rule
    return plan_measurement(alpha=rule.alpha, deadband_s=rule.deadband_siemens, sigma1_v=sigma1,
                            v_scale=spec.limits.max_source_v, nplc_choices=model.nplc, nplc_reread=nplc,
                            plc_s=1.0 / spec.mains_hz, scan=scan, nmr_db=model.nmr_db,
                            pickup_v=float(spec.sim.get("mains_pickup_v", SimSettings().mains_pickup_v)),
                            on_marginal="reread" if protocol.train.measurement == "planned-reread" else "hold")


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
