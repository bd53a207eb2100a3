"""The forward operator: linearity, exactness against direct evaluation, continuous
positions, the kernel row."""

import numpy as np
import pytest

from qpiset.core import Grid
from qpiset.forward import Forward

GRID = Grid(64, 100.0)


def exact_image(kernel, grid, positions, strengths=None):
    X, Y = grid.meshgrid()
    s = np.ones(len(positions)) if strengths is None else strengths
    return sum(si * kernel.evaluate(X - x, Y - y) for si, (x, y) in zip(s, positions))


@pytest.fixture(scope="module")
def op(cu):
    return Forward(cu, GRID)


def test_superposition_is_linear(op):
    a, b = np.array([[3.3, -12.7]]), np.array([[-20.1, 7.05]])
    both = op.render(np.vstack([a, b]))
    assert np.allclose(both, op.render(a) + op.render(b), rtol=0, atol=1e-6)
    assert np.allclose(op.render(a, [2.5]), 2.5 * op.render(a), atol=1e-6)
    assert np.all(op.render(np.zeros((0, 2))) == 0)


@pytest.mark.slow  # ~5-9 s: exact evaluation is quadrature
def test_fast_render_matches_exact_evaluation(cu, op):
    rng = np.random.default_rng(7)
    positions = rng.uniform(-50, 50, (20, 2))  # exact evaluation is slow (quadrature)
    strengths = rng.uniform(0.5, 1.5, 20)
    fast = op.render(positions, strengths)
    exact = exact_image(cu, GRID, positions, strengths)
    assert np.max(np.abs(fast - exact)) <= 1e-4 * np.max(np.abs(exact))


def test_positions_are_continuous_not_snapped(cu, op):
    a = op.render([[0.0, 0.0]])
    b = op.render([[0.05, 0.0]])  # 1/30 of a pixel
    assert not np.allclose(a, b, atol=1e-4)
    assert np.allclose(b, exact_image(cu, GRID, [[0.05, 0.0]]), atol=1e-4)


def test_kernel_row_is_one_scatterer_at_origin(cu, op):
    k = op.kernel_row
    X, Y = GRID.meshgrid()
    assert np.allclose(k, cu.evaluate(X, Y), atol=1e-5)
    assert np.allclose(k, k.T) and np.allclose(k, k[::-1, ::-1])  # (0,0) between pixels


def test_scatterers_outside_the_field_still_contribute(cu, op):
    img = op.render_batch([np.array([[80.0, 0.0]])])[0]
    assert np.max(np.abs(img)) > 1e-3
    assert np.allclose(img, exact_image(cu, GRID, [[80.0, 0.0]]), atol=1e-5)


def test_bad_render_arguments(op):
    with pytest.raises(ValueError):
        op.render([[np.nan, 0.0]])


def test_terms_and_least_squares_for_any_kernel():
    from qpiset.physics import LatticeKernel

    lattice = LatticeKernel("square", energy=0.1, mu=-1.0, reach=30.0)
    op = Forward(lattice, Grid(16, 20.0))
    assert op.terms(np.zeros((0, 2))).shape == (0, 256)
    fit = op.least_squares(np.full((16, 16), 0.5), np.zeros((0, 2)))
    assert fit.strengths.shape == (0,) and fit.background == pytest.approx(0.5)
    pos = [[0.0, 0.0], [5.0, -2.5]]
    image = op.render(pos, [2.0, 0.5]) + 0.1
    fit = op.least_squares(image, pos)  # the fit model: the table's cubic rule in float64
    assert np.allclose(fit.strengths, [2.0, 0.5], atol=1e-4) and fit.background == pytest.approx(0.1)
    peak = np.abs(op.kernel_row).max()
    assert np.abs(op.image(pos, [2.0, 0.5]) - (image - 0.1).ravel()).max() < 1e-3 * peak
