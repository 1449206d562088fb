"""The meter's range against the sources (``[instruments.meter] range_v``).

A DAQ970A/34970A range reads up to 1.2 × its value (20 % overrange: 34970A User's Guide, DC
voltage ranges); a larger reading is an overload (``9.9E+37``). By the maximum principle no node
of a resistive network goes beyond the largest voltage a source may put on one (a channel's
limit, a current source's VLIM), so the range must hold that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labnet.bench.limits import Limits
from labnet.config.schema import Table
from labnet.core.network import Network


def check_meter_range(m: Table, range_v: float, network: Network, limits: Limits, sources: Mapping[str, Any]) -> None:
    """Refuse a range that a node could overload (ConfigError naming ``instruments.meter.range_v``)."""
    top = max([limits.channel_limit(f) for f in network.source_channels.values()]
              + [float(v.options["vlim_v"]) for v in sources.values() if "vlim_v" in v.options])
    if 1.2 * range_v < top:
        raise m.error("range_v", f"the {range_v:g} V range reads up to {1.2 * range_v:g} V (its 20 % overrange), but a "
                                 f"source may put {top:g} V on a node; expected a range of at least {top / 1.2:g} V")


__all__ = ["check_meter_range"]
