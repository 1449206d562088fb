"""``labnet doctor RIG``: bench bring-up before a run.

1. The rig file is validated by the caller (:func:`labnet.config.rigfile.load_rig`; bad input is
   exit 2 before anything is opened).
2. Serial ports and VISA resources are listed, and every instrument the rig names is opened on
   its own, identified and compared with the rig file (:mod:`labnet.app.doctor_ident`).
3. If every instrument answered as expected, the **wiring check** runs on the opened rig
   (:mod:`labnet.experiments.wiring_check`, :mod:`~labnet.experiments.wiring_verdict`): a few
   code vectors and safe source patterns, node voltages, Kirchhoff least squares over every
   single wiring fault. The rig ends in the safe state whatever happens.
4. With ``responses``, each voltage source's step response is measured and the rig-file lines
   that state it are printed (:mod:`labnet.app.doctor_response`).

:class:`DoctorReport` gives the readable report (:meth:`~DoctorReport.text`), the JSON findings
(:meth:`~DoctorReport.to_dict`) and the exit code (0 clean, 1 findings).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labnet.app.build import build_rig, dry_run_spec, register_sim_bench
from labnet.app.doctor_ident import InstrumentCheck, identify, serial_ports, visa_resources
from labnet.app.doctor_response import check_responses, responses_text
from labnet.config.rigfile import RigSpec
from labnet.core.errors import LabnetError
from labnet.experiments.response_check import ResponseFit
from labnet.experiments.settings import CalibrationSettings
from labnet.experiments.wiring_check import WiringDesign, measure_wiring, wiring_design
from labnet.experiments.wiring_verdict import Finding, WiringVerdict, judge


@dataclass
class DoctorReport:
    """What ``labnet doctor`` found on one rig."""

    spec: RigSpec
    dry_run: bool
    ports: list[dict[str, str]]
    visa: dict[str, dict[str, Any]]
    instruments: list[InstrumentCheck]
    design: WiringDesign | None = None
    verdict: WiringVerdict | None = None
    findings: list[Finding] = field(default_factory=list)
    bench_s: float = 0.0
    wall_s: float = 0.0
    known_loads: dict[str, float] = field(default_factory=dict)
    responses: list[ResponseFit] | None = None  # --responses
    responses_s: float = 0.0  # their bench time (s)

    @property
    def exit_code(self) -> int:
        return 1 if self.findings else 0

    def to_dict(self) -> dict[str, Any]:
        """Machine-readable findings (``labnet doctor --json``)."""
        d = self.design
        return {
            "rig": self.spec.name, "rig_file": str(self.spec.path), "simulated": self.spec.simulated,
            "dry_run": self.dry_run, "clean": not self.findings, "exit_code": self.exit_code,
            "findings": [f.to_dict() for f in self.findings],
            "serial_ports": self.ports, "visa": self.visa,
            "instruments": [c.to_dict() for c in self.instruments],
            "wiring": None if self.verdict is None else {
                **self.verdict.to_dict(), "code_vectors": d.vectors.tolist() if d else None,
                "patterns": len(d.patterns) if d else 0, "scans": d.scans if d else 0,
                "amplitude_v": d.amplitude_v if d else None},
            "declared_off_state_ohm": {n: round(1.0 / g, 3) for n, g in self.known_loads.items()},
            "bench_s": round(self.bench_s, 3), "wall_s": round(self.wall_s, 3),
            **({} if self.responses is None else {"responses": [f.to_dict() for f in self.responses]}),
        }

    def text(self) -> str:
        """The readable report."""
        s = self.spec
        kind = "simulated" + (" (dry run of a bench rig)" if self.dry_run else "") if s.simulated else "bench"
        lines = [f"labnet doctor: rig {s.name!r} ({s.path}), {kind}"]
        lines.append(f"serial ports: {len(self.ports)} found" + "".join(
            f"\n  {p['device']}  {p['description']}  {p['hwid']}" for p in self.ports))
        for b, got in self.visa.items():
            name = f"@{b}" if b else "system library"
            if "error" in got:
                lines.append(f"VISA ({name}): not available: {got['error']}")
            else:
                lines.append(f"VISA ({name}): {len(got['resources'])} resource(s)"
                             + "".join(f"\n  {r}" for r in got["resources"]))
        if self.instruments:
            lines.append("instruments:")
        for c in self.instruments:
            ident = c.identity
            if c.role == "board" and ident:
                what = (f"{ident.get('model', '')} firmware {ident.get('firmware', '')}, {ident.get('family', '')} parts, "
                        f"{ident.get('channels')} channels, max code {ident.get('max_code')}, ready line "
                        f"{ident.get('ready_line')!r}")
            elif ident:
                what = ", ".join(ident.get(k, "") for k in ("manufacturer", "model", "serial", "firmware"))
            else:
                what = "no identification"
            lines.append(f"  {c.role:6s} {c.address}: {what}: " + ("as the rig file says" if c.ok else
                                                                     "DIFFERENT: " + "; ".join(c.problems)))
        v, d = self.verdict, self.design
        if v is not None and d is not None:
            net = s.network
            lines.append(f"wiring check: {d.vectors.shape[0]} code vectors x {len(d.patterns)} source patterns x "
                         f"{d.scans} scans at {d.amplitude_v:.3g} V; meter noise {v.sigma_v * 1e6:.1f} uV; "
                         f"bench time {self.bench_s:.1f} s")
            if self.known_loads:
                lines.append("  expected (the rig file's off-states): " + ", ".join(
                    f"{n} loaded by {1.0 / g:.3g} ohm when released" for n, g in self.known_loads.items()))
            lines.append("  KCL residual per node as wired (rms, sigma): "
                         + "  ".join(f"{n} {x:.1f}" for n, x in v.node_residuals.items()))
            dof = max(v.best.n_rows - v.best.n_params, 1)
            lines.append(f"  best explanation: {v.best.hypothesis.text(net)} (chi2 {v.best.chi2:.0f} for {dof} "
                         "degrees of freedom)")
            if len(v.ranked) > 1:
                nxt = v.ranked[1]
                lines.append(f"  next: {nxt.hypothesis.text(net)} (score +{nxt.score - v.best.score:.0f})")
        elif s.transport == "wire" and any(not c.ok for c in self.instruments):
            lines.append("wiring check: skipped (an instrument is missing or different)")
        if self.responses is not None and s.instruments is not None:
            from labnet.bench.catalog import METERS

            lines += responses_text(self.responses, METERS[s.instruments.meter.model].nplc[0],
                                    {p: v.model for p, v in s.instruments.sources.items()}, self.responses_s)
        if self.findings:
            lines.append(f"findings ({len(self.findings)}):")
            lines += [f"  - {f.text}" for f in self.findings]
        else:
            lines.append("findings: none; the bench is wired as the rig file says")
        return "\n".join(lines)


def declared_loads(spec: RigSpec) -> dict[str, float]:
    """Node -> conductance (S) to ground the rig file declares while the node is released: a
    source channel's output-off state (``off_resistance_ohm``, the 2450's off-state), unless an
    analog switch releases the node (``[release]``)."""
    rel = getattr(spec, "release", None)
    if rel is None:
        return {}
    out = {}
    for node, ch in spec.network.source_channels.items():
        if node in rel.switches:
            continue
        g = float(rel.off_siemens(ch))
        if g > 0:
            out[node] = g
    return out


def run_doctor(spec: RigSpec, *, dry_run: bool = False, sim_seed: int | None = None, scans: int = 2,
               settle_s: float = 0.05, responses: bool = False) -> DoctorReport:
    """Check a validated rig (module docstring). ``dry_run``: a bench rig on its emulated twin
    (like ``labnet run --dry-run``); ``sim_seed`` seeds a simulator's run-to-run noise;
    ``responses``: measure the sources' step responses too."""
    t0 = time.perf_counter()
    dry = dry_run and not spec.simulated
    spec = dry_run_spec(spec) if dry_run else spec
    sleep: Any = time.sleep
    if spec.simulated and spec.transport == "wire":
        _, model = register_sim_bench(spec, sim_seed)
        sleep = model.clock.sleep
    report = DoctorReport(spec, dry, serial_ports(), visa_resources(spec) if spec.instruments else {},
                          identify(spec, sleep))
    for c in report.instruments:
        for p in c.problems:
            report.findings.append(Finding("instrument", f"{c.role} at {c.address}: {p}",
                                           {"role": c.role, "address": c.address}))
    if report.findings:
        report.wall_s = time.perf_counter() - t0
        return report
    design = wiring_design(spec.network, spec.part, spec.limits, scans=scans, settle_s=settle_s)
    try:
        rig = build_rig(spec, sim_seed=sim_seed)
        with rig:
            t_bench = rig.clock.now()
            data = measure_wiring(rig, design)
            report.bench_s = rig.clock.now() - t_bench
            if responses and spec.instruments is not None:
                report.responses, found = check_responses(rig, spec)
                report.findings += found
                report.responses_s = rig.clock.now() - t_bench - report.bench_s
    except LabnetError as exc:
        report.findings.append(Finding("wiring_check_failed", f"wiring check stopped: {exc}"))
        report.wall_s = time.perf_counter() - t0
        return report
    if not np.isfinite(data.scans).any():
        report.findings.append(Finding("wiring_check_failed", "the meter returned no finite reading"))
    else:
        report.design = design  # the meter's input resistance: the DAQ970A's documented 10 MOhm (as calibration)
        report.known_loads = declared_loads(spec)
        report.verdict = judge(spec.network, spec.part, data, meter_input_ohm=CalibrationSettings().meter_input_ohm,
                               known_loads=report.known_loads,
                               switched=frozenset(getattr(getattr(spec, "release", None), "switches", {})))
        report.findings += report.verdict.findings
    report.wall_s = time.perf_counter() - t0
    return report


__all__ = ["DoctorReport", "run_doctor"]
