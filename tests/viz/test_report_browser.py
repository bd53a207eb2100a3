"""The HTML report in a real headless browser (Debian's chromium).

Skipped where no browser is installed, unless QPISET_REQUIRE_BROWSER=1 (set by .ci/run,
which installs chromium), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from qpiset.bench import run_benchmark
from qpiset.core import Grid
from qpiset.forward import simulate
from qpiset.physics import FriedelKernel
from qpiset.viz import build_report

pytestmark = pytest.mark.browser

BROWSER = os.environ.get("QPISET_CHROMIUM") or shutil.which("chromium") or shutil.which(
    "chromium-browser")
if BROWSER is None and os.environ.get("QPISET_REQUIRE_BROWSER") != "1":
    pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium package)",
                allow_module_level=True)

# flags for a closed network and a root user (see the machine notes)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=5000"]


def browse(page, tmp_path, *extra) -> subprocess.CompletedProcess:
    assert BROWSER is not None, "QPISET_REQUIRE_BROWSER=1 but no chromium found"
    profile = tmp_path / f"profile{len(list(tmp_path.iterdir()))}"
    return subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={profile}", *extra,
                           page.as_uri()], capture_output=True, text=True, timeout=120)


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    ds = simulate(FriedelKernel(), Grid(64, 100.0), n=6, seed=2, min_scatterers=5,
                  max_scatterers=60, noise=0.2)
    results = run_benchmark(ds, ["matched"])
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(build_report(ds, label="browser test", results=results, gallery=4,
                                 kernel_model=FriedelKernel()), encoding="utf-8")
    return path


def test_the_console_check_catches_errors(tmp_path):
    """The check below can fail: a page with a script error and a broken figure."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><img class="fig" alt="broken" '
                   'src="data:image/png;base64,AAAA"><script>noSuchFunction();</script>'
                   "</body></html>")
    out = browse(bad, tmp_path, "--dump-dom")
    lines = console_lines(out.stderr)
    assert any("noSuchFunction" in line for line in lines), out.stderr[-2000:]


def test_report_opens_without_console_errors(report, tmp_path):
    out = browse(report, tmp_path, "--dump-dom")
    assert out.returncode == 0, out.stderr[-2000:]
    assert console_lines(out.stderr) == [], console_lines(out.stderr)
    n = out.stdout.count('class="fig"')
    assert n >= 8 and f'data-figures-loaded="{n}/{n}"' in out.stdout


def test_report_screenshot_shows_the_figures(report, tmp_path):
    from matplotlib.image import imread

    shot = tmp_path / "shot.png"
    out = browse(report, tmp_path, f"--screenshot={shot}", "--window-size=1200,2400")
    assert out.returncode == 0 and shot.exists(), out.stderr[-2000:]
    rgb = imread(shot)[..., :3]
    assert rgb.shape[:2] == (2400, 1200)
    ink = rgb.sum(axis=-1) < 2.7
    assert ink.mean() > 0.08  # the same page without its figures inks about 4 %
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    reds = np.mean((r > 0.55) & (g < 0.35) & (b < 0.35))  # RdBu_r images and the histogram
    blues = np.mean((b > 0.45) & (r < 0.3))
    assert reds > 0.003 and blues > 0.003, (reds, blues)
