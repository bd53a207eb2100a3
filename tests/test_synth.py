"""The forward model: linearity, exactness against direct evaluation, seeding, noise."""

import numpy as np
import pytest
from scipy import stats

from qpiset.grid import Grid
from qpiset.physics import FriedelKernel
from qpiset.synth import (BLOCK, WhiteNoise, kernel_image, render, render_batch, simulate,
                          simulate_blocks)

from conftest import same_bits

GRID = Grid(64, 100.0)


def exact_image(kernel, grid, positions, strengths=None):
    X, Y = grid.meshgrid()
    s = np.ones(len(positions)) if strengths is None else strengths
    return sum(si * kernel.evaluate(X - x, Y - y) for si, (x, y) in zip(s, positions))


def test_superposition_is_linear(cu):
    a, b = np.array([[3.3, -12.7]]), np.array([[-20.1, 7.05]])
    both = render(cu, GRID, np.vstack([a, b]))
    assert np.allclose(both, render(cu, GRID, a) + render(cu, GRID, b), rtol=0, atol=1e-6)
    assert np.allclose(render(cu, GRID, a, [2.5]), 2.5 * render(cu, GRID, a), atol=1e-6)
    assert np.all(render(cu, GRID, np.zeros((0, 2))) == 0)


def test_fast_render_matches_exact_evaluation(cu):
    rng = np.random.default_rng(7)
    positions = rng.uniform(-50, 50, (20, 2))  # exact evaluation is slow (quadrature)
    strengths = rng.uniform(0.5, 1.5, 20)
    fast = render(cu, GRID, positions, strengths)
    exact = exact_image(cu, GRID, positions, strengths)
    assert np.max(np.abs(fast - exact)) <= 1e-4 * np.max(np.abs(exact))


def test_positions_are_continuous_not_snapped(cu):
    a = render(cu, GRID, [[0.0, 0.0]])
    b = render(cu, GRID, [[0.05, 0.0]])  # 1/30 of a pixel
    assert not np.allclose(a, b, atol=1e-4)
    assert np.allclose(b, exact_image(cu, GRID, [[0.05, 0.0]]), atol=1e-4)


def test_kernel_row_is_one_scatterer_at_origin(cu):
    k = kernel_image(cu, GRID)
    X, Y = GRID.meshgrid()
    assert np.allclose(k, cu.evaluate(X, Y), atol=1e-5)
    assert np.allclose(k, k.T) and np.allclose(k, k[::-1, ::-1])  # (0,0) between pixels


def test_same_seed_same_bytes_any_thread_count(cu):
    grid = Grid(32, 50.0)
    a = simulate(cu, grid, n=40, seed=11, max_scatterers=30, noise=0.2, threads=1)
    b = simulate(cu, grid, n=40, seed=11, max_scatterers=30, noise=0.2, threads=2)
    assert same_bits(a.images, b.images)
    assert all(same_bits(p, q) for p, q in zip(a.positions, b.positions))
    c = simulate(cu, grid, n=40, seed=12, max_scatterers=30)
    assert not np.array_equal(a.counts, c.counts)


def test_prefix_stable_and_noise_keeps_geometry(cu):
    grid = Grid(16, 30.0)
    long = simulate(cu, grid, n=BLOCK + 10, seed=5, max_scatterers=4)
    short = simulate(cu, grid, n=BLOCK + 3, seed=5, max_scatterers=4)
    assert same_bits(long.images[: BLOCK + 3], short.images)
    noisy = simulate(cu, grid, n=BLOCK + 3, seed=5, max_scatterers=4, noise=0.5)
    assert all(same_bits(p, q) for p, q in zip(noisy.positions, short.positions))
    # blocks can be made out of order (e.g. on different workers) with the same result
    (_, second, _, _), = simulate_blocks(cu, grid, BLOCK + 3, seed=5, max_scatterers=4, blocks=[1])
    assert same_bits(second, short.images[BLOCK:])


def test_counts_uniform_and_positions_inside_fov(cu):
    ds = simulate(cu, Grid(8, 100.0), n=3000, seed=2, min_scatterers=3, max_scatterers=12)
    counts = ds.counts
    assert counts.min() == 3 and counts.max() == 12
    freq = np.bincount(counts, minlength=13)[3:]
    assert stats.chisquare(freq).pvalue > 1e-3
    allpos = np.concatenate(ds.positions)
    assert np.all(np.abs(allpos) <= 50)
    # uniform over the field: each quadrant gets about a quarter
    quadrant = (allpos[:, 0] > 0) * 2 + (allpos[:, 1] > 0)
    assert stats.chisquare(np.bincount(quadrant)).pvalue > 1e-3


def test_white_noise_fraction_of_clean_std(cu):
    grid = Grid(64, 100.0)
    clean = simulate(cu, grid, n=20, seed=4, max_scatterers=50)
    noisy = simulate(cu, grid, n=20, seed=4, max_scatterers=50, noise=0.3)
    ratio = [np.std(n - c) / np.std(c) for n, c in zip(noisy.images, clean.images)]
    assert np.mean(ratio) == pytest.approx(0.3, rel=0.03)
    with pytest.raises(ValueError):
        WhiteNoise(-1.0)


def test_strengths_drawn_in_range_and_recorded(cu):
    ds = simulate(cu, Grid(16, 30.0), n=30, seed=1, max_scatterers=5, strength=(0.5, 1.5))
    s = np.concatenate(ds.strengths)
    assert s.min() >= 0.5 and s.max() < 1.5 and s.std() > 0.1
    i = int(np.argmax(ds.counts))
    again = render(cu, ds.grid, ds.positions[i], ds.strengths[i])
    assert np.allclose(again, ds.images[i], atol=1e-6)
    assert ds.meta["strength"] == [0.5, 1.5] and ds.meta["kernel"]["material"] == "Cu(111)"


def test_scatterers_outside_the_field_still_contribute(cu):
    img = render_batch(cu, GRID, [np.array([[80.0, 0.0]])])[0]
    assert np.max(np.abs(img)) > 1e-3
    assert np.allclose(img, exact_image(cu, GRID, [[80.0, 0.0]]), atol=1e-5)


def test_bad_arguments(cu):
    with pytest.raises(ValueError):
        simulate(cu, GRID, n=5, min_scatterers=5, max_scatterers=2)
    with pytest.raises(ValueError):
        render(cu, GRID, [[np.nan, 0.0]])
