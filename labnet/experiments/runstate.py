"""The states of one run and the only ways between them (pure: no I/O, no signals).

In the spirit of Bluesky's RunEngine, a run is always in exactly one :class:`RunState`::

    idle ──▶ running ──▶ stopping ──▶ safe ──▶ ended
      │                     ▲   │                ▲
      └─────────────────────┘   └────────────────┘
     (setup failed before        (safe state not reached:
      the run started)            ended, outcome failed)

``ended`` carries an :class:`Outcome`: completed, stopped or failed. :data:`TRANSITIONS` is the
whole table; :meth:`RunMachine.to` refuses anything else with :class:`TransitionError` (a
programming error, never a user's). :func:`decide` is the one mapping from how the run ended
(a normal end, a stop at a safe point, an exception, an unsafe bench) to its outcome and reason.
:class:`StopRequest` is the flag a first stop signal sets; the engine looks at it at its safe
points (between the states of a cycle) and raises :class:`StopAtSafePoint` there.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class RunState(Enum):
    """Where a run is in its life."""

    IDLE = "idle"  # built, nothing applied yet
    RUNNING = "running"  # setup and measurement cycles
    STOPPING = "stopping"  # cleanup began: no more cycles
    SAFE = "safe"  # sources at 0 V, outputs off
    ENDED = "ended"  # outcome decided and recorded


class Outcome(Enum):
    """How an ended run ended (the ``status`` of ``status.json``)."""

    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"


#: Allowed transitions: state -> the states it may go to next. Nothing else is allowed.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.IDLE: frozenset({RunState.RUNNING, RunState.STOPPING}),
    RunState.RUNNING: frozenset({RunState.STOPPING}),
    RunState.STOPPING: frozenset({RunState.SAFE, RunState.ENDED}),
    RunState.SAFE: frozenset({RunState.ENDED}),
    RunState.ENDED: frozenset(),
}


class TransitionError(RuntimeError):
    """A transition that is not in :data:`TRANSITIONS` (a bug in the run's owner)."""


class StopAtSafePoint(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by the engine at a safe point when a stop was requested (never escapes the owner)."""


@dataclass(frozen=True)
class Ending:
    """How a run ended: its outcome, a one-line reason, whether the bench reached the safe state."""

    outcome: Outcome
    reason: str
    safe: bool


class RunMachine:
    """The state of one run; :meth:`to` moves it along :data:`TRANSITIONS` or raises."""

    def __init__(self) -> None:
        self.state = RunState.IDLE
        self.history: list[RunState] = [RunState.IDLE]
        self.ending: Ending | None = None

    def to(self, new: RunState) -> None:
        """Go to ``new``; :class:`TransitionError` if the table does not allow it."""
        if new not in TRANSITIONS[self.state]:
            raise TransitionError(f"run state {self.state.value} -> {new.value} is not allowed")
        self.state = new
        self.history.append(new)

    def end(self, ending: Ending) -> None:
        """Go to ``ended`` with ``ending``; an ending with the safe state not reached must fail,
        and one from ``stopping`` (the safe state was never reached) must say so."""
        if ending.safe != (self.state is RunState.SAFE):
            raise TransitionError(f"ending with safe={ending.safe} from run state {self.state.value}")
        if not ending.safe and ending.outcome is not Outcome.FAILED:
            raise TransitionError(f"an unsafe end must be failed, not {ending.outcome.value}")
        self.to(RunState.ENDED)
        self.ending = ending


class StopRequest:
    """A request to stop at the next safe point (set by the first stop signal or by code).

    Setting it is one attribute assignment, so a signal handler may do it at any moment.
    The first request wins; later ones change nothing.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self.signum: int | None = None  # the signal that asked, if one did

    def request(self, reason: str, signum: int | None = None) -> None:
        if self.reason is None:
            self.signum = signum
            self.reason = reason

    def __bool__(self) -> bool:
        return self.reason is not None


def decide(*, error: BaseException | None, stopped: bool, stop_reason: str | None, done_reason: str,
           safe: bool, unsafe_why: str = "") -> Ending:
    """The outcome of a run, from how it ended. The only place this mapping is made.

    ``error`` is the exception that ended it (None: it returned); ``stopped`` says it returned
    at a safe point because of a :class:`StopRequest` with ``stop_reason``; ``done_reason`` is
    the engine's reason when it completed ("30 steps", "target error … reached"). A bench that
    did not reach the safe state fails the run whatever else happened, and says so loudly.
    """
    if error is None and stopped:
        outcome, reason = Outcome.STOPPED, stop_reason or "stop requested"
    elif error is None:
        outcome, reason = Outcome.COMPLETED, done_reason
    elif isinstance(error, KeyboardInterrupt):  # a forced stop (second signal), or Ctrl-C outside handlers
        signum = getattr(error, "signum", None)
        outcome, reason = Outcome.STOPPED, f"interrupted by {error}" if signum is not None else "interrupted (Ctrl-C)"
    else:
        outcome, reason = Outcome.FAILED, f"{type(error).__name__}: {error}"
    if not safe:
        return Ending(Outcome.FAILED, f"SAFE STATE NOT REACHED ({unsafe_why}): a source may still be on, check the "
                                      f"bench; the run itself ended {outcome.value}: {reason}", False)
    return Ending(outcome, reason, True)
