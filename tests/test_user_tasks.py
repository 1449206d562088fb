"""Training on a user's own task: regression onto a given map, classification of a user's CSV."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from labnet.config.protocol import SESSION_DATA, load_protocol
from tests.test_bad_input import Spy, _check, _run, spy  # noqa: F401 - the spy fixture

ROOT = Path(__file__).resolve().parent.parent
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"

CSV_PROTOCOL = f"""
[protocol]
kind = "train"
rig = "{SIM16.as_posix()}"
seed = 1
[task]
kind = "classification"
dataset = "csv"
path = "data.csv"
{{extra}}
[rule]
kind = "stochastic"
[train]
steps = 3
"""

MAP_PROTOCOL = f"""
[protocol]
kind = "train"
rig = "{SIM16.as_posix()}"
[task]
kind = "regression"
n_train = 20
n_test = 5
{{extra}}
[rule]
kind = "stochastic"
[train]
steps = 3
"""

DATA = "a,b,label\n0.1,2.0,x\n0.4,1.0,y\n0.2,1.5,x\n0.9,0.5,y\n0.3,1.9,x\n0.8,0.7,y\n"


def _write(tmp: Path, text: str, data: str | None = DATA) -> Path:
    if data is not None:
        (tmp / "data.csv").write_text(data, encoding="utf-8")
    p = tmp / "p.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_regression_onto_a_given_map(tmp_path: Path) -> None:
    p = _write(tmp_path, MAP_PROTOCOL.replace("{extra}", "weights = [[0.3, 0.15], [0.1, 0.4]]"), None)
    task = load_protocol(p).build_task()
    w = np.array([[0.3, 0.15], [0.1, 0.4]])
    for s in (task.train, task.test):
        np.testing.assert_array_equal(s.targets, s.inputs @ w.T)
    assert len(task.train) == 20 and len(task.test) == 5


def test_classification_from_a_users_csv(tmp_path: Path) -> None:
    p = _write(tmp_path, CSV_PROTOCOL.replace("{extra}", "n_test = 2\ninput_range_v = [0.2, 1.0]"))
    task = load_protocol(p).build_task()
    assert task.class_names == ("x", "y") and task.data_file == str((tmp_path / "data.csv").resolve())
    x = np.concatenate([task.train.inputs, task.test.inputs])
    assert x.shape == (6, 2) and np.isclose(x.min(), 0.2) and np.isclose(x.max(), 1.0)  # scaled per column
    labels = np.concatenate([task.train.labels, task.test.labels])
    np.testing.assert_array_equal(np.sort(labels), [0, 0, 0, 1, 1, 1])
    # default patterns: 0.3 V on the class's own output, 0.1 V elsewhere
    np.testing.assert_allclose(task.patterns, [[0.3, 0.1], [0.1, 0.3]])
    # the class of each sample is the one whose pattern is its target
    for s in (task.train, task.test):
        np.testing.assert_array_equal(task.patterns[s.labels], s.targets)


def test_csv_session_keeps_its_data_and_resumes_from_the_copy(tmp_path: Path) -> None:
    """A run copies the data into the session folder; the session's protocol copy reads it there
    (the original may be gone), so `labnet resume` does not depend on the user's file."""
    from labnet.app.runner import run_protocol

    p = _write(tmp_path, CSV_PROTOCOL.replace("{extra}", "n_test = 2"))
    outcome = run_protocol(load_protocol(p), out=tmp_path / "s", progress=False)
    folder = Path(outcome.session)
    assert (folder / SESSION_DATA).read_text(encoding="utf-8") == DATA
    shutil.move(tmp_path / "data.csv", tmp_path / "moved.csv")
    again = load_protocol(folder / "protocol.toml", rig=folder / "rig.toml").build_task()
    np.testing.assert_array_equal(again.train.inputs, load_protocol(folder / "protocol.toml",
                                                                    rig=folder / "rig.toml").build_task().train.inputs)
    assert again.class_names == ("x", "y")


def test_shipped_user_task_examples_learn() -> None:
    """protocols/classification_csv.toml and regression_map.toml validate (their runs are in the README)."""
    for name in ("classification_csv.toml", "regression_map.toml"):
        task = load_protocol(ROOT / "protocols" / name).build_task()
        assert len(task.train) > 0


BAD = [
    ("map-shape", MAP_PROTOCOL, "weights = [[0.3, 0.15]]", DATA, ("task.weights", "2 rows")),
    ("map-negative", MAP_PROTOCOL, "weights = [[0.3, -0.1], [0.1, 0.4]]", DATA, ("task.weights", "passive")),
    ("map-row-sum", MAP_PROTOCOL, "weights = [[0.8, 0.5], [0.1, 0.4]]", DATA, ("task.weights", "row sums")),
    ("map-and-range", MAP_PROTOCOL, "weights = [[0.3, 0.1], [0.1, 0.4]]\nweight_range = [0.1, 0.2]", DATA,
     ("task.weights", "either")),
    ("map-bool", MAP_PROTOCOL, "weights = [[true, 0.1], [0.1, 0.4]]", DATA, ("task.weights",)),
    ("csv-missing", CSV_PROTOCOL, "", None, ("task.path", "not found")),
    ("csv-no-label", CSV_PROTOCOL, 'label_column = "class"', DATA, ("task.label_column", "no column 'class'")),
    ("csv-text-feature", CSV_PROTOCOL, "", "a,b,label\n0.1,red,x\n0.4,blue,y\n0.3,red,x\n", ("task.path", "numeric")),
    ("csv-nan", CSV_PROTOCOL, "", "a,b,label\n0.1,2.0,x\n0.4,,y\n0.3,1.0,x\n0.5,1.0,y\n", ("task.path", "line 3")),
    ("csv-one-class", CSV_PROTOCOL, "", "a,b,label\n0.1,2.0,x\n0.4,1.0,x\n0.3,1.0,x\n", ("task.path", "2 classes")),
    ("csv-features-vs-inputs", CSV_PROTOCOL, "", "a,b,c,label\n1,2,3,x\n2,3,4,y\n3,4,5,x\n", ("roles", "3 features")),
    ("csv-too-many-classes", CSV_PROTOCOL, "", "a,b,label\n1,2,x\n2,3,y\n3,4,z\n4,5,x\n", ("roles", "3 classes")),
    ("csv-patterns-shape", CSV_PROTOCOL, "n_test = 2\npatterns_v = [[0.3, 0.1]]", DATA, ("task.patterns_v", "2 rows")),
    ("csv-n-test", CSV_PROTOCOL, "n_test = 6", DATA, ("task.n_test", "<= 5")),
    ("csv-empty", CSV_PROTOCOL, "", "", ("task.path", "cannot read")),
    ("dataset-unknown", CSV_PROTOCOL.replace('dataset = "csv"', 'dataset = "mnist"'), "", DATA, ("task.dataset",)),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_user_task(case: tuple, tmp_path: Path, spy: Spy, capsys: pytest.CaptureFixture) -> None:  # noqa: F811
    _, template, extra, data, expect = case
    p = _write(tmp_path, template.replace("{extra}", extra), data)
    code, err = _run(["run", str(p), "--quiet", "--out", str(tmp_path / "s")], capsys)
    _check(code, err, (str(p), *expect), spy)
