"""Calibrate protocol files (``[protocol] kind = "calibrate"``, ``[calibration]``), validated.

A bare rig file is a calibrate protocol too: it runs with the default
:class:`~labnet.experiments.settings.CalibrationSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labnet.config.protocol import read_head
from labnet.config.rigfile import RigSpec, load_rig
from labnet.config.schema import Table, default, read_toml
from labnet.experiments.settings import CORRECTIONS, SCALES, CalibrationSettings


@dataclass
class CalibrateProtocol:
    """A validated ``kind = "calibrate"`` protocol file (or the defaults for a bare rig file)."""

    path: Path | None
    name: str
    seed: int
    rig: RigSpec
    settings: CalibrationSettings
    text: str = ""


def load_calibrate_protocol(path: str | Path, *, rig: str | Path | None = None) -> CalibrateProtocol:
    """Read a calibrate protocol, or a rig file (then default settings); validate everything."""
    p = Path(path)
    data = read_toml(p)
    if "protocol" not in data:
        spec = load_rig(p if rig is None else rig)
        return CalibrateProtocol(None, "calibrate", 0, spec, CalibrationSettings())
    f = str(p)
    top = Table(data, f)
    head = read_head(top, p, ["calibrate"], rig)
    name, seed = head.name, head.seed
    spec = load_rig(head.rig_path)
    t = top.table("calibration", required=False)
    settings = parse_settings(t, spec)
    top.finish()
    return CalibrateProtocol(p, name, seed, spec, settings, p.read_text(encoding="utf-8"))


def parse_settings(t: Table, spec: RigSpec) -> CalibrationSettings:
    """Validate a ``[calibration]`` table against the rig's code limits."""
    lo, hi = spec.limits.code_min, spec.limits.code_max
    codes = tuple(int(c) for c in t.floats("codes", lo=lo, hi=hi)) if t.has("codes") else default(
        CalibrationSettings, "codes")
    if t.has("codes") and any(int(c) != c for c in t.raw("codes")):
        raise t.error("codes", f"expected integer codes, got {t.raw('codes')!r}"[:120])
    if codes and len(set(codes)) < 3:
        raise t.error("codes", f"expected at least 3 distinct codes (the part model has up to 3 parameters), got {list(codes)}")

    def d(name: str) -> Any:
        return default(CalibrationSettings, name)

    s = CalibrationSettings(
        codes=codes,
        pairs=t.bool("pairs", d("pairs")),
        current_fraction=t.float("current_fraction", d("current_fraction"), lo=0.0, hi=1.0, lo_open=True),
        scans=t.int("scans", d("scans"), lo=1, hi=1000),
        settle_s=t.float("settle_s", d("settle_s"), lo=0.0, hi=60.0),
        scale=t.str("scale", d("scale"), choices=SCALES),
        correction=t.str("correction", d("correction"), choices=CORRECTIONS),
        meter_input_ohm=t.float("meter_input_ohm", d("meter_input_ohm"), lo=0.0),
    )
    t.finish()
    return s


__all__ = ["CalibrateProtocol", "load_calibrate_protocol", "parse_settings"]
