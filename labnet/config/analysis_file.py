"""A training protocol's optional ``[analysis]`` and ``[calibration]`` tables, validated.

``[analysis]`` becomes an :class:`~labnet.experiments.settings.AnalysisSettings` (what
:mod:`labnet.experiments.tracking` records during the run); ``[calibration] table`` names a
calibration CSV (relative to the protocol file) that becomes the rig's model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labnet.config.rigfile import RigSpec
from labnet.config.schema import Table, default
from labnet.config.tables import load_bound_table
from labnet.core.errors import ConfigError
from labnet.core.network import Network
from labnet.experiments.settings import AnalysisSettings
from labnet.experiments.tracking import SESSION_TABLE


def parse_analysis(raw: Any, file: str, network: Network, max_v: float) -> AnalysisSettings:
    """Validate an ``[analysis]`` table (``max_v``: the rig's source limit, V); ConfigError
    naming file and key on a problem."""
    t = Table(raw, file, "analysis")
    drive = tuple(t.strs("probe_drive", list(network.inputs)))
    for n in drive:
        if n not in network.source_channels:
            raise t.error("probe_drive", f"node {n!r} has no source channel")

    def d(name: str) -> Any:
        return default(AnalysisSettings, name)

    s = AnalysisSettings(
        track_every=t.int("track_every", d("track_every"), lo=1),
        probe_every=t.int("probe_every", d("probe_every"), lo=0),
        probe_samples=t.int("probe_samples", d("probe_samples"), lo=3, hi=100_000),
        probe_v_max=t.float("probe_v_max", min(d("probe_v_max"), max_v), lo=0.0, hi=max_v, lo_open=True),
        probe_drive=drive,
        probe_bootstrap=t.int("probe_bootstrap", d("probe_bootstrap"), lo=0, hi=100_000),
    )
    t.finish()
    return s


def parse_calibration_ref(raw: Any, file: str, spec: RigSpec, sim_seed: int | None = None) -> dict[str, str]:
    """Validate a training protocol's ``[calibration]`` table: ``table`` must name an undamaged
    calibration CSV (relative to the protocol file) bound to the rig file ``spec``
    (:func:`labnet.config.tables.load_bound_table`)."""
    t = Table(raw, file, "calibration")
    rel = Path(t.str("table"))
    t.finish()
    path = rel if rel.is_absolute() else Path(file).parent / rel
    copy = Path(file).parent / SESSION_TABLE
    if not path.exists() and copy.exists():  # a session folder: the run's own copy of the table
        path = copy
    if not path.exists():
        raise ConfigError(file, "calibration.table", f"calibration table {path} not found")
    load_bound_table(path, spec, sim_seed)
    return {"table": str(path.resolve())}


def validate_extra(extra: dict[str, Any], file: str, network: Network, spec: RigSpec,
                   sim_seed: int | None = None) -> dict[str, Any]:
    """Validate the ``[analysis]`` and ``[calibration]`` tables a protocol passes through
    (``spec``: its rig file, whose source limit bounds probes and to which a table is bound).

    Returns ``{"analysis": AnalysisSettings, "calibration": {"table": absolute path}}`` (the
    keys the protocol has).
    """
    out = dict(extra)
    if "analysis" in out:
        out["analysis"] = parse_analysis(out["analysis"], file, network, spec.limits.max_source_v)
    if "calibration" in out:
        out["calibration"] = parse_calibration_ref(out["calibration"], file, spec, sim_seed)
    return out


__all__ = ["parse_analysis", "parse_calibration_ref", "validate_extra"]
