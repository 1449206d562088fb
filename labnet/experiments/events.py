"""What the engine tells its subscribers, and what a training run produced.

The engine emits :data:`Event` objects to its sinks (the session writer, the checkpoint
writer, the progress bar, tracking probes, tests): one :class:`StateMeasured` per measured
state, :class:`StepDone` after each update, :class:`Evaluated` after each evaluation, a
:class:`Checkpoint` after every complete step, and :class:`RunEnded` once the run's owner has
brought the bench to the safe state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class StateMeasured:
    """One measured state: a row of the session CSV."""

    step: int
    phase: str  # "free", "clamped" or "eval"
    split: str  # "train" or "test"
    sample: int
    held: dict[str, float]
    voltages: np.ndarray  # (N,)
    codes: np.ndarray  # (E,)
    bench_s: float
    error: float | None = None
    predicted: int | None = None


@dataclass(frozen=True)
class StepDone:
    """A training step's update was written to the digipots."""

    step: int
    train_error: float  # mean free-state error of this step's batch (V²)
    codes: np.ndarray
    moved: int  # edges whose code changed


@dataclass(frozen=True)
class Evaluated:
    """The scores of an evaluation (``train``/``test``: ``mse`` in V², ``accuracy`` if classifying)."""

    step: int
    train: dict[str, float]
    test: dict[str, float]


@dataclass(frozen=True)
class Kept:
    """Training ended and ``keep = "best"`` wrote back the best evaluated state.

    ``from_step``: the evaluation whose codes were written back, ``best_train_mse`` its train
    error then (V²); ``final_step``/``final_train_mse``: the state that was replaced; ``codes``
    (E,) the codes written; ``evaluation``: the kept state re-measured (its rows have
    ``phase = "kept"``), whose scores describe the state the network is left in.
    """

    from_step: int
    best_train_mse: float
    final_step: int
    final_train_mse: float
    codes: np.ndarray
    evaluation: Evaluated

    def record(self) -> dict[str, Any]:
        """JSON form (the CSV's ``# kept`` line, the checkpoint, events.jsonl)."""
        return {"keep": "best", "from_step": self.from_step, "best_train_mse": self.best_train_mse,
                "final_step": self.final_step, "final_train_mse": self.final_train_mse,
                "codes": [int(c) for c in self.codes],
                "remeasured": {"train": self.evaluation.train, "test": self.evaluation.test}}


@dataclass(frozen=True)
class Checkpoint:
    """Step ``step`` is complete (update written, evaluation done if due): a resume point.

    ``state`` is :meth:`Engine.state` at that moment (JSON-able).
    """

    step: int
    state: dict[str, Any]


@dataclass(frozen=True)
class RunEnded:
    """The run's owner finished the cleanup (:mod:`labnet.experiments.lifecycle`)."""

    status: str  # "completed", "stopped" or "failed"
    reason: str
    steps: int
    safe: bool = True  # the rig reached the safe state


Event = StateMeasured | StepDone | Evaluated | Kept | Checkpoint | RunEnded


@dataclass
class RunResult:
    """What a training run produced.

    The engine fills the measurements; ``status``/``reason`` are set by the run's owner
    (:mod:`labnet.experiments.lifecycle`) once it has decided the outcome. ``stopped``: the
    engine returned at a safe point because a stop was requested.
    """

    status: str
    reason: str
    steps: int
    evaluations: list[Evaluated] = field(default_factory=list)
    final_codes: np.ndarray | None = None
    wall_s: float = 0.0
    bench_s: float = 0.0
    stopped: bool = False
    kept: Kept | None = None  # keep = "best" replaced the final state (None: the final state is kept)

    @property
    def initial(self) -> Evaluated:
        return self.evaluations[0]

    @property
    def final(self) -> Evaluated:
        return self.evaluations[-1]

    @property
    def left_in(self) -> Evaluated:
        """The evaluation of the state the network is left in: the kept one, else the final one."""
        return self.kept.evaluation if self.kept is not None else self.final


def best_record(rec: Any) -> dict[str, Any] | None:
    """A checkpoint's ``best`` entry (layout checked by the session's integrity checks)."""
    if rec is None:
        return None
    return {"step": int(rec["step"]), "mse": float(rec["mse"]), "codes": [int(c) for c in rec["codes"]]}


def kept_event(rec: Any) -> Kept | None:
    """A checkpoint's ``kept`` entry back as the :class:`Kept` event (None: nothing kept yet)."""
    if rec is None:
        return None
    m = rec["remeasured"]
    ev = Evaluated(int(rec["final_step"]), dict(m["train"]), dict(m["test"]))
    return Kept(int(rec["from_step"]), float(rec["best_train_mse"]), int(rec["final_step"]),
                float(rec["final_train_mse"]), np.asarray(rec["codes"], dtype=np.int64), ev)
