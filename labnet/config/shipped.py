"""The protocol and rig files shipped with labnet (``protocols/`` in the source tree).

``protocols/`` is installed as the package data ``labnet.protocols`` (see ``pyproject.toml``),
so the default rig is found after a plain ``pip install .`` from any working directory.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEFAULT_RIG = "rigs/sim16.toml"


def shipped_root() -> Path:
    """The folder of the shipped files: ``labnet/protocols`` in an installed wheel, else the
    source tree's ``protocols/`` beside the ``labnet`` package (a checkout, an editable install).
    """
    try:
        spec = importlib.util.find_spec("labnet.protocols")
    except ModuleNotFoundError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "protocols"


def shipped_path(relative: str) -> Path:
    """Path of a shipped file, e.g. ``shipped_path("rigs/sim16.toml")``.

    Raises ``FileNotFoundError`` naming the file if the installation lacks it.
    """
    path = shipped_root() / relative
    if not path.is_file():
        raise FileNotFoundError(f"shipped file {relative} not found in the labnet installation ({path})")
    return path


def default_rig_path() -> Path:
    """The default rig: the simulated 16-edge breadboard (real drivers over the emulated wire)."""
    return shipped_path(DEFAULT_RIG)
