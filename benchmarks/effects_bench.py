"""The talk's physical effects on the simulated bench: ``protocols/effects.toml`` over many boards.

For each seed s (0 … N−1) a board is drawn (the rig file's ``[simulator] seed`` = 1000 + s: other
R_AB, wiper resistances, INL; every non-ideality of ``protocols/rigs/sim-effects.toml`` on) and,
through the real ``labnet`` commands on the emulated wire:

1. ``labnet calibrate protocols/effects-calibrate.toml --rig <board>`` — the code → conductance table;
2. ``labnet probe protocols/effects-probe.toml --rig <board>`` — random voltages at five nodes, at the
   mid-scale power-up codes (measured D_eff);
3. ``labnet run protocols/effects.toml --rig <board> --seed s`` — training;
4. ``labnet probe protocols/effects-probe.toml --rig <board> --codes-from <run>`` — the same probe on
   the trained codes.

The Hessian quantities (λ_min in S, the softest mode's share |c₀|/Σ|c_n| of the task response,
the model D_eff = (Σλ⁻²)²/Σλ⁻⁴, ḡ = sqrt(Σλ⁻²) in Ω; the share is counted on |c₀|/Σ|c_n| as in
:mod:`labnet.insilico.effects`, the signed share c₀/Σc_n — ``report.json``'s ``softest_share`` —
printed beside it) are computed over the free nodes of the
voltage-driven free state (ground and the three inputs held) from the *calibrated* conductances
of the first and the last step's codes; the probe's D_eff is the participation ratio of the
measured response covariance over the four undriven free nodes (five drives, 200 patterns).

Prints one line per seed and the fraction of seeds showing each effect; ``--json`` writes the
rows. ``python benchmarks/effects_bench.py --seeds 20`` takes ~4 min here (2 cores, loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labnet.config.rigfile import load_rig  # noqa: E402
from labnet.core.analysis import task_modes  # noqa: E402
from labnet.experiments.calibration.table import CalibrationTable  # noqa: E402
from labnet.session.reader import read_session  # noqa: E402

RIG = ROOT / "protocols" / "rigs" / "sim-effects.toml"
PROTOCOL = ROOT / "protocols" / "effects.toml"
CALIBRATE = ROOT / "protocols" / "effects-calibrate.toml"
PROBE = ROOT / "protocols" / "effects-probe.toml"
INPUTS_V = np.array([1.0, 0.3, 0.5])  # protocols/effects.toml [task] inputs_v (n7, n3, n0)
#: The effects counted (name, True when the effect appears).
EFFECTS = ("lam_falls", "share_rises", "deff_model_falls", "deff_probe_falls", "gbar_rises")


def labnet(*args: str | Path) -> Path:
    """Run one ``labnet`` command; the session folder it names on its last ``session``/``table`` line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "labnet", *map(str, args)], capture_output=True, text=True,
                         env=env, cwd=ROOT, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"labnet {' '.join(map(str, args))}: exit {out.returncode}\n{out.stderr}")
    found = re.findall(r"^\s+(?:session|table)\s+(\S+)", out.stdout, re.M)
    path = Path(found[-1])
    return path if path.is_dir() else path.parent


def board(seed: int, folder: Path, rig: Path = RIG) -> Path:
    """A copy of ``rig`` with another part draw (``[simulator] seed`` = 1000 + seed)."""
    text = rig.read_text()
    sim = text.index("[simulator]")
    head, tail = text[:sim], text[sim:]
    tail = re.sub(r"^seed = \d+", f"seed = {1000 + seed}", tail, count=1, flags=re.M)
    path = folder / f"board-{seed}.toml"
    path.write_text(head + tail)
    return path


def probe_deff(folder: Path) -> float:
    """The measured D_eff of a probe session (``probe.csv``, last row)."""
    import pandas as pd

    return float(pd.read_csv(folder / "probe.csv", comment="#")["deff"].iloc[-1])


def quantities(net: object, k: np.ndarray) -> dict[str, float]:
    tm = task_modes(net, k, INPUTS_V)  # type: ignore[arg-type]
    return {"lam_min": float(tm.lam[0]), "share": tm.abs_share_soft, "signed_share": tm.share_soft,
            "deff_model": tm.deff, "gbar": tm.gbar}


def one_seed(seed: int, folder: Path, rig_file: Path = RIG, protocol: Path = PROTOCOL, probe: Path = PROBE,
             calibrate: Path = CALIBRATE) -> dict[str, float | bool | int]:
    """Calibrate, probe, train, probe one board; the before/after quantities and the effects."""
    rig = board(seed, folder, rig_file)
    out = folder / f"seed-{seed}"
    cal = labnet("calibrate", calibrate, "--rig", rig, "--out", out)
    p0 = labnet("probe", probe, "--rig", rig, "--out", out)
    run = labnet("run", protocol, "--rig", rig, "--seed", str(seed), "--out", out, "--quiet")
    p1 = labnet("probe", probe, "--rig", rig, "--codes-from", run, "--out", out)
    spec = load_rig(rig)
    net = spec.network
    table = CalibrationTable.from_csv(cal / "calibration.csv", net.n_edges)
    rows = read_session(run)
    cols = [f"code_e{e}" for e in range(net.n_edges)]
    codes0 = rows[cols].iloc[0].to_numpy(dtype=np.int64)
    codes1 = rows[cols].iloc[-1].to_numpy(dtype=np.int64)
    b, a = quantities(net, table.conductance(codes0)), quantities(net, table.conductance(codes1))
    r: dict[str, float | bool | int] = {"seed": seed, "err_before": float(rows["error"].dropna().iloc[0]),
                                        "err_after": float(rows["error"].dropna().iloc[-1])}
    for key in b:
        r[f"{key}_before"], r[f"{key}_after"] = b[key], a[key]
    r["deff_probe_before"], r["deff_probe_after"] = probe_deff(p0), probe_deff(p1)
    r["lam_falls"] = a["lam_min"] < b["lam_min"]
    r["share_rises"] = a["share"] > b["share"]
    r["deff_model_falls"] = a["deff_model"] < b["deff_model"]
    r["deff_probe_falls"] = float(r["deff_probe_after"]) < float(r["deff_probe_before"])
    r["gbar_rises"] = a["gbar"] > b["gbar"]
    r["signed_share_rises"] = a["signed_share"] > b["signed_share"]
    return r


def fractions(rows: list[dict[str, float | bool | int]]) -> dict[str, float]:
    """Fraction of seeds showing each of :data:`EFFECTS` (and the signed share c₀/Σc_n rising, not counted)."""
    return {e: float(np.mean([bool(r[e]) for r in rows])) for e in (*EFFECTS, "signed_share_rises")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None, help="folder for the sessions (default: a temporary one)")
    ap.add_argument("--json", type=Path, default=None, help="write the per-seed rows here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        t0 = time.perf_counter()
        print("seed  err V² before→after  λ_min mS before→after  |share|  signed share  D_eff model  D_eff probe  ḡ kΩ")
        for s in range(args.seeds):
            r = one_seed(s, folder)
            rows.append(r)
            print(f"{s:4d}  {r['err_before']:.3f}→{r['err_after']:.4f}  "
                  f"{1e3 * float(r['lam_min_before']):.4f}→{1e3 * float(r['lam_min_after']):.4f}  "
                  f"{float(r['share_before']):.2f}→{float(r['share_after']):.2f}  "
                  f"{float(r['signed_share_before']):.3f}→{float(r['signed_share_after']):.3f}  "
                  f"{float(r['deff_model_before']):.3f}→{float(r['deff_model_after']):.3f}  "
                  f"{float(r['deff_probe_before']):.3f}→{float(r['deff_probe_after']):.3f}  "
                  f"{1e-3 * float(r['gbar_before']):.2f}→{1e-3 * float(r['gbar_after']):.2f}", flush=True)
        fr = fractions(rows)
        print(f"{args.seeds} seeds, {time.perf_counter() - t0:.0f} s: " + ", ".join(f"{k} {v:.2f}" for k, v in fr.items()))
        if args.json:
            args.json.write_text(json.dumps({"fractions": fr, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
