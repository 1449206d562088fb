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

With a plan the rig also waits after each change only as long as the changed outputs need
(:func:`settle_model`, :mod:`labnet.bench.settle`): the sources' responses from their datasheets
(:data:`labnet.core.settling.RESPONSES`) or as the rig file states them
(:mod:`labnet.config.response_file`), to a residual of :data:`SETTLE_FRACTION` of one reading's
noise at the evaluation NPLC. A residual δ at a node moves an edge's D = (ΔV^F)² − (ΔV^C)² by at
most 2|ΔV|δ, against the noise σ_D ≥ 2√2·σ|ΔV| of D from the two readings: δ = σ/20 biases D by
under 4 % of its noise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from labnet.bench.catalog import METERS
from labnet.bench.rig import Rig
from labnet.bench.settle import SettleModel
from labnet.config.protocol import Protocol
from labnet.core.conductance import PartModel
from labnet.core.currents import solve_injected
from labnet.core.nonideal import SimSettings
from labnet.core.settling import RESPONSES, X9C_WIPER_CHANGE_S, SourceResponse
from labnet.experiments.measureplan import MeasurementPlan, plan_measurement, reading_sigma

#: Tolerated settling residual at a node, as a fraction of one reading's noise (see above).
SETTLE_FRACTION = 0.05


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
    noise = _noise(protocol)
    net = spec.network
    scan = tuple(n for n in net.nodes if n in net.meter_channels)
    plan = plan_measurement(alpha=rule.dk_scale, deadband_s=rule.deadband_siemens, sigma1_v=noise["sigma1_v"],
                            v_scale=typical_drop(protocol), nplc_choices=noise["nplc_choices"],
                            nplc_reread=noise["nplc"], plc_s=1.0 / spec.mains_hz, scan=scan, nmr_db=noise["nmr_db"],
                            lsb_v=noise["lsb_v"], pickup_v=noise["pickup_v"],
                            on_marginal="reread" if mode == "planned-reread" else "hold")
    return None if mode == "auto" and plan.nplc_train >= noise["nplc"] else plan


def _noise(protocol: Protocol) -> dict[str, Any]:
    """The meter's noise figures of the rig (see the module docstring)."""
    spec = protocol.rig
    meter = spec.instruments.meter if spec.instruments is not None else None
    model = METERS[meter.model] if meter is not None else METERS["DAQ970A"]
    rng_v = float(meter.options.get("range_v", 10.0)) if meter is not None else 10.0
    return {"nplc": float(meter.options.get("nplc", 1.0)) if meter is not None else 1.0, "nplc_choices": model.nplc,
            "sigma1_v": float(spec.sim.get("meter_noise_v", SimSettings().meter_noise_v)), "nmr_db": model.nmr_db,
            "lsb_v": {n: model.lsb_v(n, rng_v) for n in model.nplc},
            "pickup_v": float(spec.sim.get("mains_pickup_v", SimSettings().mains_pickup_v))}


def settle_model(protocol: Protocol, plan: MeasurementPlan | None) -> SettleModel | None:
    """How a planned run's rig times its waits (None without a plan: every state waits ``settle_s``)."""
    spec = protocol.rig
    if plan is None or spec.instruments is None:
        return None
    responses: dict[str, SourceResponse] = {}
    for node, full in spec.network.source_channels.items():
        prefix = full.split(".")[0]
        src = spec.instruments.sources.get(prefix)
        if src is None or src.options.get("function") == "current":
            continue
        if "response_tau_s" in src.options:
            responses[node] = SourceResponse(float(src.options["response_dead_s"]), float(src.options["response_tau_s"]),
                                             f"stated in the rig file ([instruments.sources.{prefix}])")
        elif src.model in RESPONSES:
            responses[node] = RESPONSES[src.model]
    n = _noise(protocol)
    sigma = reading_sigma(n["sigma1_v"], n["nplc"], n["pickup_v"], n["nmr_db"].get(n["nplc"], 0.0),
                          n["lsb_v"].get(n["nplc"], 0.0))
    switched = spec.release is not None and bool(spec.release.switches)
    return SettleModel(responses, SETTLE_FRACTION * min(sigma, plan.sigma_v),
                       X9C_WIPER_CHANGE_S if spec.part.name.upper().startswith("X9C") else 0.0,
                       spec.limits.max_source_v if switched else 0.0,
                       frozenset(spec.release.switches) if spec.release is not None else frozenset())


def planned(rig: Rig, protocol: Protocol) -> MeasurementPlan | None:
    """The run's measurement plan, with the rig set to time its waits by it (:func:`settle_model`)."""
    plan = measurement_plan(protocol)
    rig.settle_model = settle_model(protocol, plan)
    rig.settle_fallback_s = protocol.train.settle_s  # between the steps of a planned transition too
    return plan


def plan_record(protocol: Protocol) -> dict[str, Any]:
    """``measurement_plan`` for the session header of a planned run (nothing for a fixed one: its header as before)."""
    plan = measurement_plan(protocol)
    if plan is None:
        return {}
    settle = settle_model(protocol, plan)
    return {"measurement_plan": plan.record(), **({} if settle is None else {"settle_model": settle.record()})}


def plan_text(protocol: Protocol, bench_s: float, steps: int) -> str:
    """What the dry run prints: the plan (or the fixed NPLC) and the run's modelled bench time."""
    plan = measurement_plan(protocol)
    if plan is None:
        meter = protocol.rig.instruments.meter if protocol.rig.instruments is not None else None
        nplc = meter.options.get("nplc", 1.0) if meter is not None else 1.0
        head = f"  measurement: fixed, every state at {nplc:g} NPLC ([train] measurement = \"planned\" plans it)"
    else:
        head = "  " + plan.text()
        settle = settle_model(protocol, plan)
        if settle is not None:
            head += "\n  " + settle_text(settle, protocol.train.settle_s)
    per = f", {bench_s / steps * 1e3:.1f} ms per step (evaluations included)" if steps else ""
    return f"{head}\n  modelled bench time of the run: {bench_s:.1f} s{per}"


def settle_text(model: SettleModel, settle_s: float) -> str:
    """The dry run's lines on how the planned run waits: the tolerated residual, each response
    with the nodes it drives, the wait of the others and after a code write."""
    by: dict[tuple[float, float, str], list[str]] = {}
    for node, r in model.responses.items():
        by.setdefault((r.dead_s, r.tau_s, r.basis), []).append(node)
    rows = [f"    {', '.join(nodes)}: dead {d * 1e3:g} ms, tau {t * 1e3:.3g} ms ({basis})"
            for (d, t, basis), nodes in by.items()]
    wiper = f"; at least {model.wiper_s * 1e3:g} ms after a code write (wiper change)" if model.wiper_s else ""
    return "\n".join([f"settling: each state waits until at most {model.tolerance_v * 1e6:.2g} µV of every step "
                      f"is left (t_d + tau ln(step/residual)); other changes wait settle_s = {settle_s * 1e3:g} ms"
                      f"{wiper}", *rows])


__all__ = ["SETTLE_FRACTION", "measurement_plan", "plan_record", "plan_text", "planned", "settle_model", "settle_text"]
