"""Learning tasks: samples of input voltages and target output voltages, and error measures.

Inputs are voltages (V) applied at the network's input nodes, shape (S, n_inputs); targets are
output-node voltages (V), shape (S, n_outputs). A resistor network is a passive linear map
from input to output voltages (each free node is a weighted average of the held ones), so
targets are built to be reachable: non-negative weights with row sums below one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import numpy as np


@dataclass(frozen=True)
class Samples:
    """A set of samples: ``inputs`` (S, n_in) and ``targets`` (S, n_out) in volts; ``labels`` (S,) for classes."""

    inputs: np.ndarray
    targets: np.ndarray
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


@dataclass(frozen=True)
class Task:
    """A task: train and test samples and how outputs are scored.

    Attributes
    ----------
    kind : str
        ``"allostery"``, ``"regression"`` or ``"classification"``.
    train, test : Samples
    patterns : array (C, n_out) or None
        Class target patterns (V) for classification; readout is the nearest pattern.
    class_names : tuple of str
    data_file : str
        The user's data file the samples came from ("" for generated or shipped data); a session
        keeps a copy of it (``dataset.csv``).
    """

    kind: str
    train: Samples
    test: Samples
    patterns: np.ndarray | None = None
    class_names: tuple[str, ...] = field(default_factory=tuple)
    data_file: str = ""

    def sample_error(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Per-sample squared error, mean over outputs (V²): shape (S,) for (S, n_out) inputs."""
        d = np.atleast_2d(outputs) - np.atleast_2d(targets)
        return (d * d).sum(axis=1) / d.shape[1]  # np.mean's arithmetic (sum, then divide), less overhead

    def predict(self, outputs: np.ndarray) -> np.ndarray:
        """Class index of each output vector (nearest target pattern), shape (S,)."""
        if self.patterns is None:
            raise ValueError(f"task {self.kind!r} has no classes")
        o = np.atleast_2d(outputs)
        d = ((o[:, None, :] - self.patterns[None, :, :]) ** 2).sum(axis=2)
        return np.argmin(d, axis=1)

    def score(self, outputs: np.ndarray, samples: Samples) -> dict[str, float]:
        """``{"mse": ...}`` and, for classification, ``{"accuracy": ...}`` over ``samples``."""
        out = {"mse": float(np.mean(self.sample_error(outputs, samples.targets)))}
        if self.patterns is not None and samples.labels is not None:
            out["accuracy"] = float(np.mean(self.predict(outputs) == samples.labels))
        return out


def allostery(inputs_v: np.ndarray, targets_v: np.ndarray) -> Task:
    """One fixed input pattern (n_in,) and the output voltages (n_out,) it should produce.

    The test set is the same single sample (allostery has nothing held out).
    """
    s = Samples(np.atleast_2d(np.asarray(inputs_v, float)), np.atleast_2d(np.asarray(targets_v, float)))
    return Task("allostery", s, s)


def regression(
    n_inputs: int,
    n_outputs: int,
    *,
    n_train: int,
    n_test: int,
    rng: np.random.Generator,
    input_range_v: tuple[float, float] = (0.0, 1.0),
    weight_range: tuple[float, float] = (0.05, 0.45),
    max_row_sum: float = 0.8,
    weights: np.ndarray | None = None,
) -> tuple[Task, np.ndarray]:
    """A linear map y = W x: ``weights`` (n_outputs, n_inputs) when given, else a seeded random W
    with W ≥ 0 and row sums ≤ ``max_row_sum``.

    Returns the task and W, shape (n_outputs, n_inputs). Inputs (V) are uniform in
    ``input_range_v``; targets y = W x (V).
    """
    if weights is None:
        w = rng.uniform(*weight_range, size=(n_outputs, n_inputs))
        rows = w.sum(axis=1, keepdims=True)
        w = np.where(rows > max_row_sum, w * (max_row_sum / rows), w)
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (n_outputs, n_inputs):
            raise ValueError(f"weights: expected shape ({n_outputs}, {n_inputs}), got {w.shape}")
    x = rng.uniform(*input_range_v, size=(n_train + n_test, n_inputs))
    y = x @ w.T
    return Task("regression", Samples(x[:n_train], y[:n_train]), Samples(x[n_train:], y[n_train:])), w


def load_iris() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The Iris data shipped with labnet: features (150, 4) in cm, labels (150,), class names."""
    text = resources.files("labnet.core").joinpath("data/iris.csv").read_text()
    rows = [r.split(",") for r in text.splitlines() if r and not r.startswith("#")][1:]
    names = tuple(dict.fromkeys(r[4] for r in rows))
    x = np.array([[float(v) for v in r[:4]] for r in rows])
    y = np.array([names.index(r[4]) for r in rows])
    return x, y, names


def default_patterns(n_classes: int, n_outputs: int) -> np.ndarray:
    """Target patterns (V), shape (n_classes, n_outputs): 0.3 V on the class's own output, 0.1 V on the others."""
    pats = np.full((n_classes, n_outputs), 0.1)
    pats[np.arange(n_classes), np.arange(n_classes) % n_outputs] += 0.2
    return pats


def classification(
    features: np.ndarray,
    labels: np.ndarray,
    class_names: tuple[str, ...],
    *,
    rng: np.random.Generator,
    n_test: int,
    input_range_v: tuple[float, float] = (0.0, 1.0),
    patterns_v: np.ndarray | None = None,
    n_outputs: int | None = None,
    data_file: str = "",
) -> Task:
    """Classification of ``features`` (N, n_in), scaled per column to ``input_range_v`` (V), into
    ``labels`` (N,) in 0..C−1; class c's target is row c of ``patterns_v`` (C, n_out) (V), the
    readout the nearest pattern. ``n_test`` seeded random samples are held out (no stratification)."""
    x = np.asarray(features, dtype=float)
    y = np.asarray(labels, dtype=np.int64)
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)  # a constant column maps to the low end
    v = input_range_v[0] + (x - lo) / span * (input_range_v[1] - input_range_v[0])
    n_classes = len(class_names)
    pats = (default_patterns(n_classes, n_outputs or n_classes) if patterns_v is None
            else np.asarray(patterns_v, float))
    t = pats[y]
    order = rng.permutation(len(y))
    te, tr = order[:n_test], order[n_test:]
    return Task("classification", Samples(v[tr], t[tr], y[tr]), Samples(v[te], t[te], y[te]),
                patterns=pats, class_names=class_names, data_file=data_file)


def classification_iris(
    *,
    rng: np.random.Generator,
    n_test: int = 30,
    input_range_v: tuple[float, float] = (0.0, 1.0),
    patterns_v: np.ndarray | None = None,
) -> Task:
    """Iris: 4 features scaled to ``input_range_v`` -> 3 outputs; class by nearest target pattern.

    The split is stratified-free but seeded: ``n_test`` random samples are held out. Default
    patterns put the class's own output at 0.3 V and the others at 0.1 V.
    """
    x, y, names = load_iris()
    return classification(x, y, names, rng=rng, n_test=n_test, input_range_v=input_range_v, patterns_v=patterns_v)
