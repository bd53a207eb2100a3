"""Multiple scattering between lattice impurities (qpiset.physics.lattice_multiple)."""

import numpy as np
import pytest

from qpiset.core import Grid
from qpiset.forward import Forward
from qpiset.physics.lattice import LatticeKernel
from qpiset.physics.lattice_multiple import (lattice_cells, lattice_multiple_scattering_image,
                                             lattice_multiple_scattering_sites,
                                             lattice_propagator)
from qpiset.physics.superconductor import BdGKernel

GRID = Grid(40, 20.0)


def square(potential=1.0, reach=20.0):
    return LatticeKernel("square", energy=-3.0, eta=0.1, potential=potential, reach=reach)


def peak(img):
    return float(np.abs(img).max())


@pytest.fixture(scope="module")
def bdg():
    return BdGKernel(0.02, reach=20.0)


# -- (1) one impurity is the kernel -----------------------------------------------------------
@pytest.mark.parametrize("which", ["square", "bdg"])
def test_one_impurity_is_render_and_kernel(which, bdg):
    K = square() if which == "square" else bdg
    full = lattice_multiple_scattering_image(K, GRID, [[0.0, 0.0]])
    X, Y = GRID.meshgrid()
    assert np.abs(full - K.evaluate(X, Y)).max() < 1e-9 * peak(full)  # same sites, same sum
    born = Forward(K, GRID).render([[0.0, 0.0]])
    assert np.abs(full - born).max() < 1e-3 * peak(born)  # table interpolation only


def test_one_impurity_off_centre_orientation():
    # honeycomb (no x <-> y mirror), impurity on sublattice B, off-centre cell a1 + 2 a2
    K = LatticeKernel("honeycomb", energy=0.6, eta=0.1, impurity_orbital=1, reach=25.0)
    r = (K.lattice[0] + 2 * K.lattice[1])[None]
    full = lattice_multiple_scattering_image(K, GRID, r)
    born = Forward(K, GRID).render(r)
    assert np.abs(full - born).max() < 1e-3 * peak(born)
    assert np.abs(full - born.T).max() > 0.05 * peak(born)  # the check sees a transpose


def test_one_impurity_site_values(bdg):
    # i = j block G0(0) in (1 - V G)^-1 V reproduces the kernel's T-matrix on every site
    sites = np.array([[0, 0], [1, 0], [3, -2], [-2, 4]])  # within reach (20 Å)
    got = lattice_multiple_scattering_sites(bdg, [[0.0, 0.0]], sites)[:, 0]
    n = bdg.kgrid
    assert np.allclose(got, bdg.site_values()[sites[:, 0] % n, sites[:, 1] % n], rtol=1e-10,
                       atol=0)
    K = square()
    pos, val = K.site_values()
    cells = lattice_cells(pos, K.lattice)
    got = lattice_multiple_scattering_sites(K, [[0.0, 0.0]], cells)[:, 0]
    assert np.allclose(got, val, rtol=1e-10, atol=1e-14 * np.abs(val).max())


# -- (2) weak impurities: Born to first order ---------------------------------------------------
def test_two_weak_impurities_born_second_order():
    pos = [[0.0, 0.0], [5.0, 2.5]]
    diffs = []
    for v in (0.1, 0.05):  # halving the strength (the impurity potential)
        K = square(potential=v)
        full = lattice_multiple_scattering_image(K, GRID, pos)
        born = Forward(K, GRID).render(pos)
        diffs.append(np.abs(full - born).max())
        assert diffs[-1] < 0.05 * peak(born)
    assert diffs[1] / diffs[0] == pytest.approx(0.25, rel=0.1)


def test_strength_scales_potential_and_t_matrix_scaling():
    pos = [[0.0, 0.0], [5.0, 2.5]]
    K, half = square(potential=0.1), square(potential=0.05)
    P = lattice_propagator(K)
    # V_i = s_i V: strength 1/2 is the kernel of half the potential
    a = lattice_multiple_scattering_image(K, GRID, pos, [0.5, 0.5], propagator=P)
    assert np.allclose(a, lattice_multiple_scattering_image(half, GRID, pos), rtol=0,
                       atol=1e-12 * peak(a))
    # t_i = s_i T_1: single-impurity terms exactly s K, the rest O(s^2)
    diffs = []
    for s in (0.4, 0.2):
        full = lattice_multiple_scattering_image(K, GRID, pos, [s, s], scaling="t_matrix",
                                                 propagator=P)
        diffs.append(np.abs(full - Forward(K, GRID).render(pos, [s, s])).max())
    assert diffs[1] / diffs[0] == pytest.approx(0.25, rel=0.1)
    # both conventions agree at s = 1 (strong impurity: the identity is not trivial)
    S = square(potential=3.0)
    one = lattice_multiple_scattering_image(S, GRID, pos)
    assert np.allclose(one, lattice_multiple_scattering_image(S, GRID, pos, scaling="t_matrix"),
                       rtol=0, atol=1e-10 * peak(one))


# -- (3) strong close impurities ----------------------------------------------------------------
@pytest.mark.parametrize("which", ["square", "bdg"])
def test_strong_close_impurities_differ_from_born(which, bdg):
    if which == "square":
        # neighbours, attractive V = -3 t near the band bottom (bound-state resonance)
        K, pos = square(potential=-3.0), [[0.0, 0.0], [2.5, 0.0]]
    else:
        K = BdGKernel(0.02, potential=0.5, reach=20.0)
        pos = [[0.0, 0.0], [3.8, 0.0]]
    full = lattice_multiple_scattering_image(K, GRID, pos)
    born = Forward(K, GRID).render(pos)
    # measured: 2.9 (square) and 0.93 (BdG) times the Born peak
    assert np.abs(full - born).max() > 0.5 * peak(born)


# -- (4) far-apart weak impurities superpose on the sites --------------------------------------
def test_far_weak_impurities_superpose_on_sites():
    K = square(potential=0.1, reach=40.0)
    P = K.propagator()
    a, b = [[0.0, 0.0]], [[25.0, 0.0]]
    c1, c2 = np.meshgrid(np.arange(-4, 15), np.arange(-5, 6), indexing="ij")
    sites = np.stack([c1.ravel(), c2.ravel()], axis=1)
    both = lattice_multiple_scattering_sites(K, a + b, sites, propagator=P)
    sum_ = (lattice_multiple_scattering_sites(K, a, sites, propagator=P)
            + lattice_multiple_scattering_sites(K, b, sites, propagator=P))
    scale = np.abs(sum_).max()
    far = np.abs(both - sum_).max() / scale
    assert 0 < far < 2e-3
    near = lattice_multiple_scattering_sites(K, [[0.0, 0.0], [2.5, 0.0]], sites, propagator=P)
    near_sum = (lattice_multiple_scattering_sites(K, [[0.0, 0.0]], sites, propagator=P)
                + lattice_multiple_scattering_sites(K, [[2.5, 0.0]], sites, propagator=P))
    assert np.abs(near - near_sum).max() / scale > 10 * far  # the check can see interference


# -- (5) bad input ---------------------------------------------------------------------------------
def test_off_lattice_positions_raise(bdg):
    K = square()
    with pytest.raises(ValueError, match="lattice site"):
        lattice_multiple_scattering_image(K, GRID, [[0.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="lattice site"):
        lattice_multiple_scattering_image(bdg, GRID, [[3.8 + 1e-4, 0.0]])
    lattice_multiple_scattering_image(K, GRID, [[2.5 + 1e-8, 0.0]])  # within 1e-6 Å: fine


def test_reach_and_strength_errors():
    K = square(reach=15.0)
    with pytest.raises(ValueError, match="raise the kernel's reach"):
        lattice_multiple_scattering_image(K, GRID, [[10.0, 0.0]])  # needs 20 Å
    with pytest.raises(ValueError, match="strengths"):
        lattice_multiple_scattering_image(K, GRID, [[0.0, 0.0]], [1.0, 2.0])
    with pytest.raises(ValueError, match="scaling"):
        lattice_multiple_scattering_image(K, GRID, [[0.0, 0.0]], scaling="born")
    assert not lattice_multiple_scattering_image(K, GRID, np.zeros((0, 2))).any()
