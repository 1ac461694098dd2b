"""The report as a person sees it: rendered by headless Chromium, screenshotted, inspected.

Needs Debian's `chromium` (`.ci/run` installs it); skipped with the reason when it is absent.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import numpy as np
import pytest
from matplotlib import image as mpimg
from test_report import PAGE_IMAGES, ablation_runs, images, table_rows

from rlvr.analysis import analyze
from rlvr.analysis.report import render_html

_BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser() -> str:
    for name in _BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no headless Chromium on PATH (apt-get install chromium; .ci/run does this)")


def _screenshot(browser: str, page, shot, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
             f"--screenshot={shot}", f"--window-size=1280,{height}", page.as_uri()],
            check=True, capture_output=True, timeout=120,
        )


def test_report_renders_with_images_and_tables_in_chromium(tmp_path):
    browser = _browser()
    page = tmp_path / "report.html"
    html = render_html(analyze(ablation_runs(tmp_path / "runs"), window=2))
    page.write_text(html, encoding="utf-8")
    found = images(html)
    assert set(found) == PAGE_IMAGES and all(p.size for p in found.values())
    assert all(n > 0 for n in table_rows(html))

    shot = tmp_path / "shot.png"
    _screenshot(browser, page, shot, 10000)
    pixels = mpimg.imread(shot)[..., :3]  # (H, W, 3) floats in [0, 1]
    assert pixels.shape[:2] == (10000, 1280)
    assert pixels.std() > 0.05, "the screenshot is blank"
    # Text and table rules are grey; the figures are the only saturated colours on the page,
    # so seeing them proves Chromium decoded and laid out the embedded PNGs.
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert (saturation > 0.3).mean() > 0.01, "no figure is visible in the screenshot"
    # The top of the page (title, headline, runs table) holds dark text on white.
    top = pixels[:600]
    assert (top.mean(axis=2) < 0.35).mean() > 0.005, "no text at the top of the page"
    assert np.isfinite(pixels).all()
