"""Physics against analytic results and published values."""

import math

import numpy as np
import pytest
from scipy import special

from qpiset.core import Grid
from qpiset.forward import Forward
from qpiset.physics import (HBAR2_OVER_2ME, FriedelKernel, make_kernel, material,
                            phase_shift_from_potential, wavevector)


def measured_period(image: np.ndarray, grid: Grid, rmin: float, rmax: float) -> float:
    """Oscillation period of a radial pattern measured from its pixels alone.

    Least-squares fit of (A cos qr + B sin qr)/r + (C cos qr + D sin qr)/r² over the
    pixels with rmin <= r <= rmax, scanning q; period = 2 pi / q.
    """
    X, Y = grid.meshgrid()
    r = np.hypot(X, Y).ravel()
    v = image.ravel()
    m = (r >= rmin) & (r <= rmax)
    r, v = r[m], v[m]

    def residual(q):
        c, s = np.cos(q * r), np.sin(q * r)
        A = np.stack([c / r, s / r, c / r**2, s / r**2], axis=1)
        coef, *_ = np.linalg.lstsq(A, v, rcond=None)
        return float(np.sum((A @ coef - v) ** 2))

    qs = np.linspace(2 * math.pi / (4 * rmax), 2 * math.pi / (2 * grid.pitch), 600)
    q = qs[np.argmin([residual(q) for q in qs])]
    from scipy.optimize import minimize_scalar

    step = qs[1] - qs[0]
    q = minimize_scalar(residual, bounds=(q - step, q + step), method="bounded").x
    return 2 * math.pi / q


def test_cu111_period_is_15_angstrom_from_the_kernel_row():
    # Crommie, Lutz & Eigler (1993): standing waves on Cu(111) at E_F with lambda_F/2 = 15 Å.
    grid = Grid(64, 100.0)
    period = measured_period(Forward(FriedelKernel("Cu(111)", 0.0), grid).kernel_row, grid, 10, 70)
    assert period == pytest.approx(15.0, rel=0.03)


def test_ag111_period_matches_literature():
    # Ag(111): lambda_F ~ 76 Å (Li, Schneider, Berndt et al. 1997/98): period lambda_F/2 ~ 38 Å.
    grid = Grid(128, 400.0)
    period = measured_period(Forward(FriedelKernel("Ag(111)", 0.0), grid).kernel_row, grid, 30,
                             280)
    assert period == pytest.approx(38.0, rel=0.03)


def test_period_follows_the_parabolic_band():
    # dispersion measured from kernels at several energies: pi/period = k(E)
    grid = Grid(64, 100.0)
    energies = np.array([-0.2, 0.0, 0.3, 0.6])
    k_measured = [math.pi / measured_period(Forward(FriedelKernel("Cu(111)", e), grid).kernel_row,
                                            grid, 10, 70) for e in energies]
    k2 = np.square(k_measured)
    slope, intercept = np.polyfit(energies, k2, 1)
    m = material("Cu(111)")
    assert slope == pytest.approx(m.mass / HBAR2_OVER_2ME, rel=0.03)
    assert -intercept / slope == pytest.approx(m.band_bottom, abs=0.02)


def test_wavevector_is_parabolic():
    e = np.linspace(-0.4, 1.0, 15)
    k = wavevector(e, 0.38, -0.44)
    assert np.allclose(k.imag, 0)
    assert np.allclose(HBAR2_OVER_2ME * k.real**2 / 0.38 - 0.44, e)
    # broadening makes k complex with a positive imaginary part (decaying waves)
    assert wavevector(0.0, 0.38, -0.44, eta=0.01).imag > 0


def test_bare_kernel_is_the_t_matrix_formula():
    K = FriedelKernel("Cu(111)", phase_shift=0.7)
    r = np.linspace(0.5, 80, 50)
    kr = K.k.real * r
    h = special.j0(kr) + 1j * special.y0(kr)
    expected = 0.5 * np.real((np.exp(1.4j) - 1) * h * h)
    assert np.allclose(K.bare(r), expected, rtol=1e-12, atol=1e-14)
    # asymptotics: H0(z)^2 ~ (2/pi z) exp(i(2z - pi/2)); unitary: amplitude 2/(pi k r)
    U = FriedelKernel("Cu(111)")
    r = np.linspace(200, 220, 400)
    assert np.max(np.abs(U.bare(r))) * math.pi * U.k.real * 210 / 2 == pytest.approx(1.0, rel=0.06)


def test_tip_broadening_damps_the_2kf_ring_like_a_gaussian():
    # a 2D Gaussian blur multiplies the q = 2k_F Fourier ring by exp(-(2k)^2 sigma^2 / 2)
    r = np.linspace(40, 120, 800)

    def amplitude(values, q):
        A = np.stack([np.cos(q * r) / r, np.sin(q * r) / r], axis=1)
        (a, b), *_ = np.linalg.lstsq(A, values, rcond=None)
        return math.hypot(a, b)

    sharp = FriedelKernel("Cu(111)")
    q = 2 * sharp.k.real
    bare = amplitude(sharp.bare(r), q)
    for sigma in (1.0, 2.0):
        blurred = amplitude(FriedelKernel("Cu(111)", tip_sigma=sigma).radial(r), q)
        assert blurred / bare == pytest.approx(math.exp(-(q * sigma) ** 2 / 2), rel=0.02)


def test_broadening_is_finite_at_the_scatterer_and_converged():
    K = FriedelKernel("Cu(111)")
    from qpiset.physics import gaussian_blur_radial

    r = np.array([0.0, 0.4, 1.0, 3.0, 20.0])
    coarse = gaussian_blur_radial(K.bare, r, K.tip_sigma, nodes=96)
    fine = gaussian_blur_radial(K.bare, r, K.tip_sigma, nodes=600)
    assert np.all(np.isfinite(coarse))
    assert np.allclose(coarse, fine, atol=1e-9)


def test_lifetime_and_decay_length_damp_the_oscillation():
    r = np.linspace(60, 90, 300)
    clean = np.abs(FriedelKernel("Cu(111)").radial(r)).max()
    assert np.abs(FriedelKernel("Cu(111)", decay_length=20.0).radial(r)).max() < 0.1 * clean
    assert np.abs(FriedelKernel("Cu(111)", eta=0.1).radial(r)).max() < 0.5 * clean
    # decay length L: envelope exp(-r/L)/r
    L = 50.0
    K = FriedelKernel("Cu(111)", decay_length=L)
    assert K.k.imag == pytest.approx(1 / (2 * L))


def test_potential_gives_born_phase_shift_when_weak():
    k, mass = 0.2, 0.38
    alpha = mass / (2 * HBAR2_OVER_2ME)
    for V in (1e-3, -1e-3):
        assert phase_shift_from_potential(V, k, mass, 1.0) == pytest.approx(-alpha * V, rel=1e-2)
    strong = phase_shift_from_potential(1e4, k, mass, 1.0)
    assert -math.pi / 2 < strong <= math.pi / 2
    K = FriedelKernel("Cu(111)", potential=-2.0)
    assert K.params()["potential"] == -2.0 and K.phase_shift != math.pi / 2


def test_presets_custom_parameters_and_validation():
    assert material("ag(111)").name == "Ag(111)"
    assert set(["Cu(111)", "Ag(111)", "Au(111)"]) <= set(
        p.name for p in __import__("qpiset.physics", fromlist=["MATERIALS"]).MATERIALS.values())
    custom = FriedelKernel(None, 0.0, mass=0.5, band_bottom=-0.2)
    assert custom.k.real == pytest.approx(math.sqrt(0.2 * 0.5 / HBAR2_OVER_2ME))
    assert make_kernel(**custom.params()) == custom
    with pytest.raises(ValueError, match="unknown material"):
        FriedelKernel("Pt(111)")
    with pytest.raises(ValueError, match="band bottom"):
        FriedelKernel("Cu(111)", energy=-1.0)
    with pytest.raises(ValueError, match="tip_sigma"):
        FriedelKernel("Cu(111)", tip_sigma=0.0)
    with pytest.raises(ValueError, match="unknown kernel model"):
        make_kernel("nope")


def test_evaluate_is_continuous_and_isotropic():
    K = FriedelKernel("Cu(111)")
    a = K.evaluate(3.0, 4.0)
    assert K.evaluate(5.0, 0.0) == pytest.approx(a)
    assert K.evaluate(-4.0, -3.0) == pytest.approx(a)
    # no pixel snapping: a sub-picometre move changes the value smoothly
    d = K.evaluate(5.0 + 1e-3, 0.0) - a
    assert 0 < abs(d) < 1e-2
