"""Kernel estimation measured on generated data with known truth."""

import pytest

from qpiset.bench import kernel_nmse
from qpiset.core import Grid
from qpiset.forward import simulate
from qpiset.inverse import blind_kernel, kernel_from_positions
from qpiset.physics import FriedelKernel

GRID = Grid(64, 100.0)


@pytest.fixture(scope="module")
def cu():
    return FriedelKernel("Cu(111)", energy=0.0)


def test_kernel_from_known_positions(cu):
    ds = simulate(cu, GRID, n=4, seed=23, min_scatterers=20, max_scatterers=60)
    est = kernel_from_positions(ds.images, ds.positions, GRID)
    assert kernel_nmse(est.sample(GRID), ds.kernel) < 1e-3


# about 4 s: a start from the spectrum, then two rounds of sparse detection
def test_blind_kernel_recovers_the_friedel_pattern(cu):
    small = Grid(32, 60.0)  # small, to keep the test quick
    ds = simulate(cu, small, n=2, seed=24, min_scatterers=10, max_scatterers=10)
    est, positions = blind_kernel(ds.images, small, rounds=2)
    assert kernel_nmse(est.sample(small), ds.kernel) < 0.1


def test_estimators_report_their_steps():
    from qpiset.inverse import make_kernel_estimator

    grid = Grid(24, 40.0)
    ds = simulate(FriedelKernel(), grid, n=2, seed=4, min_scatterers=2, max_scatterers=3)
    for name, options in (("lsq", {}), ("blind", {"rounds": 1})):
        est = make_kernel_estimator(name, **options)
        done = []
        est.estimate(ds.images, grid, ds.positions, on_step=done.append)
        assert sum(done) == est.steps(2), name
