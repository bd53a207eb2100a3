"""The simulator: seeding, prefix stability, count and position statistics, noise,
strengths."""

import numpy as np
import pytest
from scipy import stats

from helpers import same_bits
from qpiset.core import Grid, Recipe
from qpiset.forward import BLOCK, Forward, simulate, simulate_blocks
from qpiset.forward.noise import White

GRID = Grid(64, 100.0)


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
    (_, second, _, _), = simulate_blocks(cu, grid, Recipe(n=BLOCK + 3, seed=5, max_scatterers=4),
                                         blocks=[1])
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
        White(-1.0)


def test_strengths_drawn_in_range_and_recorded(cu):
    ds = simulate(cu, Grid(16, 30.0), n=30, seed=1, max_scatterers=5, strength=(0.5, 1.5))
    s = np.concatenate(ds.strengths)
    assert s.min() >= 0.5 and s.max() < 1.5 and s.std() > 0.1
    i = int(np.argmax(ds.counts))
    again = Forward(cu, ds.grid).render(ds.positions[i], ds.strengths[i])
    assert np.allclose(again, ds.images[i], atol=1e-6)
    assert ds.meta["strength"] == [0.5, 1.5] and ds.meta["kernel"]["material"] == "Cu(111)"


def test_bad_arguments(cu):
    with pytest.raises(ValueError):
        simulate(cu, GRID, n=5, min_scatterers=5, max_scatterers=2)


def test_simulate_takes_a_recipe_a_number_or_fields():
    from qpiset.core import Recipe
    from qpiset.physics import FriedelKernel

    k, g = FriedelKernel(), Grid(16, 20.0)
    a = simulate(k, g, Recipe(n=3, seed=2, max_scatterers=4))
    b = simulate(k, g, 3, seed=2, max_scatterers=4)  # the former positional n
    c = simulate(k, g, n=3, seed=2, max_scatterers=4, noise=0)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.images, c.images)
    assert a.meta == b.meta == c.meta
    with pytest.raises(TypeError, match="Recipe"):
        simulate(k, g, "3")
