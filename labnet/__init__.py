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

from typing import TYPE_CHECKING, Any

from labnet.core.errors import ConfigError, InstrumentError, LabnetError, LimitError

if TYPE_CHECKING:
    from labnet.app.build import build_rig
    from labnet.app.notebook import LivePlot, run_samples
    from labnet.app.runner import run_protocol
    from labnet.bench.rig import Rig
    from labnet.config.protocol import load_protocol
    from labnet.config.rigfile import load_rig
    from labnet.core.generators import breadboard16, delaunay_network, random_network, square_lattice
    from labnet.core.network import Network
    from labnet.core.physics import Solver, dissipated_power, edge_currents, solve
    from labnet.experiments.engine import Engine
    from labnet.session.reader import read_session

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


#: Public name -> the module that defines it. Imported on first use, so `import labnet` (and the
#: `labnet` command, whose first ~0.3 s were numpy/scipy imports a Ctrl-C turned into a traceback)
#: stays light.
_LAZY = {
    "breadboard16": "labnet.core.generators", "delaunay_network": "labnet.core.generators",
    "random_network": "labnet.core.generators", "square_lattice": "labnet.core.generators",
    "Network": "labnet.core.network", "Solver": "labnet.core.physics", "dissipated_power": "labnet.core.physics",
    "edge_currents": "labnet.core.physics", "solve": "labnet.core.physics",
    "load_protocol": "labnet.config.protocol", "load_rig": "labnet.config.rigfile", "build_rig": "labnet.app.build",
    "run_protocol": "labnet.app.runner", "Engine": "labnet.experiments.engine", "Rig": "labnet.bench.rig",
    "run_samples": "labnet.app.notebook", "LivePlot": "labnet.app.notebook", "read_session": "labnet.session.reader",
}


def __getattr__(name: str) -> Any:  # lazy: keep `import labnet` light
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'labnet' has no attribute {name!r}")
