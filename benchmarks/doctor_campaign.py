"""``labnet doctor`` campaign: detection rate over seeded single wiring faults, false alarms on clean rigs.

    python benchmarks/doctor_campaign.py [--faults 50] [--clean 20] [--seed 0] [--rig protocols/rigs/sim16.toml]
                                         [--json results.json]

Each case runs doctor on the emulated-wire simulator exactly as ``labnet doctor`` does
(:mod:`labnet.app.doctor_campaign`); prints one line per case, the rates per fault kind and the
wall time per doctor run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labnet.app.doctor_campaign import campaign, rates  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faults", type=int, default=50)
    ap.add_argument("--clean", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rig", type=Path, default=ROOT / "protocols" / "rigs" / "sim16.toml")
    ap.add_argument("--json", type=Path, help="write every outcome and the rates as JSON")
    a = ap.parse_args()
    t0 = time.perf_counter()
    out = campaign(a.rig, a.faults, a.clean, a.seed)
    wall = time.perf_counter() - t0
    for o in out:
        mark = "named" if o.named else ("found, misnamed" if o.found else "MISSED") if o.case.kind != "clean" \
            else ("FALSE ALARM" if o.found else "clean")
        print(f"{o.case.kind:24s} {o.case.toml or '-':44s} -> {mark}: {o.said}")
    r = rates(out)
    print()
    for kind, v in r.items():
        if isinstance(v, dict) and "named" in v:
            print(f"{kind:24s} {v['cases']:3d} cases: found {v['found']}, named {v['named']}")
    f, c = r["faults"], r["clean"]
    print(f"faults: {f['found']}/{f['cases']} found ({100 * f['found'] / max(f['cases'], 1):.0f} %), "
          f"{f['named']}/{f['cases']} named correctly ({100 * f['named'] / max(f['cases'], 1):.0f} %)")
    print(f"clean rigs: {c['false_alarms']}/{c['cases']} false alarms")
    print(f"wall time: {wall:.1f} s for {len(out)} doctor runs ({wall / max(len(out), 1):.2f} s per run)")
    if a.json:
        a.json.write_text(json.dumps({"rates": r, "outcomes": [o.to_dict() for o in out]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
