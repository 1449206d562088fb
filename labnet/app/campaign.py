"""Fault campaigns: many seeded faulted dry runs through the real drivers and emulated wire.

Each run of a campaign trains a short protocol on a simulated rig whose emulated transports
inject seeded faults (:class:`simulator.faults.FaultPlan`: dropped or garbled bytes, replies
delayed past the timeout, board resets, the serial port unplugged and back, SCPI errors in the
queue, a wildly-off meter reading, VISA timeouts). The drivers retry, recover or give up; the
engine re-reads implausible scans; a run that still cannot go on stops cleanly. A run that did
not complete is then resumed with the faults gone (the cable is back) from its last checkpoint.

For every run the campaign checks, and :class:`RunReport` records:

* **sources off** — after the faulted attempt and after the resume, the simulator's model has
  no source output on (its ``driven`` map is empty);
* **rows** — every state the engine emitted is in the CSV, under its attempt, with exactly the
  values emitted (no row lost, none corrupted), and every row of the file is complete; and
  every state was measured with the codes it is logged with (the simulator's board had them);
* **outcome** — the run completed, or stopped cleanly and resumed to completion; its final
  codes (and final error) are compared with the fault-free run's. A run in which a meter scan
  was taken again — by the engine (implausible reading) or by the meter driver (``READ?``
  timed out, garbled, or with an error in the queue) — met fresh meter noise, so its codes may
  differ; :attr:`RunReport.meter_rereads` and :attr:`RunReport.engine_rereads` say so.

The simulator is imported lazily: this module is a tool for dry runs, not part of a bench run.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labnet.app.rigstate import sim_model
from labnet.app.runner import RunOutcome, resume_session, run_protocol
from labnet.config.protocol import Protocol, load_protocol
from labnet.config.rigfile import load_rig
from labnet.config.shipped import default_rig_path
from labnet.core.errors import LabnetError
from labnet.experiments.engine import StateMeasured
from labnet.session.folder import read_session, read_status

#: Fault kinds and the rate (probability per opportunity) a campaign uses for each. With the
#: campaign protocol a run has ~24 board requests, ~170 SCPI commands, ~46 meter scans and ~54
#: queries, so each rate gives one or two faults of its kind per run.
RATES: dict[str, float] = {
    "drop": 0.08,
    "garble": 0.08,
    "delay": 0.08,
    "reset": 0.06,
    "unplug": 0.05,
    "scpi_error": 0.01,
    "outlier": 0.04,
    "visa_timeout": 0.02,
}

PROTOCOL = """
[protocol]
name = "campaign"
kind = "train"
rig = "{rig}"
seed = 1

[task]
kind = "allostery"
inputs_v = [1.0, 0.3]
targets_v = [0.25, 0.15]

[rule]
kind = "sign"
eta = 0.5
alpha = 1e-3
deadband_siemens = 1e-7

[train]
steps = {steps}
eval_every = 5
settle_s = 0.001
"""


def campaign_protocol(folder: str | Path, *, rig: str | Path | None = None, steps: int = 20) -> Protocol:
    """The short allostery protocol every campaign run trains (written into ``folder``)."""
    f = Path(folder)
    f.mkdir(parents=True, exist_ok=True)
    p = f / "campaign.toml"
    path = Path(rig or default_rig_path()).resolve()
    text = PROTOCOL.format(rig=path, steps=steps)
    net = load_rig(path).network
    if any(n in net.current_channels for n in net.inputs):  # force inputs (sim16-current.toml)
        text = text.replace("inputs_v = [1.0, 0.3]\ntargets_v = [0.25, 0.15]",
                            "inputs_a = [1.5e-4, 5e-5]\ntargets_v = [0.30, 0.33]")
    if any(n in net.current_channels for n in net.outputs):  # nudged outputs: equilibrium propagation (sim16-ep.toml)
        text = text.replace("alpha = 1e-3", 'alpha = 4e-7\nformula = "ep"\nbeta_siemens = 2e-4')
    p.write_text(text, encoding="utf-8")
    return load_protocol(p)


def plan_for(seed: int, kinds: Sequence[str] | None = None) -> dict[str, float]:
    """The fault rates of run ``seed``: one primary kind (cycling through all kinds) and, for
    every other run, a second kind drawn from a generator seeded with ``seed``."""
    from simulator.faults import FAULT_KINDS

    kinds = list(kinds or FAULT_KINDS)
    primary = kinds[seed % len(kinds)]
    rates = {primary: RATES[primary]}
    rng = np.random.default_rng([seed, 99])
    if rng.random() < 0.5:
        second = kinds[int(rng.integers(len(kinds)))]
        rates[second] = RATES[second]
    return rates


class RowRecorder:
    """Keeps every emitted :class:`StateMeasured` (to check the CSV against) and, given the
    simulator's ``model``, counts the states whose logged codes are not the codes the board had
    when they were measured (a reset the driver did not notice in time)."""

    def __init__(self, model: Any = None) -> None:
        self.states: list[StateMeasured] = []
        self.model = model
        self.off_board = 0

    def __call__(self, ev: object) -> None:
        if isinstance(ev, StateMeasured):
            self.states.append(ev)
            if self.model is not None and not np.array_equal(np.asarray(self.model.codes), np.asarray(ev.codes)):
                self.off_board += 1


@dataclass
class RunReport:
    """What one faulted run did and what the checks found."""

    seed: int
    rates: dict[str, float]
    faults: dict[str, int] = field(default_factory=dict)  # faults that fired, per kind
    first_status: str = ""
    first_reason: str = ""
    resumed: bool = False
    resume_status: str = ""
    final_status: str = ""
    sources_on: int = 0  # checks (after each attempt) that found a source output on
    rows_emitted: int = 0
    rows_logged: int = 0  # rows of the CSV belonging to the emitted states
    rows_lost: int = 0
    rows_corrupted: int = 0
    rows_incomplete: int = 0
    rows_codes_off_board: int = 0  # states logged with codes the board did not have (faulted attempt)
    effective_rows_ok: bool = False  # after dropping superseded rows: the fault-free run's states, in order
    driver_events: int = 0  # retries / recoveries / reconnects logged in events.jsonl
    driver_retries: dict[str, int] = field(default_factory=dict)  # logged "retry" events per instrument
    meter_rereads: int = 0  # READ? sent again by the meter driver (a fresh scan: fresh noise)
    engine_rereads: int = 0
    raw_exceptions: list[str] = field(default_factory=list)  # "Type: message" of errors that are not LabnetError
    codes_match: bool = False
    final_error: float = math.nan
    reference_error: float = math.nan
    wall_s: float = 0.0


def _model_sources_on(rig: Any) -> int:
    model = sim_model(rig)
    if model is None:
        raise RuntimeError("campaign: no simulator model behind the rig")
    return int(bool(model.driven) or bool(model.currents.injected))


def _check_rows(folder: Path, attempts: list[RowRecorder], rep: RunReport) -> None:
    """Compare the CSV, attempt by attempt, with the states the engine emitted."""
    df = pd.read_csv(folder / "session.csv", comment="#")
    required = ["step", "phase", "split", "sample", "attempt"] + [c for c in df.columns if c.startswith(("code_e", "bench_s"))]
    rep.rows_incomplete = int((~df[required].notna().all(axis=1)).sum())
    vcols = [c for c in df.columns if c.startswith("v_")]
    ccols = [c for c in df.columns if c.startswith("code_e")]
    for a, rec in enumerate(attempts):
        rows = df[df["attempt"] == a].reset_index(drop=True)
        rep.rows_emitted += len(rec.states)
        rep.rows_logged += min(len(rows), len(rec.states))
        rep.rows_lost += max(0, len(rec.states) - len(rows))
        for i, ev in enumerate(rec.states[: len(rows)]):
            r = rows.iloc[i]
            same = (int(r["step"]) == ev.step and r["phase"] == ev.phase and r["split"] == ev.split
                    and int(r["sample"]) == ev.sample
                    and np.array_equal(r[vcols].to_numpy(float), np.asarray(ev.voltages, float), equal_nan=True)
                    and np.array_equal(r[ccols].to_numpy(int), np.asarray(ev.codes, int))
                    and math.isclose(float(r["bench_s"]), round(ev.bench_s, 9), abs_tol=1e-9))
            rep.rows_corrupted += int(not same)


def _count_events(folder: Path, rep: RunReport) -> None:
    for line in (folder / "events.jsonl").read_text(encoding="utf-8").splitlines():
        ev = json.loads(line)
        if "instrument" in ev:  # a driver's retry / recovery / reconnect (labnet.app.sinks.connect_driver_events)
            rep.driver_events += 1
            if ev.get("kind") == "retry":
                inst = str(ev["instrument"])
                rep.driver_retries[inst] = rep.driver_retries.get(inst, 0) + 1
                if inst.startswith("meter") and str(ev.get("command", "")).startswith("READ?"):
                    rep.meter_rereads += 1
        elif ev.get("kind") == "retry" and ev.get("action") == "measure":
            rep.engine_rereads += 1


def _raw(exc: BaseException, rep: RunReport) -> None:
    """Record ``exc`` if it is not a labnet error: a driver must turn every pyserial / pyvisa /
    OS error into an InstrumentError (a labnet error naming the instrument), never let it escape."""
    if not isinstance(exc, LabnetError):
        rep.raw_exceptions.append(f"{type(exc).__module__}.{type(exc).__name__}: {exc}"[:200])


def faulted_run(protocol: Protocol, folder: str | Path, seed: int, reference: RunOutcome,
                rates: dict[str, float] | None = None, opportunities: dict[str, int] | None = None) -> RunReport:
    """One faulted run (and its fault-free resume if it did not complete), checked.

    ``rates`` default to :func:`plan_for`. With ``opportunities`` (per kind, as counted in the
    fault-free run) one fault of the run's first kind is also scheduled at a seeded random
    opportunity, so that every run meets at least one fault.
    """
    from labnet.app.build import build_rig
    from simulator.bench import get_bench

    t0 = time.perf_counter()
    f = Path(folder)
    rates = plan_for(seed) if rates is None else rates
    rep = RunReport(seed, dict(rates))
    rig = build_rig(protocol.rig, sim_seed=protocol.seed, network=protocol.network)
    plan = get_bench(rig.extra["sim_bench"]).faults
    plan.rng = np.random.default_rng([seed, 6])  # the run's own fault stream
    plan.rates.clear()
    plan.rates.update(rates)
    plan.enabled = True
    if opportunities:  # build_rig already used some opportunities (connecting): schedule after them
        kind = next(iter(rates))
        used = plan.counts()[kind]
        n = max(1, int(opportunities.get(kind, 1)) - used)
        plan.schedule(kind, used + int(np.random.default_rng([seed, 7]).integers(n)))
    first = RowRecorder(sim_model(rig))
    attempts = [first]
    out: RunOutcome | None = None
    try:
        out = run_protocol(protocol, session_dir=f, rig=rig, progress=False, subscribers=[first])
    except Exception as exc:  # noqa: BLE001 - the status file says what happened; checked below
        _raw(exc, rep)
    rep.faults = dict(Counter(e.kind for e in plan.log))
    rep.rows_codes_off_board = first.off_board
    rep.sources_on += _model_sources_on(rig)
    st = read_status(f) or {}
    rep.first_status, rep.first_reason = st.get("status", "?"), st.get("reason", "")
    if rep.first_status != "completed":
        rep.resumed = True
        again = RowRecorder()
        csv_before = (f / "session.csv").exists()  # else the resume starts the CSV as attempt 0
        try:
            out = resume_session(f, progress=False, subscribers=[again])  # a fresh bench: no faults
        except Exception as exc:  # noqa: BLE001 - recorded as the resume's status
            rep.resume_status = f"error: {type(exc).__name__}: {exc}"
            _raw(exc, rep)
        st = read_status(f) or {}
        rep.resume_status = rep.resume_status or st.get("status", "?")
        attempts = [first, again] if csv_before else [again]
        if out is not None:
            rep.sources_on += _model_sources_on(out.rig)
    rep.final_status = (read_status(f) or {}).get("status", "?")
    if (f / "session.csv").exists():
        _check_rows(f, attempts, rep)
        keys = ["step", "phase", "split", "sample"]
        mine, ref = read_session(f)[keys], read_session(reference.session)[keys]
        rep.effective_rows_ok = bool(mine.equals(ref))
    _count_events(f, rep)
    ref_codes = reference.result.final_codes
    if out is not None and rep.final_status == "completed" and out.result.final_codes is not None and ref_codes is not None:
        rep.codes_match = bool(np.array_equal(out.result.final_codes, ref_codes))
        rep.final_error = float(out.result.final.train["mse"])
    rep.reference_error = float(reference.result.final.train["mse"])
    rep.wall_s = time.perf_counter() - t0
    return rep


@dataclass
class CampaignSummary:
    """Totals of a campaign (the numbers issue 6 asks for)."""

    runs: int
    completed_first: int
    resumed: int
    resumed_completed: int
    not_completed: int
    sources_left_on: int
    rows_emitted: int
    rows_lost: int
    rows_corrupted: int
    rows_incomplete: int
    rows_codes_off_board: int
    effective_rows_mismatch: int
    codes_match_completed_first: int
    codes_match_resumed: int
    faults_fired: dict[str, int]
    first_failure_reasons: dict[str, int]
    driver_events: int
    driver_retries: dict[str, int]
    meter_rereads: int
    runs_with_rereads: int  # runs whose meter scans were taken again (engine or driver): fresh noise
    codes_match_without_rereads: str  # "matched/runs" over the runs without re-reads
    engine_rereads: int
    runs_without_faults: int
    wall_s: float
    raw_exceptions: int = 0  # errors that escaped as something other than a LabnetError (must be 0)
    raw_exception_types: dict[str, int] = field(default_factory=dict)


def summarise(reports: Sequence[RunReport], wall_s: float) -> CampaignSummary:
    """Totals over the runs of a campaign."""
    clean = [r for r in reports if not (r.meter_rereads or r.engine_rereads)]
    fired: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    retries: Counter[str] = Counter()
    for r in reports:
        fired.update(r.faults)
        retries.update(r.driver_retries)
        if r.first_status != "completed":
            reasons[r.first_reason.split(":")[0] + ": " + r.first_reason.split(":")[1].strip()[:40]
                    if ":" in r.first_reason else r.first_reason] += 1
    return CampaignSummary(
        runs=len(reports),
        completed_first=sum(r.first_status == "completed" for r in reports),
        resumed=sum(r.resumed for r in reports),
        resumed_completed=sum(r.resumed and r.final_status == "completed" for r in reports),
        not_completed=sum(r.final_status != "completed" for r in reports),
        sources_left_on=sum(r.sources_on for r in reports),
        rows_emitted=sum(r.rows_emitted for r in reports),
        rows_lost=sum(r.rows_lost for r in reports),
        rows_corrupted=sum(r.rows_corrupted for r in reports),
        rows_incomplete=sum(r.rows_incomplete for r in reports),
        rows_codes_off_board=sum(r.rows_codes_off_board for r in reports),
        effective_rows_mismatch=sum(not r.effective_rows_ok for r in reports),
        codes_match_completed_first=sum(r.codes_match for r in reports if not r.resumed),
        codes_match_resumed=sum(r.codes_match for r in reports if r.resumed),
        faults_fired=dict(sorted(fired.items())),
        first_failure_reasons=dict(reasons.most_common()),
        driver_events=sum(r.driver_events for r in reports),
        driver_retries=dict(sorted(retries.items())),
        meter_rereads=sum(r.meter_rereads for r in reports),
        runs_with_rereads=sum(bool(r.meter_rereads or r.engine_rereads) for r in reports),
        codes_match_without_rereads=f"{sum(r.codes_match for r in clean)}/{len(clean)}",
        engine_rereads=sum(r.engine_rereads for r in reports),
        runs_without_faults=sum(not r.faults for r in reports),
        wall_s=wall_s,
        raw_exceptions=sum(len(r.raw_exceptions) for r in reports),
        raw_exception_types=dict(Counter(e.split(":")[0] for r in reports for e in r.raw_exceptions)),
    )


def reference_opportunities(reference: RunOutcome) -> dict[str, int]:
    """Fault opportunities per kind in the fault-free run (from its bench's fault plan)."""
    from simulator.bench import get_bench

    return get_bench(reference.rig.extra["sim_bench"]).faults.counts()


def run_campaign(folder: str | Path, runs: int, *, first_seed: int = 0, rig: str | Path | None = None,
                 steps: int = 20, verbose: bool = False) -> tuple[CampaignSummary, list[RunReport]]:
    """``runs`` seeded faulted runs (seeds ``first_seed`` …) under ``folder``; their summary."""
    t0 = time.perf_counter()
    f = Path(folder)
    protocol = campaign_protocol(f, rig=rig, steps=steps)
    reference = run_protocol(protocol, session_dir=f / "reference", progress=False)
    opportunities = reference_opportunities(reference)
    reports = []
    for seed in range(first_seed, first_seed + runs):
        rep = faulted_run(protocol, f / f"run{seed:04d}", seed, reference, opportunities=opportunities)
        reports.append(rep)
        if verbose:
            print(f"run {seed:4d} {'+'.join(rep.rates):24s} faults {sum(rep.faults.values()):2d} "
                  f"{rep.first_status:9s} -> {rep.final_status:9s} codes {'=' if rep.codes_match else '≠'} "
                  f"on {rep.sources_on} lost {rep.rows_lost} bad {rep.rows_corrupted} raw {len(rep.raw_exceptions)}  "
                  f"{rep.first_reason[:60]}",
                  flush=True)
    summary = summarise(reports, time.perf_counter() - t0)
    (f / "campaign.json").write_text(json.dumps({"summary": asdict(summary), "runs": [asdict(r) for r in reports]},
                                                indent=1, default=str), encoding="utf-8")
    return summary, reports
