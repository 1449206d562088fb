"""Allostery through the real firmware (protocols/rigs/sim16-firmware.toml): error drop,
modelled bench time per step, host CPU per step, MCU time simulated per wall second, and
the part models' timing table with the firmware's margins.

    python benchmarks/firmware_mcu.py [STEPS]
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(steps: int = 300) -> None:
    from labnet.app.cli import main as cli
    from simulator import protocol_simavr

    out = Path(tempfile.mkdtemp(prefix="fw-bench-"))
    t0, c0 = time.perf_counter(), time.process_time()
    rc = cli(["run", str(ROOT / "protocols" / "allostery.toml"), "--rig", str(ROOT / "protocols" / "rigs" /
              "sim16-firmware.toml"), "--steps", str(steps), "--out", str(out), "--quiet"])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert rc == 0
    (board,) = protocol_simavr._BOARDS.values()  # noqa: SLF001 - the run's emulated board
    checks = board.timing_checks()
    board.mcu.barrier()
    mcu_s, busy_s = board.mcu.mcu_seconds, board.mcu.busy_ns / 1e9
    bench_s = board.clock.now()
    protocol_simavr.close_all()
    harness_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    hcpu = harness_cpu.ru_utime + harness_cpu.ru_stime
    print(f"steps {steps}: wall {wall:.2f} s, host (python) CPU {cpu / steps * 1e3:.2f} ms/step, "
          f"harness CPU {hcpu / steps * 1e3:.2f} ms/step (incl. builds if any)")
    print(f"modelled bench time {bench_s:.1f} s = {bench_s / steps * 1e3:.0f} ms/step (whole run, evaluations included)")
    print(f"MCU time simulated {mcu_s:.2f} s: {mcu_s / busy_s:.1f} MCU-s per simulating wall-s, "
          f"{mcu_s / wall:.2f} MCU-s per wall-s of the run")
    print(f"{'check':44s} {'datasheet':22s} {'limit':>10s} {'firmware worst':>15s} {'margin':>10s} {'n':>7s}")
    for c in checks:
        if c.count:
            unit = "Hz" if c.kind == "max" else "ns"
            print(f"{c.name:44s} {c.source:22s} {c.limit:10.4g} {c.worst:15.6g} {c.margin:10.4g} {c.count:7d} {unit}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
