"""Inverse methods measured on generated data with known truth."""

import numpy as np
import pytest

from qpiset.bench import aggregate, kernel_nmse, score_detections
from qpiset.grid import Grid
from qpiset.inverse import (MatchedFilter, PixelModel, SparseDeconvolution, blind_kernel, detect,
                            file_kernel, kernel_from_positions)
from qpiset.physics import FriedelKernel
from qpiset.physics.sampled import SampledKernel
from qpiset.synth import kernel_image, simulate

GRID = Grid(64, 100.0)


@pytest.fixture(scope="module")
def cu():
    return FriedelKernel("Cu(111)", energy=0.0)


def _score(ds, found):
    return aggregate(score_detections(t, p) for t, p in zip(ds.positions, found))


def test_file_kernel_extends_the_row_with_friedel_asymptotics(cu):
    K = SampledKernel.from_image(kernel_image(cu, GRID), GRID)
    assert K.extension == "friedel-tail" and K.anisotropy < 1e-5
    r = np.linspace(75, 140, 300)  # beyond the kernel row's reach (70.7 Å)
    assert np.max(np.abs(K.radial(r) - cu.radial(r))) < 1e-3 * np.max(np.abs(cu.radial(r)))
    # a kernel that is not Friedel-like is tapered instead, and says so
    X, Y = GRID.meshgrid()
    gauss = SampledKernel.from_image(np.exp(-(X**2 + Y**2) / 50.0) + 0.01 * np.cos(X), GRID)
    assert gauss.extension == "taper" and gauss.radial(np.array([200.0]))[0] == 0.0


def test_sparse_finds_scatterers_from_the_file_alone(cu):
    ds = simulate(cu, GRID, n=2, seed=21, min_scatterers=30, max_scatterers=30)
    found = detect(ds.images, file_kernel(ds.kernel, GRID), GRID, method="sparse")
    s = _score(ds, found)
    assert s.f1 >= 0.99 and s.rmse <= 0.15


def test_sparse_with_noise(cu):
    ds = simulate(cu, GRID, n=2, seed=22, min_scatterers=40, max_scatterers=40, noise=0.3)
    found = detect(ds.images, file_kernel(ds.kernel, GRID), GRID, method="sparse")
    assert _score(ds, found).f1 >= 0.95


def test_sparse_in_a_crowded_noisy_image(cu):
    """100 scatterers at noise 0.3: unresolved pairs must be split, not lost."""
    ds = simulate(cu, GRID, n=1, seed=23, min_scatterers=100, max_scatterers=100, noise=0.3)
    found = detect(ds.images, file_kernel(ds.kernel, GRID), GRID, method="sparse")
    s = _score(ds, found)
    assert s.f1 >= 0.95 and abs(s.count_error) <= 5


def test_sparse_does_not_invent_scatterers_in_heavy_noise(cu):
    """Noise 1.0 x image std with few scatterers: every extra one must buy its prior odds."""
    ds = simulate(cu, GRID, n=6, seed=24, min_scatterers=2, max_scatterers=8, noise=1.0)
    found = detect(ds.images, file_kernel(ds.kernel, GRID), GRID, method="sparse")
    s = _score(ds, found)
    assert s.precision >= 0.85 and s.recall >= 0.9


def test_refine_strength_prior_is_a_map_fit(cu):
    from qpiset.inverse.refine import refine
    from qpiset.synth import render

    pos = np.array([[0.0, 0.0], [1.0, 0.0]])  # a pair closer than a pixel
    img = render(cu, GRID, pos, strengths=np.array([1.3, 0.7])).ravel()
    model = PixelModel(cu, GRID)
    free = refine(model, img, pos, np.array([1.3, 0.7]), max_iter=5)
    tied = refine(model, img, pos, np.array([1.3, 0.7]), max_iter=30,
                  prior=([0, 1], 1.0, 1e6))  # prior far stronger than the data
    assert np.allclose(free.strengths, [1.3, 0.7], atol=1e-3) and free.rss < 1e-6
    assert np.allclose(tied.strengths, 1.0, atol=0.02)
    resid = img - model.image(tied.positions, tied.strengths) - tied.background
    assert tied.rss == pytest.approx(float(resid @ resid))  # rss is the data term only


def test_sparse_separates_a_close_pair(cu):
    pos = np.array([[0.3, 0.2], [2.4, 0.9], [-20.0, 15.0], [25.0, -18.0]])
    from qpiset.synth import render

    img = render(cu, GRID, pos)
    det = SparseDeconvolution(PixelModel(file_kernel(kernel_image(cu, GRID), GRID), GRID))
    found, strengths = det.detect(img)
    s = score_detections(pos, found)
    assert s.tp == 4 and s.n_pred == 4
    assert np.allclose(strengths, 1.0, atol=0.1)


def test_matched_filter_on_isolated_scatterers(cu):
    pos = np.array([[-30.0, -25.0], [20.3, 28.1], [31.0, -30.4]])
    from qpiset.synth import render

    img = render(cu, GRID, pos)
    found = MatchedFilter(PixelModel(cu, GRID))(img)
    s = score_detections(pos, found)
    assert s.tp == 3 and s.rmse < 0.6


def test_kernel_from_known_positions(cu):
    ds = simulate(cu, GRID, n=4, seed=23, min_scatterers=20, max_scatterers=60)
    est = kernel_from_positions(ds.images, ds.positions, GRID)
    assert kernel_nmse(est.image(GRID), ds.kernel) < 1e-3


def test_blind_kernel_recovers_the_friedel_pattern(cu):
    small = Grid(32, 60.0)  # small, to keep the test quick
    ds = simulate(cu, small, n=2, seed=24, min_scatterers=10, max_scatterers=10)
    est, positions = blind_kernel(ds.images, small, iterations=2, phases=4)
    assert kernel_nmse(est.image(small), ds.kernel) < 0.1
