"""The one owner of a run's life: states, stop requests, cleanup, outcome.

:class:`RunOwner` drives a run through :class:`~labnet.experiments.runstate.RunMachine`
(idle → running → stopping → safe → ended) and is the only code that

* turns stop signals into a :class:`~labnet.experiments.runstate.StopRequest` (first signal:
  stop at the engine's next safe point; second: :class:`StopSignal` at once —
  :func:`labnet.experiments.signals.stop_signals` in request mode),
* brings the bench to the safe state (:meth:`Rig.safe_state`, which retries) and closes the
  instruments it opened, with further signals deferred,
* decides the outcome (:func:`~labnet.experiments.runstate.decide`) and tells the engine's
  sinks (:class:`RunEnded`) and the session (``record``: the ``# run_ended`` line and
  ``status.json``, see :mod:`labnet.app.record`),
* re-raises what ended the run, after all of that.

The engine (:class:`labnet.experiments.engine.Engine`) only runs cycles; ``Engine.run`` is
``RunOwner(rig)`` driving ``Engine.cycles``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from labnet.bench.rig import Rig
from labnet.core.errors import InstrumentError
from labnet.experiments.events import Event, RunEnded, RunResult
from labnet.experiments.runstate import Ending, RunMachine, RunState, StopRequest, decide
from labnet.experiments.signals import StopSignal, describe, shielded, stop_signals

log = logging.getLogger("labnet.experiments.lifecycle")


class CycleRunner(Protocol):
    """What the owner needs of the engine it drives."""

    step: int
    stop_request: StopRequest

    def emit(self, event: Event) -> None: ...


class RunOwner:
    """Owns one run on ``rig``: call :meth:`drive` once.

    Parameters
    ----------
    rig : Rig
    record : callable, optional
        ``record(ending) -> dict`` writes how the run ended where it belongs (a session's
        CSV end line and ``status.json``); its return value is kept as :attr:`status`. Called
        once, after the safe state, with signals deferred.
    """

    def __init__(self, rig: Rig, record: Callable[[Ending], dict[str, Any]] | None = None) -> None:
        self.rig = rig
        self.record = record
        self.machine = RunMachine()
        self.stop = StopRequest()
        self.status: dict[str, Any] = {}
        self._engine: CycleRunner | None = None
        self._opened = False
        self._closers: list[Callable[[], None]] = []

    @property
    def state(self) -> RunState:
        return self.machine.state

    @property
    def ending(self) -> Ending | None:
        return self.machine.ending

    # ------------------------------------------------------------------ set up (inside drive's body)
    def attach(self, engine: CycleRunner) -> None:
        """The engine whose cycles this run drives: it shares the owner's stop request and gets
        the :class:`RunEnded` event."""
        if engine.stop_request and not self.stop:  # asked before it was attached
            self.stop.request(engine.stop_request.reason or "stop requested", engine.stop_request.signum)
        engine.stop_request = self.stop
        self._engine = engine

    def open_rig(self) -> None:
        """Open the rig; the cleanup closes it (after the safe state)."""
        self.rig.open()
        self._opened = True

    def on_cleanup(self, close: Callable[[], None]) -> None:
        """Call ``close()`` at the very end of the cleanup (last registered, first called)."""
        self._closers.append(close)

    def request_stop(self, reason: str = "stop requested", signum: int | None = None) -> None:
        """Stop at the engine's next safe point (status ``stopped``; the run can be resumed)."""
        self.stop.request(reason, signum)

    def _signalled(self, signum: int) -> None:  # called from the signal handler: one assignment
        self.stop.request(f"{describe(signum)}: stopped at a safe point", signum)

    # ------------------------------------------------------------------ the run
    def drive(self, body: Callable[[], RunResult]) -> RunResult:
        """Run ``body`` (set-up and the engine's cycles) under stop signals in request mode, then
        clean up — always — and re-raise what ended it.

        Raises the body's exception; :class:`InstrumentError` if the safe state was not
        reached; :class:`StopSignal` if a signal's stop request ended it (a stop requested by
        code returns the result, status ``stopped``).
        """
        if self.machine.state is not RunState.IDLE:
            raise RuntimeError("a RunOwner drives one run")
        result: RunResult | None = None
        error: BaseException | None = None
        with stop_signals(on_first=self._signalled):
            try:
                self.machine.to(RunState.RUNNING)
                result = body()
            except BaseException as exc:  # noqa: BLE001 - decided, recorded and re-raised below
                error = exc
            finally:
                with shielded():
                    ending = self._cleanup(error, result)
        if error is not None:
            raise error
        if not ending.safe:
            raise InstrumentError(ending.reason)
        assert result is not None
        if result.stopped and self.stop.signum is not None:
            raise StopSignal(self.stop.signum)
        return result

    def _cleanup(self, error: BaseException | None, result: RunResult | None) -> Ending:
        """running → stopping → safe → ended: safe state, close, decide, tell, record, close files."""
        self.machine.to(RunState.STOPPING)
        try:
            safe, why = self._safe_state()
            if safe:
                self.machine.to(RunState.SAFE)
            if self._opened:
                try:
                    self.rig.close()
                except Exception as exc:  # noqa: BLE001 - recorded; the safe state above is what matters
                    log.error("closing the rig failed: %s", exc,
                              extra={"event": "close_failed", "fields": {"error": f"{type(exc).__name__}: {exc}"}})
            ending = decide(error=error, stopped=result is not None and result.stopped, stop_reason=self.stop.reason,
                            done_reason="ended without a result" if result is None else result.reason,
                            safe=safe, unsafe_why=why)
            engine = self._engine
            if result is not None:
                result.status, result.reason = ending.outcome.value, ending.reason
                result.bench_s = self.rig.clock.now()
                try:
                    result.final_codes = self.rig.codes
                except RuntimeError:
                    result.final_codes = None
            if engine is not None:
                try:
                    engine.emit(RunEnded(ending.outcome.value, ending.reason, engine.step, safe))
                except Exception as exc:  # noqa: BLE001 - a sink's failure must not skip the record
                    log.error("a sink failed at the end of the run: %s", exc,
                              extra={"event": "sink_failed", "fields": {"error": f"{type(exc).__name__}: {exc}"}})
            if self.record is not None:
                self.status = self.record(ending)
            self.machine.end(ending)
            return ending
        finally:
            while self._closers:
                close = self._closers.pop()
                try:
                    close()
                except Exception as exc:  # noqa: BLE001 - every closer gets its chance
                    log.error("cleanup step failed: %s", exc)

    def _safe_state(self) -> tuple[bool, str]:
        """Sources to 0 V, outputs off (the rig retries); (reached, why not)."""
        try:
            self.rig.safe_state()
            return True, ""
        except Exception as exc:  # noqa: BLE001 - a source may be on: recorded loudly, the run fails
            why = f"{type(exc).__name__}: {exc}"
            log.error("safe state failed: %s", exc, extra={"event": "safe_state_failed", "fields": {"error": why}})
            return False, why
