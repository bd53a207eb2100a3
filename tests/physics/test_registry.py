"""The kernel registry (make_kernel, KERNELS, kernel_from_record), parameters renamed since
they were published (old names warn and give the same model), and the square band's
closed forms that the lattice models share."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from qpiset.core import Grid
from qpiset.physics import (KERNELS, BdGKernel, FriedelKernel, ImageKernel, LatticeKernel,
                            SampledKernel, TightBinding, describe_kernels, kernel_from_record,
                            make_kernel, wavevector)
from qpiset.physics.sampled import SampledKernel2D, SplineKernel, spline_knots
from qpiset.physics.tight_binding import square_band, square_max_velocity

#: Points (Å) where two kernels are compared; inside every model's extent below.
X, Y = np.random.default_rng(11).uniform(-18.0, 18.0, (2, 40))


def quietly(make):
    """``make()`` with every warning an error (old names read from records are silent)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return make()


# -- (a) renamed parameters ------------------------------------------------------------------
def test_lattice_kernel_tp_is_t_prime_with_a_future_warning():
    new = LatticeKernel("square", 0.1, t=1.0, t_prime=-0.2, mu=-0.7, eta=0.05, reach=20.0)
    with pytest.warns(FutureWarning, match="'tp'.*'t_prime'"):
        old = LatticeKernel("square", 0.1, t=1.0, tp=-0.2, mu=-0.7, eta=0.05, reach=20.0)
    assert old == new and old.t_prime == -0.2
    assert "tp" not in new.params() and new.params()["t_prime"] == -0.2
    assert np.array_equal(old.evaluate(X, Y), new.evaluate(X, Y))
    assert np.abs(new.evaluate(X, Y)).max() > 0  # the comparison is not of zeros
    with pytest.raises(TypeError, match="not both"):
        LatticeKernel("square", tp=-0.2, t_prime=-0.2)
    # metadata written under the old name is read without a warning
    record = {**new.params(), "tp": -0.2}
    del record["t_prime"]
    assert quietly(lambda: kernel_from_record(record)) == new
    assert describe_kernels()["models"]["lattice"]["renamed"] == {"tp": "t_prime"}


def test_friedel_kernel_gamma_is_eta_with_a_future_warning():
    new = FriedelKernel("Cu(111)", 0.1, eta=0.02, phase_shift=0.9)
    with pytest.warns(FutureWarning, match="'gamma'.*'eta'"):
        old = FriedelKernel("Cu(111)", 0.1, gamma=0.02, phase_shift=0.9)
    assert old == new and old.eta == 0.02 and old.k == new.k
    assert "gamma" not in new.params() and new.params()["eta"] == 0.02
    assert np.array_equal(old.evaluate(X, Y), new.evaluate(X, Y))
    with pytest.raises(TypeError, match="not both"):
        FriedelKernel("Cu(111)", gamma=0.02, eta=0.02)
    record = {**new.params(), "gamma": 0.02}
    del record["eta"]
    assert quietly(lambda: kernel_from_record(record)) == new
    # a record of the seed release: only the names given, the old one among them
    seed = {"model": "friedel", "material": "Cu(111)", "energy": 0.1, "gamma": 0.02,
            "phase_shift": 0.9}
    assert quietly(lambda: kernel_from_record(seed)) == new
    assert describe_kernels()["models"]["friedel"]["renamed"] == {"gamma": "eta"}


def test_wavevector_gamma_is_eta_with_a_future_warning():
    # the migration guide lists wavevector's broadening with FriedelKernel's: gamma -> eta
    new = wavevector(0.0, 0.38, -0.44, eta=0.01)
    assert new.imag > 0
    with pytest.warns(FutureWarning, match="gamma"):
        old = wavevector(0.0, 0.38, -0.44, gamma=0.01)
    assert old == new


def test_tight_binding_square_tp_is_t_prime_with_a_future_warning():
    new = TightBinding.square(t=0.9, t_prime=-0.25, mu=0.3, a=2.5)
    with pytest.warns(FutureWarning, match="'tp'.*'t_prime'"):
        old = TightBinding.square(t=0.9, tp=-0.25, mu=0.3, a=2.5)
    assert np.array_equal(old.hk(8), new.hk(8))
    assert old.hoppings == new.hoppings and np.array_equal(old.onsite, new.onsite)
    assert np.array_equal(old.lattice, new.lattice)
    # the next-nearest hopping is really there (t' = 0 would make it trivial)
    assert not np.allclose(new.hk(8), TightBinding.square(0.9, 0.0, 0.3, 2.5).hk(8))
    # positional arguments are unaffected
    assert np.array_equal(TightBinding.square(0.9, -0.25, 0.3, 2.5).hk(8), new.hk(8))
    with pytest.raises(TypeError, match="not both"):
        TightBinding.square(tp=-0.25, t_prime=-0.25)


def test_bdg_clean_ldos_is_the_rho0_property_with_a_future_warning():
    K = BdGKernel(0.01, pairing="d", eta=0.004, kgrid=40, reach=30.0)
    rho0 = K.rho0
    assert isinstance(rho0, float) and rho0 > 0
    with pytest.warns(FutureWarning, match="rho0"):
        old = K.clean_ldos()
    assert old == rho0
    # and the record of a BdG kernel (no renamed parameters) is read quietly
    again = quietly(lambda: kernel_from_record(json.loads(json.dumps(K.params()))))
    assert again == K and again.rho0 == rho0


# -- (b) make_kernel(**k.params()) recreates every model ----------------------------------------
def _sampled():
    grid = Grid(48, 60.0)
    return SampledKernel.from_image(FriedelKernel("Ag(111)", 0.05).sample(grid), grid)


def _image_array():
    grid = Grid(24, 50.0)
    return ImageKernel(image=FriedelKernel("Cu(111)", 0.0).sample(grid), fov=grid.fov,
                       taper=0.2)


def _image_npy(tmp_path):
    grid = Grid(24, 50.0)
    path = tmp_path / "kernel.npy"
    np.save(path, FriedelKernel("Au(111)", 0.1).sample(grid))
    return make_kernel("image", source=str(path), fov=grid.fov)


BUILDERS = {
    "friedel": lambda tmp: FriedelKernel("Ag(111)", 0.05, phase_shift=0.7, eta=0.01,
                                         decay_length=60.0, tip_sigma=1.3),
    "friedel-potential": lambda tmp: FriedelKernel(None, 0.2, mass=0.4, band_bottom=-0.3,
                                                   potential=-2.0),
    "lattice": lambda tmp: LatticeKernel("square", 0.1, t=1.0, t_prime=-0.2, mu=-0.7,
                                         eta=0.05, reach=20.0),
    "lattice-honeycomb": lambda tmp: LatticeKernel("honeycomb", 0.5, eta=0.05, potential=2.0,
                                                   impurity_orbital=1, reach=20.0, kgrid=40),
    "bdg": lambda tmp: BdGKernel(-0.015, pairing="s", delta0=0.03, scatterer="magnetic",
                                 potential=-0.3, orbital_sigma=0.8, reach=25.0, kgrid=30),
    "bdg-auto-kgrid": lambda tmp: BdGKernel(0.02, eta=0.01, reach=20.0),
    "image-array": lambda tmp: _image_array(),
    "image-npy": _image_npy,
    "sampled": lambda tmp: _sampled(),
    "sampled-2d": lambda tmp: SampledKernel2D(_image_array().image * (1 + 0.1 * np.cos(
        np.arange(24.0))[None, :]), 50.0),
    "spline": lambda tmp: SplineKernel(spline_knots(12.0), np.cos(np.arange(53) / 3.0)),
}


def _name(which: str) -> str:
    return which if which in KERNELS else which.split("-")[0]


def test_every_model_of_qpiset_is_covered_below():
    ours = {name for name, cls in KERNELS.items() if cls.__module__.startswith("qpiset.")}
    assert ours == {"friedel", "lattice", "bdg", "image", "sampled", "sampled-2d", "spline"}
    covered = {_name(key) for key in BUILDERS}
    assert ours <= covered


@pytest.mark.parametrize("which", list(BUILDERS))
def test_make_kernel_of_params_recreates_the_model(which, tmp_path):
    k = BUILDERS[which](tmp_path)
    assert k.name == _name(which) and isinstance(k, KERNELS[k.name])
    params = k.params()
    assert params["model"] == k.name
    again = make_kernel(**params)
    assert type(again) is type(k)
    assert again == k and again.params() == params
    # through JSON, as the file metadata stores it
    stored = make_kernel(**json.loads(json.dumps(params)))
    assert stored == k
    values = k.evaluate(X, Y)
    assert np.all(np.isfinite(values)) and np.abs(values).max() > 0
    assert np.array_equal(again.evaluate(X, Y), values)
    assert np.array_equal(stored.evaluate(X, Y), values)
    if k.isotropic:  # and beyond the sampled range of the sampled kernel (its tail)
        r = np.array([0.0, 3.3, 45.0, 80.0])
        assert np.array_equal(again.radial(r), k.radial(r))


def test_sampled_and_array_image_kernels_record_their_samples():
    sampled, image = _sampled(), _image_array()
    p = sampled.params()
    assert np.array_equal(p["r"], sampled.r_samples) and np.array_equal(p["values"],
                                                                         sampled.samples)
    assert sampled.extension == "friedel-tail"  # the tail is part of what is recreated
    assert np.array_equal(np.asarray(image.params()["image"]), image.image)
    assert "array 24x24" in repr(image)  # describe() does not print the array


# -- (c) the square band's closed forms ----------------------------------------------------------
@pytest.mark.parametrize("t, t_prime, mu, a", [
    (1.0, 0.0, 0.0, 2.5), (0.9, -0.25, 0.3, 2.5), (0.15, -0.045, -0.15, 3.8),
    (0.4, 0.12, -0.5, 3.1),
])
def test_square_band_is_the_diagonal_of_the_bloch_hamiltonian(t, t_prime, mu, a):
    n = 12
    hk = TightBinding.square(t, t_prime, mu, a).hk(n)
    assert hk.shape == (n, n, 1, 1)
    theta = 2 * np.pi * np.arange(n) / n
    band = square_band(np.cos(theta)[:, None], np.cos(theta)[None, :], t, t_prime, mu)
    assert np.abs(hk[..., 0, 0] - band).max() < 1e-12
    # and at Cartesian k, through bands()
    k = np.random.default_rng(7).uniform(-2.0, 2.0, (30, 2))
    expected = square_band(np.cos(k[:, 0] * a), np.cos(k[:, 1] * a), t, t_prime, mu)
    tb = TightBinding.square(t, t_prime, mu, a)
    assert np.abs(tb.bands(k)[:, 0] - expected).max() < 1e-12


@pytest.mark.parametrize("t, t_prime, a", [
    (0.15, 0.0, 3.8), (0.15, -0.045, 3.8), (1.0, -0.35, 2.5), (0.4, 0.12, 3.1),
    (1.0, 0.45, 2.5),
])
def test_square_max_velocity_is_the_largest_band_gradient(t, t_prime, a):
    n = 1024  # phases 2 pi i / n over the zone; central differences, periodic
    theta = 2 * np.pi * np.arange(n) / n
    xi = square_band(np.cos(theta)[:, None], np.cos(theta)[None, :], t, t_prime, 0.0)
    h = 2 * np.pi / n / a  # step in k (1/Å)
    vx = (np.roll(xi, -1, axis=0) - np.roll(xi, 1, axis=0)) / (2 * h)
    vy = (np.roll(xi, -1, axis=1) - np.roll(xi, 1, axis=1)) / (2 * h)
    finite_difference = float(np.sqrt(vx**2 + vy**2).max())
    assert square_max_velocity(t, t_prime, a) == pytest.approx(finite_difference, rel=1e-3)
    # t' = 0: 2 sqrt(2) t a at (pi/2a, pi/2a)
    if t_prime == 0:
        assert square_max_velocity(t, t_prime, a) == pytest.approx(2 * math.sqrt(2) * t * a,
                                                                   rel=1e-12)


def test_former_attribute_names_still_read():
    k = FriedelKernel(eta=0.01)
    with pytest.warns(FutureWarning, match="FriedelKernel.gamma is now called eta"):
        assert k.gamma == 0.01
    lat = LatticeKernel("square", t_prime=-0.2, reach=10.0)
    with pytest.warns(FutureWarning, match="tp is now called t_prime"):
        assert lat.tp == -0.2
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        k.nonsense
