"""Detection on several processes, and the candidate-grid convolution it starts from."""

import numpy as np
import pytest

from qpiset.core import Grid
from qpiset.forward import Forward, simulate
from qpiset.inverse import SparseDeconvolution, detect, detect_images, file_operator
from qpiset.inverse.grid_ops import CandidateGrid
from qpiset.physics import FriedelKernel

GRID = Grid(32, 50.0)


@pytest.fixture(scope="module")
def op():
    return Forward(FriedelKernel("Cu(111)", energy=0.0), GRID)


def test_candidate_grid_is_the_kernel_summed_at_the_candidates(op):
    """A short FFT (length just over the kernel's reach) against the direct sum, and the
    adjoint against the transpose <A a, y> = <a, A^T y>."""
    A = CandidateGrid(op, oversample=2, margin=3)
    assert A.L < A.C + 2 * A.U0  # shorter than a full linear convolution
    rng = np.random.default_rng(0)
    a = np.zeros(A.shape)
    idx = [(0, 1, 0, 0), (1, 0, A.C - 1, A.C - 1), (1, 1, 5, A.C - 2), (0, 0, 20, 3)]
    for i in idx:
        a[i] = rng.uniform(0.5, 2.0)
    X, Y = A.positions()
    direct = op.image(np.array([[X[i], Y[i]] for i in idx]), np.array([a[i] for i in idx]))
    got = A.forward(a)
    peak = np.max(np.abs(direct))
    # the candidate grid samples the kernel exactly; the fit model interpolates a table
    assert np.max(np.abs(got.ravel() - direct)) < 2e-3 * peak
    y = rng.normal(size=GRID.shape)
    b = rng.normal(size=A.shape)
    lhs, rhs = float(np.sum(A.forward(b) * y)), float(np.sum(b * A.adjoint(y)))
    assert abs(lhs - rhs) < 1e-4 * abs(lhs)


def test_workers_give_the_same_detections(op):
    ds = simulate(op.kernel, GRID, n=3, seed=5, min_scatterers=8, max_scatterers=12, noise=0.1)
    row = file_operator(ds.kernel, GRID)
    one = detect(ds.images, row, method="sparse")
    two = detect(ds.images, row, method="sparse", workers=2)
    for a, b, sa, sb in zip(one.positions, two.positions, one.strengths, two.strengths):
        assert np.array_equal(a, b) and np.array_equal(sa, sb)
    timed = list(detect_images(SparseDeconvolution(), ds.images, row))
    assert len(timed) == 3 and all(t > 0 for _, t in timed)
    assert all(np.array_equal(d.positions[0], p) for (d, _), p in zip(timed, one.positions))
