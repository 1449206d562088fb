"""``labnet doctor --responses``: measure every voltage source's step response and say what to
write in the rig file (:mod:`labnet.experiments.response_check`).

Each voltage-sourced, metered node (not ground, not current-driven) is stepped alone from 0 V to
half of ``[limits] max_source_v`` (the rig's limit check first), with the meter at its shortest
integration time. Per source instrument the report gives the slowest channel's τ and effective
dead time as ``response_tau_s``/``response_dead_s`` lines, to paste under its
``[instruments.sources.<name>]`` table; a planned run then times its waits by them
(:mod:`labnet.bench.settle`). Findings: an output that does not settle as a first-order response
(a slew-limited ramp), and a stated response faster than the measured one.
"""

from __future__ import annotations

from typing import Any

from labnet.bench.catalog import METERS
from labnet.config.rigfile import RigSpec
from labnet.core.errors import LimitError
from labnet.core.settling import RESPONSES
from labnet.experiments.response_check import ResponseFit, measure_response
from labnet.experiments.wiring_verdict import Finding

#: A stated τ this much below the measured one is a finding.
STATED_TOO_FAST = 0.8
#: The suggested ``response_tau_s`` is the slowest channel's τ times this (the fits scatter ~5 %).
TAU_MARGIN = 1.1


def check_responses(rig: Any, spec: RigSpec) -> tuple[list[ResponseFit], list[Finding]]:
    """Measure each voltage-sourced metered node's response on the open ``rig`` (module docstring)."""
    assert spec.instruments is not None
    meter = METERS[spec.instruments.meter.model]
    nplc = meter.nplc[0]
    quantum = meter.lsb_v(nplc, float(spec.instruments.meter.options.get("range_v", 10.0)))
    net = spec.network
    high = 0.5 * spec.limits.max_source_v
    fits: list[ResponseFit] = []
    findings: list[Finding] = []
    for node, ch in net.source_channels.items():
        if node == net.ground or node not in net.meter_channels or rig.is_current(node):
            continue
        try:
            rig.check_pattern({node: high}, rig.codes)
        except LimitError as exc:
            findings.append(Finding("response_not_measured", f"{node} ({ch}): not stepped: {exc}", {"node": node}))
            continue
        fit = measure_response(rig, node, low_v=0.0, high_v=high, nplc=nplc, quantum_v=quantum)
        fits.append(fit)
        if fit.tau_s is not None and not fit.first_order:
            findings.append(Finding("response_not_first_order",
                                    f"{node} ({ch}) does not settle exponentially (a reading off the fit by "
                                    f"{fit.misfit:.0%}): keep settle_s for it", {"node": node}))
    rig.apply({})
    for prefix, (tau, _dead) in per_instrument(fits).items():
        stated = spec.instruments.sources[prefix].options.get("response_tau_s")
        if stated is not None and tau is not None and float(stated) < STATED_TOO_FAST * tau:
            findings.append(Finding("response_stated_too_fast",
                                    f"instruments.sources.{prefix}.response_tau_s = {float(stated):g} s, but its "
                                    f"outputs measure {tau:.3g} s: a planned run would read before they settle",
                                    {"source": prefix}))
    return fits, findings


def per_instrument(fits: list[ResponseFit]) -> dict[str, tuple[float | None, float | None]]:
    """Source prefix -> (slowest τ, longest dead time) over its channels (None: none resolved)."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for f in fits:
        prefix = f.channel.split(".")[0]
        tau, dead = out.get(prefix, (None, None))
        if f.first_order:
            assert f.tau_s is not None and f.dead_s is not None
            tau = f.tau_s if tau is None else max(tau, f.tau_s)
            dead = f.dead_s if dead is None else max(dead, f.dead_s)
        out[prefix] = (tau, dead)
    return out


def responses_text(fits: list[ResponseFit], nplc: float, models: dict[str, str], bench_s: float = 0.0) -> list[str]:
    """The report's lines: each channel's fit, then the rig-file lines per instrument
    (``models``: source prefix -> instrument model, for the documented responses)."""
    lines = [f"source responses (each output stepped alone; meter at {nplc:g} NPLC, equivalent-time sampling; "
             f"bench time {bench_s:.1f} s):"]
    for f in fits:
        if f.tau_s is None:
            what = "settled before the first reading (faster than this meter resolves)"
        else:
            what = (f"tau {f.tau_s * 1e3:.3g} ms, effective dead time {f.dead_s * 1e3 if f.dead_s else 0:.3g} ms "
                    f"({f.points} points, largest misfit {f.misfit:.1%})")
        lines.append(f"  {f.node} ({f.channel}), step {f.step_v:.3g} V: {what}")
    for prefix, (tau, dead) in per_instrument(fits).items():
        doc = RESPONSES.get(models.get(prefix, ""))
        if tau is None:
            known = (f"its documented tau {doc.tau_s * 1e3:.3g} ms applies ({doc.basis})" if doc is not None
                     else "keep settle_s")
            lines.append(f"  [instruments.sources.{prefix}]: nothing to state: {known}")
        else:
            lines.append(f"  [instruments.sources.{prefix}]: response_tau_s = {TAU_MARGIN * tau:.2g}   "
                         f"response_dead_s = {dead or 0.0:.2g}   (slowest channel, tau +{TAU_MARGIN - 1:.0%})")
    return lines


__all__ = ["STATED_TOO_FAST", "TAU_MARGIN", "check_responses", "per_instrument", "responses_text"]
