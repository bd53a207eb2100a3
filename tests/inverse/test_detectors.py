"""Inverse methods measured on generated data with known truth: the detectors."""

import numpy as np
import pytest

from qpiset.bench import aggregate, score_detections
from qpiset.core import Grid
from qpiset.forward import Forward, simulate
from qpiset.inverse import (MatchedFilter, SparseDeconvolution, detect, file_kernel,
                            file_operator)
from qpiset.physics import FriedelKernel
from qpiset.physics.sampled import SampledKernel

GRID = Grid(64, 100.0)


@pytest.fixture(scope="module")
def cu():
    return FriedelKernel("Cu(111)", energy=0.0)


def _score(ds, found):
    return aggregate(score_detections(t, p) for t, p in zip(ds.positions, found.positions))


def test_file_kernel_extends_the_row_with_friedel_asymptotics(cu):
    K = SampledKernel.from_image(Forward(cu, GRID).kernel_row, GRID)
    assert K.extension == "friedel-tail" and K.anisotropy < 1e-5
    r = np.linspace(75, 140, 300)  # beyond the kernel row's reach (70.7 Å)
    assert np.max(np.abs(K.radial(r) - cu.radial(r))) < 1e-3 * np.max(np.abs(cu.radial(r)))
    # a kernel that is not Friedel-like is tapered instead, and says so
    X, Y = GRID.meshgrid()
    gauss = SampledKernel.from_image(np.exp(-(X**2 + Y**2) / 50.0) + 0.01 * np.cos(X), GRID)
    assert gauss.extension == "taper" and gauss.radial(np.array([200.0]))[0] == 0.0


def test_file_operator_uses_the_file_row_and_its_continuous_model(cu):
    row = Forward(cu, GRID).kernel_row
    op = file_operator(row, GRID)
    assert isinstance(op.kernel, SampledKernel) and np.array_equal(op.kernel_row, row)
    assert op.kernel == file_kernel(row, GRID)
    physics = file_operator(row, GRID, kernel=cu)
    assert physics.kernel is cu and np.array_equal(physics.kernel_row, row)


def test_sparse_finds_scatterers_from_the_file_alone(cu):
    ds = simulate(cu, GRID, n=2, seed=21, min_scatterers=30, max_scatterers=30)
    found = detect(ds.images, file_operator(ds.kernel, GRID), method="sparse")
    s = _score(ds, found)
    assert s.f1 >= 0.99 and s.rmse <= 0.15


def test_sparse_with_noise(cu):
    ds = simulate(cu, GRID, n=2, seed=22, min_scatterers=40, max_scatterers=40, noise=0.3)
    found = detect(ds.images, file_operator(ds.kernel, GRID), method="sparse")
    assert _score(ds, found).f1 >= 0.95


def test_sparse_in_a_crowded_noisy_image(cu):
    """100 scatterers at noise 0.3: unresolved pairs must be split, not lost."""
    ds = simulate(cu, GRID, n=1, seed=23, min_scatterers=100, max_scatterers=100, noise=0.3)
    found = detect(ds.images, file_operator(ds.kernel, GRID), method="sparse")
    s = _score(ds, found)
    assert s.f1 >= 0.95 and abs(s.count_error) <= 5


def test_sparse_does_not_invent_scatterers_in_heavy_noise(cu):
    """Noise 1.0 x image std with few scatterers: every extra one must buy its prior odds."""
    ds = simulate(cu, GRID, n=6, seed=24, min_scatterers=2, max_scatterers=8, noise=1.0)
    found = detect(ds.images, file_operator(ds.kernel, GRID), method="sparse")
    s = _score(ds, found)
    assert s.precision >= 0.85 and s.recall >= 0.9


def test_refine_strength_prior_is_a_map_fit(cu):
    from qpiset.inverse.refine import refine

    pos = np.array([[0.0, 0.0], [1.0, 0.0]])  # a pair closer than a pixel
    op = Forward(cu, GRID)
    img = op.render(pos, strengths=np.array([1.3, 0.7])).ravel()
    free = refine(op, img, pos, np.array([1.3, 0.7]), max_iter=5)
    tied = refine(op, img, pos, np.array([1.3, 0.7]), max_iter=30,
                  prior=([0, 1], 1.0, 1e6))  # prior far stronger than the data
    assert np.allclose(free.strengths, [1.3, 0.7], atol=1e-3) and free.rss < 1e-6
    assert np.allclose(tied.strengths, 1.0, atol=0.02)
    resid = img - op.image(tied.positions, tied.strengths) - tied.background
    assert tied.rss == pytest.approx(float(resid @ resid))  # rss is the data term only


def test_sparse_separates_a_close_pair(cu):
    pos = np.array([[0.3, 0.2], [2.4, 0.9], [-20.0, 15.0], [25.0, -18.0]])
    op = Forward(cu, GRID)
    img = op.render(pos)
    d = SparseDeconvolution().detect(img[None], file_operator(op.kernel_row, GRID))
    found, strengths = d.positions[0], d.strengths[0]
    s = score_detections(pos, found)
    assert s.tp == 4 and s.n_pred == 4
    assert np.allclose(strengths, 1.0, atol=0.1)


def test_matched_filter_on_isolated_scatterers(cu):
    pos = np.array([[-30.0, -25.0], [20.3, 28.1], [31.0, -30.4]])
    op = Forward(cu, GRID)
    img = op.render(pos)
    found = MatchedFilter().detect(img[None], op).positions[0]
    s = score_detections(pos, found)
    assert s.tp == 3 and s.rmse < 0.6


def test_a_refused_input_or_another_operator_leaves_the_detector_usable():
    from qpiset.physics import LatticeKernel

    grid = Grid(32, 50.0)
    good = Forward(FriedelKernel(), grid)
    other = Forward(LatticeKernel("square", energy=0.1, mu=-1.0, reach=60.0), grid)
    image = good.render([[-8.3, 2.1], [6.6, -4.0]])[None]
    for det in (SparseDeconvolution(), MatchedFilter()):
        first = det.detect(image, good).positions[0]
        with pytest.raises(ValueError, match="px"):
            det.detect(np.zeros((1, 16, 16)), good)
        det.detect(other.render([[1.0, 2.0]])[None], other)  # an anisotropic kernel: fitted
        again = det.detect(image, good).positions[0]
        assert np.array_equal(first, again), type(det).__name__


def test_the_matched_filter_sets_up_on_an_empty_batch():
    op = Forward(FriedelKernel(), Grid(32, 50.0))
    det = MatchedFilter()
    assert len(det.detect(np.empty((0, 32, 32)), op)) == 0
    assert det._bound is not None and det._bound[0] is op  # the benchmark's untimed warm-up
