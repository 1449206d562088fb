"""Where the modelled bench time goes: counters of a simulated bench and the instrument floor.

The *instrument floor* of a stretch of a run is what no driver design can avoid:

* every byte exchanged with the digipot board at the baud rate (10 bits a byte), and
* the integration time of every meter reading (NPLC x 1 PLC per channel per scan).

:func:`snapshot` takes the counters of a registered bench; :func:`report` compares two
snapshots (modelled time, floor, round trips, messages).
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.bench import SimBench
from simulator.scpi_emu import PLC_S, DAQ970AEmulator


@dataclass(frozen=True)
class Counters:
    t: float
    board_bytes: int
    board_lines: int
    visa_queries: int
    visa_writes: int
    scans: int
    integration_s: float


def snapshot(bench: SimBench) -> Counters:
    """The bench's counters now."""
    queries = writes = scans = 0
    integ = 0.0
    for inst in bench.instruments.values():
        queries += inst.n_queries
        writes += inst.n_writes
        if isinstance(inst, DAQ970AEmulator):
            scans += inst.scans
            integ += inst.integration_total_s
    b = bench.board
    return Counters(bench.clock.now(), b.bytes_in + b.bytes_out, b.lines, queries, writes, scans, integ)


@dataclass(frozen=True)
class Report:
    """Differences between two snapshots, per ``steps`` steps."""

    steps: int
    modelled_s: float
    floor_s: float
    board_round_trips: float
    visa_queries: float
    visa_writes: float
    board_bytes: float

    @property
    def round_trips(self) -> float:
        return self.board_round_trips + self.visa_queries

    @property
    def ratio(self) -> float:
        return self.modelled_s / self.floor_s if self.floor_s > 0 else float("inf")

    def text(self) -> str:
        return (f"per step: modelled {self.modelled_s * 1e3:.1f} ms, instrument floor {self.floor_s * 1e3:.1f} ms "
                f"(x{self.ratio:.3f}); round trips {self.round_trips:g} (board {self.board_round_trips:g}, "
                f"VISA queries {self.visa_queries:g}); VISA writes {self.visa_writes:g}; board bytes {self.board_bytes:g}")


def report(a: Counters, b: Counters, steps: int, baud: int) -> Report:
    """Per-step averages between snapshots ``a`` and ``b`` taken ``steps`` steps apart."""
    n = max(steps, 1)
    byte_s = 10.0 / baud
    floor = (b.board_bytes - a.board_bytes) * byte_s + (b.integration_s - a.integration_s)
    return Report(steps, (b.t - a.t) / n, floor / n, (b.board_lines - a.board_lines) / n,
                  (b.visa_queries - a.visa_queries) / n, (b.visa_writes - a.visa_writes) / n,
                  (b.board_bytes - a.board_bytes) / n)


__all__ = ["Counters", "PLC_S", "Report", "report", "snapshot"]
