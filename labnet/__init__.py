"""labnet: physical-learning experiments on resistor networks, on the bench and in a simulator.

Public API (see README.md):

* :class:`Network` and the generators :func:`random_network`, :func:`square_lattice`,
  :func:`delaunay_network`, :func:`breadboard16`;
* physics: :func:`solve`, :class:`Solver`, :func:`edge_currents`, :func:`dissipated_power`;
* rules: :mod:`labnet.core.rules` (:func:`coupled_learning`, :class:`Rule`, …);
* tasks: :mod:`labnet.core.tasks`;
* files and runs: :func:`load_protocol`, :func:`load_rig`, :func:`build_rig`,
  :func:`run_protocol`, :class:`Engine`, :class:`Rig`;
* notebooks: :func:`run_samples` (your own samples, a session written), :class:`LivePlot`
  (a live figure subscriber), :func:`read_session` (a session CSV as a DataFrame).
"""

from labnet.core.errors import ConfigError, InstrumentError, LabnetError, LimitError
from labnet.core.generators import breadboard16, delaunay_network, random_network, square_lattice
from labnet.core.network import Network
from labnet.core.physics import Solver, dissipated_power, edge_currents, solve

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "InstrumentError",
    "LabnetError",
    "LimitError",
    "Network",
    "Solver",
    "breadboard16",
    "build_rig",
    "delaunay_network",
    "dissipated_power",
    "edge_currents",
    "load_protocol",
    "load_rig",
    "random_network",
    "run_protocol",
    "solve",
    "square_lattice",
    "Engine",
    "LivePlot",
    "Rig",
    "read_session",
    "run_samples",
    "__version__",
]


def __getattr__(name: str):  # lazy: keep `import labnet` light
    if name in ("load_protocol",):
        from labnet.config.protocol import load_protocol

        return load_protocol
    if name == "load_rig":
        from labnet.config.rigfile import load_rig

        return load_rig
    if name == "build_rig":
        from labnet.app.build import build_rig

        return build_rig
    if name == "run_protocol":
        from labnet.app.runner import run_protocol

        return run_protocol
    if name in ("run_samples", "LivePlot"):
        from labnet.app import notebook

        return getattr(notebook, name)
    if name == "read_session":
        from labnet.session.reader import read_session

        return read_session
    if name == "Engine":
        from labnet.experiments.engine import Engine

        return Engine
    if name == "Rig":
        from labnet.bench.rig import Rig

        return Rig
    raise AttributeError(name)
