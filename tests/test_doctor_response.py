"""``labnet doctor --responses``: the supplies' step responses measured on the (simulated) bench.

The E36312A's settling is not documented in the stored manuals (see tests/test_settling.py), so
its response is measured: each output stepped alone, the node read after a grid of delays
(equivalent-time sampling) at the meter's shortest integration time (0.02 PLC: DAQ970A/34970A
NPLC table), τ from the slope of ln(residual). Checked against the simulated supplies'
``supply_tau_s``/``supply_dead_s``, and end to end: a planned run on the rig-file lines doctor
suggests reads no state before it has settled to the tolerance.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from test_settling import _run_recording

from labnet.app.cli import main
from labnet.app.doctor import run_doctor
from labnet.config.rigfile import load_rig
from labnet.experiments.response_check import fit_response

ROOT = Path(__file__).resolve().parent.parent
SIM16 = ROOT / "protocols" / "rigs" / "sim16.toml"


def _variant(tmp_path: Path, name: str, tau: float, dead: float, stated_tau: float | None = None) -> Path:
    """sim16 as bench ``name`` with simulated supplies of response (dead, τ), stating ``stated_tau``
    (default: τ) for them."""
    text = SIM16.read_text().replace('name = "sim16"', f'name = "{name}"').replace("sim://sim16", f"sim://{name}")
    text = text.replace("::sim16::", f"::{name}::")
    text = re.sub(r"^supply_tau_s = .*$", f"supply_tau_s = {tau!r}\nsupply_dead_s = {dead!r}", text, flags=re.M)
    text = text.replace("response_tau_s = 4e-4", f"response_tau_s = {tau if stated_tau is None else stated_tau!r}")
    f = tmp_path / f"{name}.toml"
    f.write_text(text)
    return f


def test_fit_recovers_an_exponential_and_flags_a_ramp() -> None:
    d = np.array([0.0, 1e-4, 2e-4, 4e-4, 8e-4, 1.6e-3, 3.2e-3])
    r = 0.3 * np.exp(-(d + 3e-4) / 5e-4)  # read 0.3 ms after the command
    f = fit_response("n1", "psu1.1", d, r, 0.5, 1e-6)
    assert f.tau_s == pytest.approx(5e-4, rel=1e-9) and f.first_order
    assert f.dead_s == 0.0  # A = 0.3·e^-0.6 < 0.5: no dead time to count
    dl = np.array([0.0, 4e-4, 8e-4, 1.2e-3, 1.6e-3, 2.4e-3, 3.2e-3, 4.8e-3])
    late = fit_response("n1", "psu1.1", dl, np.minimum(0.5, 0.5 * np.exp(-(dl - 1e-3) / 5e-4)), 0.5, 1e-6)
    assert late.points == 5  # the flat readings of the dead time are left out
    assert late.tau_s == pytest.approx(5e-4, rel=1e-9) and late.dead_s == pytest.approx(1e-3, rel=1e-9)
    ramp = np.clip(0.5 - 250.0 * (d + 1e-4), 0, None)  # slew-limited at 250 V/s
    assert not fit_response("n1", "psu1.1", d, ramp, 0.5, 1e-6).first_order
    fast = fit_response("n7", "smu.1", d, np.full(d.size, 1e-7), 0.5, 1e-6)
    assert fast.tau_s is None and fast.points == 0  # below the noise at the first reading
    spike = r.copy()
    spike[4:6] = 0.0  # gone under the noise ...
    spike[-1] = 1.0  # ... then a spike: not part of the response
    fit = fit_response("n1", "psu1.1", d, spike, 0.5, 1e-6)
    assert fit.points == 4 and fit.tau_s == pytest.approx(5e-4, rel=1e-9)
    noisy = r + np.random.default_rng(0).normal(0, 2e-4, d.size)  # noise on a true exponential
    assert fit_response("n1", "psu1.1", d, noisy, 0.5, 2e-4).first_order


@pytest.mark.parametrize(("tau", "dead"), [(4e-4, 0.0), (2e-3, 1e-3)])
def test_doctor_measures_the_simulated_supplies(tmp_path: Path, tau: float, dead: float) -> None:
    """Every E36312A channel's τ within 10 % of the simulated one; the effective dead time between
    0 and the true one (the reading's own latency is part of it); the 2450 (to 0.1 % in 200 µs,
    its datasheet) settles before the meter's first reading."""
    rig = _variant(tmp_path, f"resp{int(tau * 1e6)}", tau, dead)
    report = run_doctor(load_rig(rig), responses=True)
    assert report.exit_code == 0, [f.text for f in report.findings]
    fits = {f.node: f for f in report.responses or []}
    assert set(fits) == {"n1", "n2", "n3", "n4", "n5", "n6", "n7"}
    for n in ("n1", "n2", "n3", "n4", "n5", "n6"):
        f = fits[n]
        assert f.first_order and f.tau_s == pytest.approx(tau, rel=0.1), (n, f.tau_s)
        assert f.dead_s is not None and 0.0 <= f.dead_s <= dead + 1e-12
        assert f.points >= 4 and abs(f.step_v - 0.5) < 0.01
    assert fits["n7"].tau_s is None
    text = report.text()
    assert "[instruments.sources.psu1]: response_tau_s = " in text and "its documented tau 0.029 ms" in text


def test_a_planned_run_on_doctors_lines_waits_out_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulated supplies of τ = 2 ms after a 1 ms dead time, stated in the rig file as doctor
    measures them: no reading of a planned run sees more than the tolerated residual."""
    rig = _variant(tmp_path, "respslow", 2e-3, 1e-3)
    report = run_doctor(load_rig(rig), responses=True)
    lines = [ln for ln in report.text().splitlines() if "[instruments.sources.psu" in ln]
    vals = [re.search(r"response_tau_s = (\S+)\s+response_dead_s = (\S+)", ln) for ln in lines]
    assert all(vals) and len(vals) == 2
    text = rig.read_text()
    for prefix, m in zip(("psu1", "psu2"), vals):
        assert m is not None
        head = f"[instruments.sources.{prefix}]\n"
        i = text.index(head) + len(head)
        block_end = text.index("response_tau_s = 0.002", i)
        text = text[:block_end] + f"response_tau_s = {m.group(1)}\nresponse_dead_s = {m.group(2)}\n#" + text[block_end:]
    seen, eps = _run_recording(tmp_path, monkeypatch, text, 20)
    assert max(seen) <= eps * (1 + 1e-6)


def test_a_stated_response_faster_than_measured_is_a_finding(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rig = _variant(tmp_path, "respfast", 4e-4, 0.0, stated_tau=1e-4)
    assert main(["doctor", str(rig), "--responses", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    kinds = [f["kind"] for f in out["findings"]]
    assert kinds.count("response_stated_too_fast") == 2
    assert any("instruments.sources.psu1.response_tau_s = 0.0001 s" in f["text"] for f in out["findings"])
    assert all(math.isfinite(r["step_v"]) for r in out["responses"])
