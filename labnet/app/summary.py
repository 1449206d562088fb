"""What a session run hands back (:class:`RunOutcome`) and its one-screen summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labnet.bench.rig import Rig
from labnet.config.protocol import Protocol
from labnet.experiments.events import RunResult


@dataclass
class RunOutcome:
    """A finished session run: the engine's result, the session folder, the protocol, the rig,
    and what ``status.json`` says."""

    result: RunResult
    session: Path
    protocol: Protocol
    rig: Rig
    status: dict[str, Any] = field(default_factory=dict)  # what status.json says
    dry_run: bool = False  # a bench rig file run on its emulated twin
    attempt: int = 0  # 0 for a run, n for its n-th resume (labnet resume)

    def __repr__(self) -> str:
        return summary(self)

    def _repr_html_(self) -> str:  # Jupyter
        import html

        return f"<pre>{html.escape(summary(self))}</pre>"

    def frame(self, *, keep_superseded: bool = False) -> Any:
        """The session CSV as a pandas DataFrame (one row per measured state; see its ``# columns`` header)."""
        from labnet.session.reader import read_session

        return read_session(self.session, keep_superseded=keep_superseded)

    def evaluations(self) -> Any:
        """The evaluations as a DataFrame: ``step``, ``train_mse``, ``test_mse`` (V²) and accuracies if any."""
        import pandas as pd

        rows = [{"step": e.step, **{f"train_{k}": v for k, v in e.train.items()},
                 **{f"test_{k}": v for k, v in e.test.items()}} for e in self.result.evaluations]
        return pd.DataFrame(rows)


def _ratio(before: float, after: float, same: bool) -> str:
    """``"  (5.65x lower)"``; nothing when the two evaluations are the same one (no step ran) or
    the final error is 0."""
    if same or not after > 0:
        return ""
    r = before / after
    return f"  ({r:.3g}x lower)" if r >= 1 else f"  ({1 / r:.3g}x higher)"


def _kept_lines(outcome: RunOutcome) -> list[str]:
    """What ``keep = "best"`` did (nothing for ``keep = "final"``)."""
    r = outcome.result
    if outcome.protocol.train.keep != "best" or r.stopped or r.status != "completed":
        return []
    k = r.kept
    if k is None:
        return [f"  kept           best = the final state (step {r.final.step}: no earlier evaluation was lower)"]
    ev = k.evaluation
    acc = f", test accuracy {ev.test['accuracy']:.1%}" if "accuracy" in ev.test else ""
    return [f"  kept           best: codes of step {k.from_step} (train {k.best_train_mse:.4g} V² then) written back "
            f"over step {k.final_step}'s ({k.final_train_mse:.4g} V²);",
            f"                 re-measured: train {ev.train['mse']:.4g} V², test {ev.test['mse']:.4g} V²{acc} "
            "(rows phase=kept)"]


def summary(outcome: RunOutcome, command: str | None = None) -> str:
    """The one-screen end-of-run summary; ``command`` names what produced it (default: ``resume``
    for a resumed run, ``run`` otherwise)."""
    command = command or ("resume" if outcome.attempt else "run")
    r = outcome.result
    dry = " (dry run: simulator, no instrument opened)" if outcome.dry_run else ""
    lines = [
        f"labnet {command}: {outcome.protocol.name} on {outcome.rig.name}{dry} — {r.status} ({r.reason})",
        f"  steps          {r.steps}",
    ]
    if r.evaluations:
        a, b = r.initial, r.left_in  # the kept state when keep = "best" wrote one back
        same = a.step == b.step
        lines += [
            f"  train error    {a.train['mse']:.4g} -> {b.train['mse']:.4g} V²" + _ratio(a.train["mse"], b.train["mse"], same),
            f"  test error     {a.test['mse']:.4g} -> {b.test['mse']:.4g} V²" + _ratio(a.test["mse"], b.test["mse"], same),
        ]
        if "accuracy" in b.test:
            lines.append(f"  test accuracy  {a.test['accuracy']:.1%} -> {b.test['accuracy']:.1%}"
                         f"   (train {a.train['accuracy']:.1%} -> {b.train['accuracy']:.1%})")
        lines += _kept_lines(outcome)
    lines.append(f"  limits         worst case ({outcome.rig.box_basis()}); "
                 f"{outcome.rig.planned_transitions} changes planned step by step (events.jsonl: transition_planned)")
    lines.append(f"  wall time      {r.wall_s:.2f} s")
    if outcome.rig.simulated:
        lines.append(f"  bench time     {r.bench_s:.1f} s (modelled: what the real bench would take)")
    lines.append(f"  session        {outcome.session}")
    return "\n".join(lines)
