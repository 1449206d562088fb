"""Fault campaign: seeded faulted dry runs through the real drivers over the emulated wire.

    python benchmarks/fault_campaign.py --runs 200 --out /tmp/campaign

Every run trains a short allostery protocol on the default simulated rig (sim16: the digipot
board, DAQ970A and supplies behind their real drivers) while the emulated transports inject
seeded faults — dropped and garbled bytes, replies delayed past the timeout, board resets,
the port unplugged and back, SCPI errors in the queue, wildly-off meter readings, VISA
timeouts. A run that did not complete is resumed without faults. The script prints the
totals (see labnet.app.campaign for what is checked) and writes ``campaign.json`` with every run.
Exit code 0 when no source was left on, no row was lost or corrupted, no error escaped as anything
but a labnet error (a raw pyserial/pyvisa exception) and every run completed (first time or after
its resume).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from labnet.app.campaign import run_campaign


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200, help="number of faulted runs (default 200)")
    ap.add_argument("--first-seed", type=int, default=0, help="seed of the first run (default 0)")
    ap.add_argument("--steps", type=int, default=20, help="training steps per run (default 20)")
    ap.add_argument("--rig", type=Path, help="rig file (default: protocols/rigs/sim16.toml)")
    ap.add_argument("--out", type=Path, help="folder for the sessions (default: a temporary folder)")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per run")
    a = ap.parse_args(argv)
    out = a.out or Path(tempfile.mkdtemp(prefix="labnet-campaign-"))
    summary, _ = run_campaign(out, a.runs, first_seed=a.first_seed, rig=a.rig, steps=a.steps, verbose=a.verbose)
    print(json.dumps(dataclasses.asdict(summary), indent=1))
    print(f"sessions and campaign.json in {out}")
    ok = (summary.sources_left_on == 0 and summary.rows_lost == 0 and summary.rows_corrupted == 0
          and summary.rows_incomplete == 0 and summary.effective_rows_mismatch == 0 and summary.not_completed == 0
          and summary.raw_exceptions == 0 and summary.rows_codes_off_board == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
