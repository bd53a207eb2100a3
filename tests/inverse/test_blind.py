"""Blind kernel estimation measured on simulated images with known truth."""

import numpy as np
import pytest

from qpiset.bench import kernel_nmse
from qpiset.core import Grid
from qpiset.forward import simulate
from qpiset.inverse import blind_kernel, make_kernel_estimator
from qpiset.inverse.blind import SPECTRUM_ANISOTROPY, spectral_start, spectrum_anisotropy
from qpiset.physics import FriedelKernel

GRID = Grid(64, 100.0)
CU_K = 0.2095  # Cu(111) k_F, 1/Å


@pytest.fixture(scope="module")
def cu_images():
    """Ten images as issue 15 sets them: 51-100 scatterers, noise 0.1 x image std."""
    return simulate(FriedelKernel("Cu(111)"), GRID, n=10, seed=31, min_scatterers=51,
                    max_scatterers=100, noise=0.1)


@pytest.mark.parametrize("tip", [0.6, 1.0])
def test_spectral_start_reads_k_tip_and_sign_from_the_spectrum(tip):
    # the tip is fitted, not assumed: two tips, the same code
    ds = simulate(FriedelKernel("Cu(111)", tip_sigma=tip), GRID, n=10, seed=32,
                  min_scatterers=51, max_scatterers=100, noise=0.1)
    start = spectral_start(ds.images, GRID)
    assert start.k == pytest.approx(CU_K, rel=0.03)
    assert start.tip_sigma == pytest.approx(tip, abs=0.2)
    row = start.kernel.sample(GRID)
    assert np.sum(row * ds.kernel) > 0  # the sign: positive strengths
    assert kernel_nmse(row, ds.kernel) < 0.08


def test_spectrum_anisotropy_tells_a_lattice_kernel_from_a_surface_state(cu_images):
    from qpiset.physics import make_kernel

    lattice = make_kernel(model="lattice", structure="square", t=1.0, t_prime=-0.0346,
                          mu=-0.1609, energy=-0.2605, a=3.837, eta=0.0527,
                          orbital_sigma=1.126, reach=105.0)
    ds = simulate(lattice, GRID, n=4, seed=33, min_scatterers=51, max_scatterers=100,
                  noise=0.1)
    assert spectrum_anisotropy(cu_images.images, GRID) < SPECTRUM_ANISOTROPY
    assert spectrum_anisotropy(ds.images, GRID) > 2 * SPECTRUM_ANISOTROPY
    # the 2D path has not recovered such a kernel yet: refused unless asked for by name
    with pytest.raises(ValueError, match="anisotropic .* isotropic kernels only"):
        blind_kernel(ds.images, GRID)


def test_blind_kernel_on_a_small_field_beats_its_start():
    small = Grid(32, 60.0)
    ds = simulate(FriedelKernel("Cu(111)"), small, n=4, seed=34, min_scatterers=15,
                  max_scatterers=25, noise=0.1)
    steps = []
    result = blind_kernel(ds.images, small, rounds=2, on_step=steps.append)
    error = kernel_nmse(result.kernel.sample(small), ds.kernel)
    start = kernel_nmse(result.start.kernel.sample(small), ds.kernel)
    assert error < 0.005 and error < start, (error, start)  # 0.0003 and 0.004 when written
    assert result.isotropic and result.rounds >= 1
    assert sum(steps) == make_kernel_estimator("blind", rounds=2).steps(4)
    # the kernel is scaled so that the detected strengths (all 1 here) have median 1
    assert np.median(np.concatenate(result.strengths)) == pytest.approx(1.0)


@pytest.mark.slow  # 30-60 s: the target, 10 images of the dataset's size
def test_blind_kernel_meets_the_target_on_cu111(cu_images):
    result = blind_kernel(cu_images.images, GRID)
    assert kernel_nmse(result.kernel.sample(GRID), cu_images.kernel) < 0.01
