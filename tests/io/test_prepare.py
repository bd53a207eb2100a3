"""Preparing measured maps (issue 16): levelling, cropping, spoiled rows, resampling, each
against a synthetic map whose answer is known, and the spoiled rows of a real scan."""

from pathlib import Path

import numpy as np
import pytest

import qpiset
from qpiset.core import Measurement
from qpiset.io import crop, keep_good_rows, level_lines, level_plane, resample, spoiled_rows

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"


def _map(data, pitch=2.0):
    ny, nx = data.shape[-2:]
    return Measurement(np.asarray(data, float), np.arange(nx) * pitch, np.arange(ny) * pitch,
                       "Z", "m", path="synthetic")


def test_levelling_removes_planes_and_line_offsets_only():
    rng = np.random.default_rng(1)
    ny, nx = 40, 50
    yy, xx = np.mgrid[0:ny, 0:nx]
    signal = np.cos(0.7 * xx) * np.cos(0.5 * yy)
    grid = _map(np.stack([signal + 3 + 0.2 * xx - 0.1 * yy, 2 * signal - 1 + 0.05 * yy]))
    flat = level_plane(grid)
    assert flat.is_grid and flat.shape == grid.shape and grid.data[0, 0, 0] != flat.data[0, 0, 0]
    for k, amp in enumerate((1, 2)):  # each slice its own plane
        residual = flat.data[k] - amp * signal
        assert np.ptp(residual) < 0.05 * amp  # what is left is the signal's own plane part
    offsets = rng.normal(size=(ny, 1)) * 5
    slopes = rng.normal(size=(ny, 1)) * 0.1
    lines = level_lines(_map(signal + offsets))
    assert np.allclose(lines.data - np.median(lines.data, axis=1, keepdims=True),
                       signal - np.median(signal, axis=1, keepdims=True))
    tilted = level_lines(_map(signal + offsets + slopes * (xx - 24.5)), order=1)
    fitted = level_lines(_map(signal), order=1)
    assert np.allclose(tilted.data, fitted.data, atol=1e-9)
    with pytest.raises(ValueError, match="order must be 0 or 1"):
        level_lines(_map(signal), order=2)


def test_crop_keeps_the_map_frame():
    m = _map(np.arange(20 * 30, dtype=float).reshape(20, 30), pitch=2.5)
    c = crop(m, x=(1.0, 2.0), y=(0.5, 3.0), unit="nm")  # 10-20 Å, 5-30 Å
    assert c.x[0] == 10.0 and c.x[-1] == 17.5 and c.y[0] == 5.0 and c.y[-1] == 27.5
    assert c.data[0, 0] == m.data[2, 4] and c.shape == (10, 4)
    assert crop(m, x=(3, 7), unit="px").shape == (20, 4) and crop(m, y=(2, 5), unit="A").shape == (1, 30)
    with pytest.raises(ValueError, match="holds no pixel"):
        crop(m, x=(100, 200), unit="nm")
    with pytest.raises(ValueError, match="unit must be"):
        crop(m, x=(1, 2), unit="mm")


def test_spoiled_rows_are_found_and_the_longest_good_run_kept():
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:60, 0:64]
    data = np.cos(0.6 * xx + 0.3 * yy) + 0.05 * rng.normal(size=xx.shape)
    data[10:13] += 8.0  # a tip change for three lines
    data[40] += rng.normal(size=64) * 3  # one noisy line
    m = _map(data)
    bad = spoiled_rows(m)
    assert np.flatnonzero(bad).tolist() == [10, 11, 12, 40]
    kept = keep_good_rows(m, bad)
    assert kept.cropped == (13, 40) and kept.shape == (27, 64) and kept.y[0] == 26.0
    again = keep_good_rows(kept, np.arange(27) < 2)  # rows of a cropped map count on
    assert again.cropped == (15, 40)
    with pytest.raises(ValueError, match="every row is spoiled"):
        keep_good_rows(m, np.ones(60, bool))


def test_resampling_keeps_the_wavelength_and_the_frame():
    x = np.arange(200) * 0.5
    wave = np.cos(2 * np.pi * x / 14.4)  # a 14.4 Å standing wave sampled at 0.5 Å
    m = _map(np.tile(wave, (120, 1)), pitch=0.5)
    r = resample(m, 100 / 64)  # to the dataset's pitch
    assert r.pitch == pytest.approx((1.5625, 1.5625)) and r.x[0] == 0.0
    assert np.allclose(r.data[5], np.cos(2 * np.pi * r.x / 14.4), atol=2e-3)
    with pytest.raises(ValueError, match="pitch must be positive"):
        resample(m, 0.0)


@pytest.mark.skipif(not REALDATA.is_dir(), reason=f"the real measurements are not at {REALDATA}")
def test_the_island_scan_keeps_its_unspoiled_middle():
    """The realdata README: rows above ~80 and below ~450 are spoiled by tip changes."""
    m = qpiset.read(REALDATA / "createc-probeflow/createc_scan_island_60nm.dat")
    kept = keep_good_rows(m)
    first, stop = kept.cropped
    assert 80 <= first <= 120 and 430 <= stop <= 455, kept.cropped
    def spread(x):  # of the line medians after plane levelling: the tip's jumps
        return np.ptp(np.median(level_plane(x).data, axis=1))

    assert spread(kept) < 0.1 * spread(m)
