"""The engine: training and evaluation as explicit free/clamped measurement cycles.

One training step, for each sample of the batch::

    apply inputs -> settle -> measure V^F
    clamp outputs at V_O^F + η (V_T − V_O^F) -> settle -> measure V^C  (EP: inject β(V_T − V_O^F))
    Δk_j from the rule on ΔV_j^F, ΔV_j^C          (local: per edge)

then one quantised update of every code (batch-averaged Δk), written to the digipots.
Evaluation measures the free state of train and test samples. The engine emits events
(:mod:`labnet.experiments.events`); sinks (the session writer, progress bar, plots) subscribe.

The engine runs cycles (:meth:`Engine.cycles`); it does not own the run's life. Its **safe
points** are after every measured state (its row emitted) and between steps (after the
checkpoint): there it honours a :class:`~labnet.experiments.runstate.StopRequest` and returns.
A settle on a real clock is slept in slices and cut short by a request. The cleanup (safe
state, outcome, status) belongs to :class:`labnet.experiments.lifecycle.RunOwner`;
:meth:`Engine.run` is that owner driving :meth:`Engine.cycles`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from labnet.bench.clock import WallClock
from labnet.bench.rig import Rig
from labnet.core.errors import LimitError
from labnet.core.rules import Rule, apply_step
from labnet.core.tasks import Samples, Task
from labnet.experiments.events import (
    Checkpoint,
    Evaluated,
    Event,
    Kept,
    RunEnded,
    RunResult,
    StateMeasured,
    StepDone,
    best_record,
    kept_event,
)
from labnet.experiments.lifecycle import RunOwner
from labnet.experiments.measureplan import MeasurementPlan
from labnet.experiments.planned_step import planned_dk
from labnet.experiments.runstate import StopAtSafePoint, StopRequest
from labnet.experiments.settings import TrainSettings
from labnet.experiments.signals import WAIT_SLICE_S, wait

#: The event types, importable from here as before (they live in labnet.experiments.events).
__all__ = ["Checkpoint", "Engine", "Evaluated", "Event", "Kept", "RunEnded", "RunResult", "StateMeasured", "StepDone"]


class Engine:
    """Runs training on a rig.

    Parameters
    ----------
    rig : Rig
        An open rig (its network carries the roles the task uses).
    task, rule, settings : Task, Rule, TrainSettings
    seed : int
        Seeds the batch draw and stochastic rounding.
    """

    def __init__(self, rig: Rig, task: Task, rule: Rule, settings: TrainSettings, seed: int = 0,
                 plan: MeasurementPlan | None = None) -> None:
        self.rig = rig
        self.plan = plan  # [train] measurement = "planned": NPLC per state, marginal policy (None: fixed)
        self.marginal = 0  # training states with a marginal decision (held or read again)
        self.task = task
        self.rule = rule
        self.settings = settings
        self.rng = np.random.default_rng([seed, 11])
        net = rig.network
        self.inputs = list(net.inputs)
        self.outputs = list(net.outputs)
        self.out_idx = net.indices(self.outputs)
        # equilibrium propagation: outputs nudged by currents (0 A, i.e. floating, in the free state)
        self._second = "nudged" if rule.formula == "ep" else "clamped"
        self._idle = {o: 0.0 for o in self.outputs if rig.is_current(o)}
        self._sinks: list[Callable[[Event], None]] = []
        self.step = 0
        self.evaluations: list[Evaluated] = []
        self._eval_records: list[tuple[Evaluated, dict[str, Any]]] = []  # JSON form, built once each
        self.stop_request = StopRequest()  # shared with the run's owner (RunOwner.attach)
        self._last_error: float | None = None  # error of the last state measured with a target
        self.best: dict[str, Any] | None = None  # lowest-train-error evaluation: step, mse, codes
        self.kept: Kept | None = None  # keep = "best": what was written back at the end

    def subscribe(self, sink: Callable[[Event], None]) -> None:
        """Call ``sink(event)`` for every event from now on."""
        self._sinks.append(sink)

    def emit(self, event: Event) -> None:
        for sink in self._sinks:
            sink(event)

    def request_stop(self, reason: str = "stop requested") -> None:
        """Stop at the next safe point (status ``stopped``; the run can be resumed)."""
        self.stop_request.request(reason)

    def _safe_point(self) -> None:
        """Between two states of a cycle: stop here if a stop was requested."""
        if self.stop_request:
            raise StopAtSafePoint(self.stop_request.reason)

    def _settle(self, seconds: float) -> None:
        """Wait ``seconds`` on the rig's clock. Real time is slept in slices, and a stop
        request cuts the wait short (the state is then left unmeasured: a safe point)."""
        if seconds > WAIT_SLICE_S and isinstance(self.rig.clock, WallClock):
            if not wait(seconds, self.stop_request.__bool__, self.rig.settle):
                self._safe_point()
            return
        self.rig.settle(seconds)

    # ------------------------------------------------------------------ checkpoints
    #: :class:`labnet.core.state.Stateful`: the keys of :meth:`state` and their JSON types (a
    #: checkpoint holds ``evaluations`` as a reference into its evaluation log, or inline).
    STATE_SCHEMA: ClassVar[dict[str, Any]] = {"step": int, "rng": dict, "codes": list, "held": dict,
                                              "evaluations": (dict, list), "sink_rngs": dict,
                                              "best": (dict, type(None)), "kept": (dict, type(None))}
    #: entries a checkpoint of an older version lacks (restored as None)
    STATE_OPTIONAL: ClassVar[frozenset[str]] = frozenset({"best", "kept"})

    def state(self) -> dict[str, Any]:
        """What :meth:`restore` needs to continue exactly from here (JSON-able).

        Step counter, the generator's state (batch draw, stochastic rounding), the host's
        record of the codes, the held pattern, the evaluations so far, and the state of every
        subscriber's ``rng`` generator (tracking probes draw their patterns from one).
        """
        return {
            "step": self.step,
            "rng": self.rng.bit_generator.state,
            "codes": [int(c) for c in self.rig.codes],
            "held": self.rig.held,
            "evaluations": self._evaluation_records(),
            "sink_rngs": {key: g.bit_generator.state for key, g in self._sink_rngs().items()},
            "best": self.best,
            "kept": None if self.kept is None else self.kept.record(),
        }

    def _evaluation_records(self) -> list[dict[str, Any]]:
        """``evaluations`` as JSON-able dicts; each evaluation is converted once (a checkpoint
        after every step would otherwise redo all of them: quadratic in the run's length)."""
        cache, evs = self._eval_records, self.evaluations
        n = len(cache)
        if n > len(evs) or (n and cache[n - 1][0] is not evs[n - 1]):  # the list was replaced
            cache.clear()
            n = 0
        # the record shares the event's score dicts (read-only once emitted): no second copy per evaluation
        cache.extend((e, {"step": e.step, "train": e.train, "test": e.test}) for e in evs[n:])
        return [d for _, d in cache]

    def _sink_rngs(self) -> dict[str, np.random.Generator]:
        """Generators of subscribers that draw random numbers (e.g. tracking probes): ``sink.rng``."""
        out: dict[str, np.random.Generator] = {}
        seen: dict[str, int] = {}
        for sink in self._sinks:
            g = getattr(sink, "rng", None)
            if isinstance(g, np.random.Generator):
                name = type(sink).__name__
                seen[name] = seen.get(name, 0) + 1
                out[f"{name}#{seen[name]}"] = g  # by class and order: stable across attempts
        return out

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state` output: step, generator, evaluations, codes, sources.

        The codes are re-written to every digipot and verified where the part reads back
        (:meth:`Rig.restore_codes`); the pattern held at the checkpoint is applied again (limits
        checked), so sources and drivers are as the uninterrupted run had them."""
        self.step = int(state["step"])
        self.rng.bit_generator.state = state["rng"]
        self.evaluations = [Evaluated(int(e["step"]), dict(e["train"]), dict(e["test"])) for e in state["evaluations"]]
        self.best = best_record(state.get("best"))
        self.kept = kept_event(state.get("kept"))
        gens = self._sink_rngs()
        for key, st in state.get("sink_rngs", {}).items():
            if key in gens:
                gens[key].bit_generator.state = st
        self.rig.restore_codes(np.asarray(state["codes"], dtype=np.int64))
        if state.get("held"):  # the sources as they were: instruments and drivers in the same state
            self.rig.apply(state["held"])
        if self.plan is not None:  # the meter's NPLC as it was: the reread one right after an evaluation
            ev = self.evaluations[-1].step if self.evaluations else None
            self.rig.set_nplc(self.plan.nplc_reread if ev == self.step else self.plan.nplc_train)

    def preflight(self, codes: np.ndarray | None = None) -> None:
        """Check every input pattern of the task at ``codes`` (default: the present codes; the run
        passes the initial codes it is about to write) before anything is applied.

        Raises :class:`LimitError` (nothing applied) if a train or test input would exceed a
        source limit or an edge's rated current. Clamped patterns depend on what is measured and
        are checked when applied (:meth:`Rig.apply`).
        """
        for split, samples in (("train", self.task.train), ("test", self.task.test)):
            for s in range(len(samples)):
                held = dict(zip(self.inputs, map(float, samples.inputs[s])))
                try:
                    self.rig.check_pattern(held, codes)
                except LimitError as exc:
                    raise LimitError(f"{split} sample {s}: {exc}") from None

    # ------------------------------------------------------------------ states
    def _measure(self, held: dict[str, float], step: int, phase: str, split: str, sample: int,
                 target: np.ndarray | None) -> np.ndarray:
        self.rig.apply(held)
        self._settle(self.rig.wait_for(self.settings.settle_s))
        v = self.rig.measure()
        err = pred = None
        if target is not None:
            out = v[self.out_idx]
            err = float(self.task.sample_error(out, target)[0])
            if self.task.patterns is not None:
                pred = int(self.task.predict(out)[0])
        self._last_error = err
        if self._sinks:
            self.emit(StateMeasured(step, phase, split, sample, held, v, self.rig.codes, self.rig.clock.now(), err, pred))
        self._safe_point()
        return v

    def free_state(self, x: np.ndarray, **kw: Any) -> np.ndarray:
        """Apply inputs ``x`` (n_in,), outputs floating (current-driven ones at 0 A); measured voltages (N,)."""
        return self._measure({**dict(zip(self.inputs, map(float, x))), **self._idle}, **kw)

    def clamped_state(self, x: np.ndarray, clamp_v: np.ndarray, **kw: Any) -> np.ndarray:
        """Apply inputs ``x`` and hold outputs at ``clamp_v`` (n_out,); measured voltages (N,)."""
        held = dict(zip(self.inputs, map(float, x)))
        held.update(zip(self.outputs, map(float, clamp_v)))
        return self._measure(held, **kw)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, step: int, phase: str = "eval") -> Evaluated:
        """Free states of the train samples (at most ``eval_train_max``) and of the test samples.

        ``phase`` labels the rows: ``"eval"`` (emits :class:`Evaluated` and is a candidate for
        ``keep = "best"``) or ``"kept"`` (the re-measurement of the state written back).
        """
        res = {}
        if self.plan is not None:  # evaluations read at the rig's NPLC, as without a plan
            self.rig.set_nplc(self.plan.nplc_reread)
        for split, samples in (("train", self._eval_train()), ("test", self.task.test)):
            outs = np.array([
                self.free_state(samples.inputs[s], step=step, phase=phase, split=split, sample=s,
                                target=samples.targets[s])[self.out_idx]
                for s in range(len(samples))
            ])
            res[split] = self.task.score(outs, samples)
        ev = Evaluated(step, res["train"], res["test"])
        if phase == "eval":
            mse = float(ev.train["mse"])
            if self.best is None or mse < self.best["mse"]:  # the earliest of equal errors
                self.best = {"step": step, "mse": mse, "codes": [int(c) for c in self.rig.codes]}
            self.emit(ev)
        return ev

    def keep_best(self) -> Kept | None:
        """``keep = "best"``, after training: write back the best evaluation's codes (through
        the rig's limit checks and planned changes, like any update) and re-measure them.

        Returns the :class:`Kept` record (also emitted, then a checkpoint), or None when the last
        evaluation is the best one (nothing to write back). Done once: a resumed run that
        already kept its best state does not do it again.
        """
        if self.kept is not None:
            return self.kept
        final, best = self.evaluations[-1], self.best
        if best is None or best["step"] == final.step or not best["mse"] < final.train["mse"]:
            return None
        codes = np.asarray(best["codes"], dtype=np.int64)
        self.rig.write_codes(codes)
        ev = self.evaluate(self.step, phase="kept")
        self.kept = Kept(int(best["step"]), float(best["mse"]), final.step, float(final.train["mse"]), codes, ev)
        self.emit(self.kept)
        self.emit(Checkpoint(self.step, self.state()))
        return self.kept

    def _eval_train(self) -> Samples:
        tr = self.task.train
        m = self.settings.eval_train_max
        if m and len(tr) > m:
            return Samples(tr.inputs[:m], tr.targets[:m], None if tr.labels is None else tr.labels[:m])
        return tr

    # ------------------------------------------------------------------ training
    def _train_step(self) -> StepDone:
        """One step: free and clamped state for each sample of a batch, one local update."""
        self.step += 1
        tr = self.task.train
        batch = self.rng.integers(0, len(tr), size=self.settings.batch) if len(tr) > 1 else np.zeros(1, int)
        net = self.rig.network
        dks = []
        errs: list[float] = []
        for s in batch:
            x, t = tr.inputs[s], tr.targets[s]
            vf = self.free_state(x, step=self.step, phase="free", split="train", sample=int(s), target=t)
            of = vf[self.out_idx]
            err_free = self._last_error  # the free state's error, as sample_error(of, t) gives it
            assert err_free is not None  # measured with its target
            errs.append(err_free)
            vc = self.clamped_state(x, self.rule.nudge(of, t), step=self.step, phase=self._second, split="train",
                                    sample=int(s), target=None)
            dvf, dvc = net.delta_v(vf), net.delta_v(vc)
            if self.plan is not None:
                dks.append(self._planned_dk(x, dvf, dvc))
                continue
            dks.append(self.rule.dk(dvf, dvc))
        # a batch of one: its own values (the mean of one value is that value, bit for bit)
        dk = dks[0] if len(dks) == 1 else np.mean(dks, axis=0)
        codes = self.rig.codes
        step = self.rule.step(dk, self.rig.model.slope(codes), self.rng, self.step)
        new = apply_step(codes, step, self.rig.limits.code_min, self.rig.limits.code_max)
        self.rig.write_codes(new)
        err = errs[0] if len(errs) == 1 else float(np.mean(errs))
        done = StepDone(self.step, err, new, int(np.count_nonzero(new != codes)))
        self.emit(done)
        return done

    def _settle_then_check(self) -> None:
        self._settle(self.rig.wait_for(self.settings.settle_s))
        self._safe_point()

    def _planned_dk(self, x: np.ndarray, dvf: np.ndarray, dvc: np.ndarray) -> np.ndarray:
        """Δk (E,) of a planned step (:func:`labnet.experiments.planned_step.planned_dk`)."""
        assert self.plan is not None
        free = dict(zip(self.inputs, map(float, x)))
        dk, marginal = planned_dk(self.rig, self.rule, self.plan, free, dvf, dvc, self._settle_then_check)
        self.marginal += marginal
        return dk

    def train_step(self) -> StepDone:
        """One step at the plan's training NPLC (fixed measurement: the rig's), evaluations at the rig's."""
        if self.plan is None:
            return self._train_step()
        self.rig.set_nplc(self.plan.nplc_train)  # the meter's NPLC changes only when it differs
        return self._train_step()

    def cycles(self, initial_codes: np.ndarray | None = None, *, resume: bool = False) -> RunResult:
        """Train for ``settings.steps`` steps (or to ``target_error``), evaluating along the way.

        With ``resume=True`` the engine continues from the state given to :meth:`restore`
        (no initial codes, no initial evaluation). A :class:`Checkpoint` event follows every
        complete step. Returns at a safe point when a stop is requested (``stopped`` true in
        the result). No cleanup here: the run's owner (:class:`RunOwner`) brings the rig to
        the safe state and sets the result's ``status``/``reason``; exceptions propagate.
        """
        t0 = time.perf_counter()
        result = RunResult("", "", self.step, self.evaluations)
        try:
            self._safe_point()
            if not resume:
                self.preflight(initial_codes)
                if initial_codes is not None:
                    self.rig.write_codes(initial_codes)
                self.evaluations = [self.evaluate(self.step)]
                self.emit(Checkpoint(self.step, self.state()))
            reason = f"{self.settings.steps} steps"
            target = self.settings.target_error
            reached = target > 0 and bool(self.evaluations) and self.evaluations[-1].train["mse"] <= target
            if reached:
                reason = f"target error {target:g} V² reached"
            while self.step < self.settings.steps and not reached:
                self._safe_point()  # between steps
                self.train_step()
                last = self.step == self.settings.steps
                if self.step % self.settings.eval_every == 0 or last:
                    ev = self.evaluate(self.step)
                    self.evaluations.append(ev)
                    if target > 0 and ev.train["mse"] <= target:
                        reason = f"target error {target:g} V² reached"
                        reached = True
                self.emit(Checkpoint(self.step, self.state()))
            if self.evaluations[-1].step != self.step:
                self.evaluations.append(self.evaluate(self.step))
                self.emit(Checkpoint(self.step, self.state()))
            if self.settings.keep == "best":
                result.kept = self.keep_best()
            result.reason = reason
        except StopAtSafePoint as stop:
            result.stopped, result.reason = True, str(stop)
        result.steps = self.step
        result.evaluations = self.evaluations
        result.wall_s = time.perf_counter() - t0
        return result

    def run(self, initial_codes: np.ndarray | None = None, *, resume: bool = False) -> RunResult:
        """:meth:`cycles` driven by a :class:`RunOwner`: always ends with the rig in the safe
        state and a :class:`RunEnded` event; the result's ``status`` is ``completed`` or
        ``stopped`` (a requested stop). Exceptions (a limit refusal, an instrument that stayed
        unreachable, a forced stop) are re-raised after the cleanup, a signal's stop request as
        :class:`~labnet.experiments.signals.StopSignal`."""
        owner = RunOwner(self.rig)
        owner.attach(self)
        return owner.drive(lambda: self.cycles(initial_codes, resume=resume))

