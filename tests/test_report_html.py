"""report.html opens in a real browser: headless Chromium (Debian package ``chromium``) renders
the self-contained page to a screenshot (kept in the test's output folder, ``report_html.png``),
which must show the page: the figures' many colours, not a blank or text-only page. The same
check on an empty page must fail, so the assertion can tell the two apart.

Skipped with a reason when Chromium is not installed and ``CI`` is not set; CI installs it
(.ci/run) and a missing browser fails there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from labnet.app.cli import main

ROOT = Path(__file__).resolve().parent.parent
BROWSER = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
if BROWSER is None and os.environ.get("CI"):
    raise RuntimeError("CI must install chromium (apt-get install chromium) for the report.html test")
pytestmark = pytest.mark.skipif(BROWSER is None, reason="headless browser test needs chromium "
                                "(apt-get install chromium; CI installs it)")


def screenshot(page: Path, out: Path) -> np.ndarray:
    """Render ``page`` in headless Chromium at 1280x2000 px; return the RGB image (H, W, 3) in [0, 1]."""
    import matplotlib.image as mpimg

    assert BROWSER is not None
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,2000",
           f"--user-data-dir={out.parent / '.chromium'}", f"--screenshot={out}", page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.is_file(), f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return np.asarray(mpimg.imread(out))[..., :3]


def rendered(img: np.ndarray) -> tuple[bool, str]:
    """Whether a screenshot shows a rendered report: ink over >2 % of the page, pixel spread,
    and the colours of plotted figures (>200 distinct)."""
    ink = 1 - float(np.all(img > 0.97, axis=-1).mean())
    colours = len(np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    spread = float(img.std())
    why = f"ink {ink:.3f}, std {spread:.3f}, {colours} colours"
    return ink > 0.02 and spread > 0.05 and colours > 200, why


def test_report_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    text = (ROOT / "protocols" / "allostery.toml").read_text()
    proto = tmp_path / "allostery.toml"
    proto.write_text(text.replace('rig = "rigs/sim16.toml"', f'rig = "{ROOT / "protocols" / "rigs" / "sim16.toml"}"'))
    assert main(["run", str(proto), "--steps", "20", "--out", str(tmp_path / "s"), "--quiet"]) == 0
    session = next((tmp_path / "s").iterdir())
    assert main(["report", str(session)]) == 0
    html = session / "report.html"
    moved = tmp_path / "elsewhere" / "report.html"  # self-contained: works without the PNGs beside it
    moved.parent.mkdir()
    shutil.copyfile(html, moved)
    img = screenshot(moved, tmp_path / "report_html.png")
    assert img.shape[:2] == (2000, 1280)
    ok, why = rendered(img)
    assert ok, f"report.html did not render: {why} (screenshot {tmp_path / 'report_html.png'})"

    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body><p>labnet</p></body></html>")
    ok, why = rendered(screenshot(blank, tmp_path / "blank.png"))
    assert not ok, f"the check cannot tell an empty page from a report: {why}"
