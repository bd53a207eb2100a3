"""Bogoliubov QPI kernels (BdG T-matrix on the square lattice) against analytic results:
octet vectors, Anderson's theorem, Yu-Shiba-Rusinov bound states, the normal-state limit
and the lattice symmetries."""

import json
import math

import numpy as np
import pytest
from scipy.ndimage import maximum_filter
from scipy.optimize import minimize_scalar

from qpiset.physics.lattice_greens import delta_site_ldos, greens_function, t_matrix
from qpiset.physics.superconductor import BdGKernel, octet_vectors
from qpiset.physics.tight_binding import square_max_velocity

#: One-band s-wave model with a nearly flat normal DOS over the gap (t' = 0, Fermi level
#: 0.2 eV below the van Hove energy), small broadening for sharp in-gap states.
S_WAVE = dict(pairing="s", delta0=0.02, t=0.15, t_prime=0.0, mu=-0.2, eta=5e-4, kgrid=64,
              reach=100.0)


def band(kx, ky, t, t_prime, mu):
    """xi(k) from the Bloch phases, written out independently of the module."""
    return -2 * t * (np.cos(kx) + np.cos(ky)) - 4 * t_prime * np.cos(kx) * np.cos(ky) - mu


# -- octet model -----------------------------------------------------------------------------
def test_octet_tips_lie_on_the_fermi_surface_where_the_gap_equals_the_energy():
    K = BdGKernel(0.02)  # cuprate-like defaults, d-wave
    p = K.params()
    oc = octet_vectors(K)
    kx, ky = (oc.tips * p["a"]).T
    assert np.abs(band(kx, ky, p["t"], p["t_prime"], p["mu"])).max() < 1e-12
    gap = 0.5 * p["delta0"] * (np.cos(kx) - np.cos(ky))
    np.testing.assert_allclose(np.abs(gap), 0.02, atol=1e-12)

    # the eight tips are the C4v orbit of the first one, which is on the (pi, 0) side
    k1 = oc.tips[0]
    assert k1[0] > k1[1] > 0
    orbit = {(sx * k1[i], sy * k1[1 - i]) for sx in (1, -1) for sy in (1, -1) for i in (0, 1)}
    assert {tuple(v) for v in np.round(oc.tips, 12)} == {tuple(np.round(v, 12)) for v in orbit}

    # q_j is the tip difference k1 - tip_j, up to a reciprocal lattice vector, in the zone
    zone = 2 * np.pi / p["a"]
    n = (oc.tips[0] - oc.tips[1:] - oc.q) / zone
    np.testing.assert_allclose(n, np.round(n), atol=1e-12)
    assert np.abs(oc.q).max() <= zone / 2 + 1e-12
    # named vectors (McElroy et al. 2003): q1 = (2kx, 0), q3 along (1, 1), q7 along (1, -1)
    kx1, ky1 = k1
    expected = {1: (2 * kx1, 0), 2: (kx1 + ky1, ky1 - kx1), 3: (kx1 + ky1, kx1 + ky1),
                4: (0, 2 * ky1), 5: (2 * kx1, 2 * ky1), 6: (kx1 - ky1, kx1 + ky1),
                7: (kx1 - ky1, ky1 - kx1)}
    for j, v in expected.items():
        n = (np.array(v) - oc.q[j - 1]) / zone
        np.testing.assert_allclose(n, np.round(n), atol=1e-12, err_msg=f"q{j}")
    # q1, q4, q5 join tips with the same gap sign; q2, q3, q6, q7 reverse it
    assert (np.sign(gap[1:]) * np.sign(gap[0])).tolist() == [1, -1, -1, 1, 1, -1, -1]


def test_octet_tip_matches_closed_form_without_next_neighbour_hopping():
    # t' = 0: xi = 0 gives cos kx + cos ky = -mu/2t and |Delta| = E gives
    # cos kx - cos ky = -2E/Delta0 on the kx > ky side
    t, mu, delta0, energy, a = 0.2, -0.25, 0.05, 0.03, 4.0
    oc = octet_vectors({"pairing": "d", "t": t, "t_prime": 0.0, "mu": mu, "delta0": delta0,
                        "a": a}, energy)
    s, d = -mu / (2 * t), -2 * energy / delta0
    expected = np.arccos([(s + d) / 2, (s - d) / 2]) / a
    np.testing.assert_allclose(oc.tips[0], expected, rtol=1e-12)
    assert octet_vectors(BdGKernel(-0.02)).as_dict() == octet_vectors(BdGKernel(0.02)).as_dict()


def test_octet_refuses_models_without_banana_tips():
    with pytest.raises(ValueError, match="d-wave"):
        octet_vectors(BdGKernel(0.01, pairing="s"))
    with pytest.raises(ValueError, match="largest gap"):
        octet_vectors(BdGKernel(0.05))  # above the gap everywhere on the Fermi surface
    with pytest.raises(ValueError, match="energy"):
        octet_vectors({"pairing": "d"})


def qspace_maxima(values: np.ndarray, size: int = 7) -> np.ndarray:
    """Indices of the local maxima (``size x size`` window, periodic) of ``|FFT|``."""
    F = np.abs(np.fft.fft2(values))
    F[0, 0] = 0.0
    return np.argwhere(F == maximum_filter(F, size=size, mode="wrap"))


def bins_to_nearest(maxima: np.ndarray, q: np.ndarray, n: int, a: float) -> float:
    """Distance (in q-bins 2 pi / n a) from ``q`` (1/Å) to the nearest maximum, periodic."""
    d = (maxima - q * a * n / (2 * np.pi) + n / 2) % n - n / 2
    return float(np.hypot(d[:, 0], d[:, 1]).min())


@pytest.mark.parametrize("energy", [0.015, 0.02])
@pytest.mark.parametrize("scatterer, visible, moving", [
    # coherence factors at the tips: (u u' -+ v v')² -> a tau_3 (potential) scatterer
    # favours the sign-reversing q2, q3, q6, a tau_0 (magnetic) one the sign-preserving q1, q4
    ("potential", (2, 3, 6), 2),
    ("magnetic", (1, 4), 4),
])
def test_dwave_fourier_maxima_at_octet_vectors(energy, scatterer, visible, moving):
    n = 128  # q-bin 2 pi / (128 * 3.8 Å) = 0.013 1/Å
    K = BdGKernel(energy, pairing="d", scatterer=scatterer, potential=0.1, eta=0.002,
                  kgrid=n, reach=50.0)
    maxima = qspace_maxima(K.site_values())
    assert len(maxima) < 0.01 * n * n  # few maxima: nearness is not by chance
    oc = octet_vectors(K)
    for j in visible:
        assert bins_to_nearest(maxima, oc.q[j - 1], n, K.a) < 2.0, f"q{j}"
    # the octet of a 5 meV different energy misses: the maxima disperse as predicted
    for other in (energy - 0.005, energy + 0.005):
        q = octet_vectors(K, other).q[moving - 1]
        assert bins_to_nearest(maxima, q, n, K.a) > 3.0, f"q{moving} at {other} eV"


# -- s-wave: Anderson's theorem and Yu-Shiba-Rusinov states ------------------------------------
def test_anderson_theorem_potential_scatterer_has_no_in_gap_states():
    delta = S_WAVE["delta0"]
    inside = np.linspace(-0.6, 0.6, 25) * delta  # well below the coherence peaks
    outside = np.concatenate([-1, 1] * np.linspace(1.5, 3.0, 16)[:, None]).ravel() * delta
    potential = BdGKernel(0.0, scatterer="potential", potential=0.2, **S_WAVE)
    magnetic = BdGKernel(0.0, scatterer="magnetic", potential=0.2, **S_WAVE)
    p_in, p_out = (np.abs(potential.spectrum(e)[0]).max() for e in (inside, outside))
    m_in, m_out = (np.abs(magnetic.spectrum(e)[0]).max() for e in (inside, outside))
    assert p_in < 0.05 * p_out  # measured 0.008: only the eta tails
    assert m_in > 2 * m_out  # the Shiba state (measured 5x)

    # on every site, not only at the scatterer; and what is left in the gap is the
    # Lorentzian tail of the broadening: it halves with eta (no bound state to resolve)
    def site_change(e, eta=S_WAVE["eta"]):
        K = BdGKernel(e, scatterer="potential", potential=0.2, **{**S_WAVE, "eta": eta})
        return np.abs(K.site_values() * K.rho0).max()

    gap_change = site_change(0.3 * delta)
    assert gap_change < 0.05 * max(site_change(e) for e in outside[::5])
    assert site_change(0.3 * delta, eta=S_WAVE["eta"] / 2) / gap_change == pytest.approx(0.5,
                                                                                       abs=0.05)


def normal_ldos_at_fermi_level(t, t_prime, mu, n=512, eta=0.002):
    """``(rho_N, Re G_N)`` of the normal band on the site (per spin, states/eV)."""
    theta = 2 * np.pi * np.arange(n) / n
    xi = band(theta[:, None], theta[None, :], t, t_prime, mu)
    g = greens_function(xi[..., None, None], 0.0, eta)[0, 0, 0, 0]
    return -g.imag / np.pi, g.real


def shiba_energy(K: BdGKernel) -> float:
    """Energy of the largest peak of ``delta rho(0, E)`` inside the gap (grid + refinement)."""
    delta = K.delta0
    grid = np.linspace(-0.98, 0.98, 99) * delta
    e0 = grid[np.argmax(K.spectrum(grid)[0])]
    step = grid[1] - grid[0]
    res = minimize_scalar(lambda e: -float(K.spectrum([e])[0][0]), method="bounded",
                          bounds=(e0 - step, e0 + step), options={"xatol": 1e-5 * delta})
    return float(res.x)


def test_shiba_bound_state_energy_follows_the_ysr_formula():
    # Continuum YSR: E_b = Delta (1 - alpha²)/(1 + alpha²), alpha = pi rho_N J S. With the
    # lattice's particle-hole asymmetry the local G0 also has a tau_3 part b = V Re G_N, and
    # det(1 - G0 V tau_0) = 0 gives, in the spin-up electron channel measured here,
    # E_b / Delta = -(1 - alpha² - b²) / sqrt((1 - alpha² - b²)² + 4 alpha²).
    rho_n, re_g = normal_ldos_at_fermi_level(S_WAVE["t"], S_WAVE["t_prime"], S_WAVE["mu"])
    couplings = [0.1, 0.2, 0.3, 0.5]
    found, predicted = [], []
    for v in couplings:
        K = BdGKernel(0.0, scatterer="magnetic", potential=v, **S_WAVE)
        found.append(shiba_energy(K) / K.delta0)
        alpha, b = math.pi * rho_n * v, v * re_g
        c = 1 - alpha**2 - b**2
        predicted.append(-c / math.sqrt(c * c + 4 * alpha**2))
    found, predicted = np.array(found), np.array(predicted)
    assert np.all(np.abs(found) < 1)
    np.testing.assert_allclose(found, predicted, atol=0.05)  # N = 64 grid, eta = Delta/40
    # stronger coupling pulls the state from the gap edge through zero (the level crossing)
    assert np.all(np.diff(found) > 0)
    assert found[0] < -0.5 and found[-1] > 0.3


# -- limits and symmetries -------------------------------------------------------------------
@pytest.mark.parametrize("pairing", ["s", "d"])
@pytest.mark.parametrize("scatterer", ["potential", "magnetic"])
def test_normal_state_limit_is_the_one_band_t_matrix(pairing, scatterer):
    p = dict(energy=0.03, t=0.15, t_prime=-0.045, mu=-0.15, eta=0.004, kgrid=64, reach=100.0)
    K = BdGKernel(pairing=pairing, delta0=0.0, scatterer=scatterer, potential=0.4,
                  projection="site", **p)
    theta = 2 * np.pi * np.arange(p["kgrid"]) / p["kgrid"]
    xi = band(theta[:, None], theta[None, :], p["t"], p["t_prime"], p["mu"])
    g = greens_function(xi[..., None, None], p["energy"], p["eta"])
    drho = delta_site_ldos(g, t_matrix(g, [[0.4]]))[..., 0]
    rho0 = -g[0, 0, 0, 0].imag / np.pi
    assert abs(K.rho0 - rho0) < 1e-10
    assert np.abs(K.site_values() - drho / rho0).max() < 1e-10
    assert np.abs(drho / rho0).max() > 1e-3  # not trivially zero


def test_swave_pattern_has_c4_symmetry():
    K = BdGKernel(0.03, pairing="s", delta0=0.02, eta=0.004, kgrid=48, reach=40.0)
    v = K.site_values()
    n = np.arange(K.kgrid)
    np.testing.assert_allclose(v, v[np.ix_(-n % K.kgrid, n)].T, atol=1e-12)  # v(n1,n2)=v(-n2,n1)
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-30, 30, (2, 300))
    k = K.evaluate(x, y)
    peak = np.abs(k).max()
    np.testing.assert_allclose(K.evaluate(-y, x), k, atol=1e-12 * peak)
    np.testing.assert_allclose(K.evaluate(-x, -y), k, atol=1e-12 * peak)


@pytest.mark.parametrize("scatterer", ["potential", "magnetic"])
def test_dwave_pattern_mirror_symmetries(scatterer):
    K = BdGKernel(0.02, pairing="d", scatterer=scatterer, eta=0.004, kgrid=48, reach=40.0)
    v = K.site_values()
    n = np.arange(K.kgrid)
    np.testing.assert_allclose(v, v[-n % K.kgrid], atol=1e-12)  # x -> -x
    np.testing.assert_allclose(v, v.T, atol=1e-12)  # x <-> y
    rng = np.random.default_rng(4)
    x, y = rng.uniform(-30, 30, (2, 300))
    k = K.evaluate(x, y)
    peak = np.abs(k).max()
    assert np.std(k) > 1e-3 * peak  # a structured pattern
    np.testing.assert_allclose(K.evaluate(-x, y), k, atol=1e-12 * peak)
    np.testing.assert_allclose(K.evaluate(y, x), k, atol=1e-12 * peak)


# -- continuous coordinates, normalisation, bookkeeping ------------------------------------------
def test_evaluate_is_the_gaussian_orbital_sum_and_its_azimuthal_average():
    K = BdGKernel(0.02, eta=0.004, kgrid=40, reach=30.0, orbital_sigma=1.2, projection="site")
    pos, v = K.site_positions(), K.site_values()
    keep = np.hypot(pos[..., 0], pos[..., 1]) <= K.reach
    pts = np.array([[0.0, 0.0], [1.9, 0.3], [3.8, 3.8], [-7.1, 12.2], [29.0, 0.5]])
    d2 = ((pts[:, None, :] - pos[keep][None, :, :]) ** 2).sum(-1)
    s2 = K.orbital_sigma**2
    direct = K.a**2 / (2 * np.pi * s2) * np.exp(-d2 / (2 * s2)) @ v[keep]  # sum of orbitals
    peak = np.abs(direct).max()
    np.testing.assert_allclose(K.evaluate(pts[:, 0], pts[:, 1]), direct, atol=1e-5 * peak)
    assert np.all(K.evaluate(np.array([40.0, 0.0]), np.array([0.0, 37.0])) == 0.0)

    r = np.array([0.0, 0.7, 3.8, 9.3, 20.0])
    phi = np.linspace(0, 2 * np.pi, 2880, endpoint=False)
    average = K.evaluate(r[:, None] * np.cos(phi), r[:, None] * np.sin(phi)).mean(axis=1)
    np.testing.assert_allclose(K.azimuthal_average(r), average, atol=1e-5 * peak)


def test_spectrum_agrees_with_the_site_map():
    K = BdGKernel(0.01, pairing="d", kgrid=40, reach=30.0, projection="site")
    drho, rho0 = K.spectrum([0.01], site=(2, -1))
    assert rho0[0] == pytest.approx(K.rho0, rel=1e-12)
    assert drho[0] == pytest.approx(K.site_values()[2, -1] * K.rho0, rel=1e-10)


def restricted(big: BdGKernel, n: int) -> np.ndarray:
    """``big``'s site values on the cells of an ``n x n`` supercell, in its index order."""
    idx = np.arange(n)
    idx = np.where(idx < (n + 1) // 2, idx, idx - n) % big.kgrid
    return big.site_values()[np.ix_(idx, idx)]


def kept_error(K: BdGKernel, big: BdGKernel) -> float:
    """Largest difference on the sites within reach, relative to the pattern's peak."""
    ref = restricted(big, K.kgrid)
    pos = K.site_positions()
    keep = np.hypot(pos[..., 0], pos[..., 1]) <= K.reach
    return float(np.abs(K.site_values() - ref)[keep].max() / np.abs(ref).max())


def test_automatic_kgrid_keeps_the_images_of_the_scatterer_negligible():
    p = dict(energy=0.02, eta=0.01, reach=30.0)
    K = BdGKernel(**p)
    decay = square_max_velocity(K.t, K.t_prime, K.a) / K.eta
    assert K.kgrid % 2 == 0 and K.kgrid * K.a >= 2 * K.reach + 3 * decay
    big = BdGKernel(kgrid=2 * K.kgrid, **p)
    err = kept_error(K, big)
    assert err < 1e-3  # measured 3e-4
    # the bare geometric minimum (supercell just over 2 reach) errs at the 1e-1 level
    assert kept_error(BdGKernel(kgrid=28, **p), big) > 10 * err


def test_params_recreate_the_kernel_and_are_json():
    K = BdGKernel(-0.015, pairing="s", delta0=0.03, scatterer="magnetic", potential=-0.3,
                  a=3.9, orbital_sigma=0.8, reach=25.0, kgrid=30)
    params = json.loads(json.dumps(K.params()))
    assert params["model"] == "bdg" == K.name
    again = BdGKernel(**{k: v for k, v in params.items() if k != "model"})
    assert again == K
    np.testing.assert_array_equal(again.site_values(), K.site_values())
    assert K.isotropic is False
    np.testing.assert_array_equal(K.lattice, 3.9 * np.eye(2))
    assert K.extent == 25.0


@pytest.mark.parametrize("bad, match", [
    (dict(pairing="p"), "pairing"),
    (dict(scatterer="kondo"), "scatterer"),
    (dict(eta=0.0), "eta"),
    (dict(t=-0.1), "t out of range"),
    (dict(a=float("nan")), "a out of range"),
    (dict(reach=100.0, kgrid=32), "kgrid 32 too small"),
    (dict(kgrid=40.5), "integer"),
    (dict(eta=1e-5), "raise eta"),
])
def test_invalid_parameters_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        BdGKernel(0.01, **bad)
