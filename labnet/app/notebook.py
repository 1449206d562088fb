"""labnet in a notebook: train on your own samples with a session written, and watch it live.

* :func:`run_samples` — a protocol's rule, training settings and rig, your own input/target
  arrays (V) as the task; the session folder is written as for ``labnet run`` (its CSV, the
  samples as ``dataset.csv``, a checkpoint that ``labnet resume`` continues).
* :class:`LivePlot` — a subscriber (``run_protocol(..., subscribers=[LivePlot()])``) that
  redraws error vs step and the codes every ``every`` steps: in Jupyter one output cell updated
  in place (``IPython.display`` with a display id), elsewhere an image file rewritten atomically.
* the outcome of a run (:class:`labnet.app.summary.RunOutcome`) shows its summary as its repr,
  ``outcome.frame()`` is the session as a DataFrame and ``outcome.evaluations()`` the evaluations.

Subscribers are plain callables receiving every engine event (:mod:`labnet.experiments.events`):
``StateMeasured`` (one per measured state — a CSV row), ``StepDone`` (after each update:
``step``, ``train_error`` in V², ``codes``), ``Evaluated`` (``step``, ``train``/``test`` metric
dicts: ``mse`` in V², ``accuracy`` for classification), ``Checkpoint`` and ``RunEnded`` (status,
reason, safe state). A subscriber that raises stops the run in the safe state like any fault.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labnet.app.sinks import in_kernel
from labnet.core.errors import ConfigError
from labnet.experiments.events import Evaluated, RunEnded, StepDone


def samples_csv(inputs: np.ndarray, targets: np.ndarray, input_nodes: Sequence[str], output_nodes: Sequence[str],
                split: str) -> str:
    """CSV text of samples: columns ``x_<input node>`` (V), ``y_<output node>`` (V) and ``split``."""
    x = np.atleast_2d(np.asarray(inputs, dtype=float))
    y = np.atleast_2d(np.asarray(targets, dtype=float))
    buf = io.StringIO()
    cols = [f"x_{n}" for n in input_nodes] + [f"y_{n}" for n in output_nodes] + ["split"]
    buf.write(",".join(cols) + "\n")
    for a, b in zip(x, y, strict=True):
        buf.write(",".join(repr(float(v)) for v in (*a, *b)) + f",{split}\n")
    return buf.getvalue()


def _without_task(text: str) -> str:
    """The protocol text with its ``[task]`` table removed (up to the next table header)."""
    out, skip = [], False
    for line in text.splitlines():
        head = re.match(r"\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if head:
            skip = head.group(1).strip() == "task"
        if not skip:
            out.append(line)
    return "\n".join(out) + "\n"


def run_samples(protocol: str | Path, inputs: np.ndarray, targets: np.ndarray, *,
                test_inputs: np.ndarray | None = None, test_targets: np.ndarray | None = None,
                out: str | Path = "sessions", rig: str | Path | None = None, steps: int | None = None,
                progress: bool = True, subscribers: Sequence[Callable[[Any], None]] = ()) -> Any:
    """Train on your own samples with ``protocol``'s rule, training settings and rig.

    Parameters
    ----------
    protocol : path
        A training protocol file; its ``[task]`` is replaced by the samples.
    inputs, targets : arrays, shape (S, n_in) and (S, n_out)
        Input voltages at the network's input nodes and target voltages at its outputs (V).
    test_inputs, test_targets : arrays, optional
        Held-out samples (default: the training samples, as for allostery).
    out, rig, steps, progress, subscribers
        As for ``labnet run`` / :func:`labnet.app.runner.run_protocol`.

    Returns the :class:`~labnet.app.summary.RunOutcome`. Bad shapes or voltages are a
    ConfigError before anything is built.
    """
    from labnet.app.runner import run_protocol
    from labnet.config.protocol import load_protocol

    src = Path(protocol)
    base = load_protocol(src, rig=rig)
    net = base.network
    x, y = np.asarray(inputs, dtype=float), np.asarray(targets, dtype=float)
    xt = x if test_inputs is None else np.asarray(test_inputs, dtype=float)
    yt = y if test_targets is None else np.asarray(test_targets, dtype=float)
    for name, arr, width in (("inputs", x, len(net.inputs)), ("targets", y, len(net.outputs)),
                             ("test_inputs", xt, len(net.inputs)), ("test_targets", yt, len(net.outputs))):
        if arr.ndim != 2 or arr.shape[1] != width or len(arr) == 0:
            raise ConfigError("<run_samples>", name, f"expected shape (samples, {width}), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ConfigError("<run_samples>", name, "expected finite voltages")
    if len(x) != len(y) or len(xt) != len(yt):
        raise ConfigError("<run_samples>", "targets", f"got {len(x)}/{len(xt)} input and {len(y)}/{len(yt)} target rows")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "samples.csv"
        text = samples_csv(x, y, net.inputs, net.outputs, "train")
        if test_inputs is not None:
            text += samples_csv(xt, yt, net.inputs, net.outputs, "test").split("\n", 1)[1]
        data.write_text(text, encoding="utf-8")
        proto_text = _without_task(base.text) + f'\n[task]\nkind = "samples"\npath = "{data.as_posix()}"\n'
        path = Path(tmp) / src.name
        path.write_text(proto_text, encoding="utf-8")
        proto = load_protocol(path, rig=rig or base.rig.path, steps=steps)
        return run_protocol(proto, out, progress=progress, subscribers=subscribers)


class LivePlot:
    """A live figure of a running session: error vs step and every edge's code.

    ``every``: redraw after this many steps (and at each evaluation and at the end). In a
    Jupyter kernel the figure is one output updated in place; otherwise it is written to
    ``path`` (PNG, atomically). ``frames`` counts the redraws.
    """

    def __init__(self, every: int = 10, path: str | Path | None = None) -> None:
        if every < 1:
            raise ConfigError("<LivePlot>", "every", f"expected >= 1, got {every}")
        self.every = every
        self.path = Path(path) if path is not None else None
        self.steps: list[int] = []
        self.errors: list[float] = []
        self.evals: list[tuple[int, float, float]] = []
        self.codes: list[np.ndarray] = []
        self.frames = 0
        self._handle: Any = None
        self._fig: Any = None

    def __call__(self, ev: Any) -> None:
        if isinstance(ev, StepDone):
            self.steps.append(ev.step)
            self.errors.append(float(ev.train_error))
            self.codes.append(np.asarray(ev.codes))
            if ev.step % self.every == 0:
                self.draw()
        elif isinstance(ev, Evaluated):
            self.evals.append((ev.step, float(ev.train["mse"]), float(ev.test["mse"])))
        elif isinstance(ev, RunEnded):
            self.draw()
            if self._fig is not None:
                import matplotlib.pyplot as plt

                plt.close(self._fig)

    def _figure(self) -> Any:
        import matplotlib.pyplot as plt
        from matplotlib.figure import Figure

        if self._fig is None:
            self._fig = Figure(figsize=(9, 3.4)) if self._in_kernel() else plt.figure(figsize=(9, 3.4))
        self._fig.clear()
        return self._fig

    @staticmethod
    def _in_kernel() -> bool:
        return in_kernel()

    def draw(self) -> None:
        """Redraw now (no-op before the first step)."""
        if not self.steps:
            return
        fig = self._figure()
        a, b = fig.subplots(1, 2)
        a.semilogy(self.steps, self.errors, lw=1, label="train error (batch)")
        if self.evals:
            s, tr, te = zip(*self.evals, strict=True)
            a.semilogy(s, te, ".", label="test error")
        a.set_xlabel("step")
        a.set_ylabel("error (V²)")
        a.legend(fontsize=7)
        c = np.array(self.codes)
        b.plot(self.steps, c, lw=0.8)
        b.set_xlabel("step")
        b.set_ylabel("tap code")
        b.set_title(f"codes of {c.shape[1]} edges", fontsize=9)
        fig.tight_layout()
        self.frames += 1
        if self._in_kernel():
            from IPython.display import Image, display, update_display

            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=80)
            img = Image(data=buf.getvalue(), format="png")
            if self._handle is None:
                self._handle = display(img, display_id=True)
            else:
                update_display(img, display_id=self._handle.display_id)
        elif self.path is not None:
            tmp = self.path.with_name(self.path.name + ".tmp")
            fig.savefig(tmp, format="png", dpi=80)
            os.replace(tmp, self.path)


__all__ = ["LivePlot", "run_samples", "samples_csv"]
