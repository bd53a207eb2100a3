"""Tight-binding lattice kernels against analytic results: band structures, the real-space
Hamiltonian, the continuum (2D electron gas) limit, 2k_F and nesting features in q-space,
the Born limit and the point-group symmetries."""

import json
import math

import numpy as np
from scipy import special
import pytest
from scipy.optimize import brentq

from qpiset.physics import HBAR2_OVER_2ME, FriedelKernel
from qpiset.physics.lattice import LatticeKernel
from qpiset.physics.lattice_greens import greens_function
from qpiset.physics.tight_binding import TightBinding

A = 2.5  # Å


def square_dispersion(kx, ky, t, t_prime, mu, a=A):
    return (-2 * t * (np.cos(kx * a) + np.cos(ky * a))
            - 4 * t_prime * np.cos(kx * a) * np.cos(ky * a) - mu)


def fermi_wavevector(direction, energy, t, t_prime, mu, a=A):
    """|k| (1/Å) along the unit vector ``direction`` where the square band crosses
    ``energy`` (bisection of the analytic dispersion from the band bottom at k = 0)."""
    ux, uy = direction
    kmax = math.pi / (a * max(abs(ux), abs(uy)))  # zone boundary along the direction
    return brentq(lambda k: square_dispersion(k * ux, k * uy, t, t_prime, mu, a) - energy,
                  1e-9, kmax)


def zero_crossings(r, f):
    """Positions where ``f(r)`` changes sign (linear interpolation)."""
    i = np.nonzero(np.sign(f[1:]) != np.sign(f[:-1]))[0]
    return r[i] - f[i] * (r[i + 1] - r[i]) / (f[i + 1] - f[i])


def q_space(kernel, size=512):
    """|FFT| of the square-lattice site pattern (one orbital per cell), zero-padded to
    ``size`` cells: ``|delta rho(q)|`` on the q-grid ``2 pi (i1, i2) / (size a)``."""
    pos, val = kernel.site_values()
    n = np.rint(pos / kernel.lattice[0, 0]).astype(int)
    assert np.allclose(n * kernel.lattice[0, 0], pos)
    image = np.zeros((size, size))
    image[n[:, 0] % size, n[:, 1] % size] = val
    return np.abs(np.fft.fft2(image))


# -- models --------------------------------------------------------------------------------
def test_square_bands_are_the_cosine_dispersion():
    tb = TightBinding.square(t=0.8, t_prime=-0.25, mu=0.3, a=A)
    k = np.random.default_rng(1).uniform(-2, 2, (50, 2))
    bands = tb.bands(k)[:, 0]
    assert np.allclose(bands, square_dispersion(k[:, 0], k[:, 1], 0.8, -0.25, 0.3))
    # hk on the phase grid is the same dispersion at theta = k a
    n = 8
    theta = 2 * np.pi * np.arange(n) / n
    tx, ty = np.meshgrid(theta, theta, indexing="ij")
    assert np.allclose(tb.hk(n)[..., 0, 0], square_dispersion(tx / A, ty / A, 0.8, -0.25, 0.3))


def test_honeycomb_bands_and_geometry():
    t, mu, a = 2.7, 0.2, 2.46
    tb = TightBinding.honeycomb(t=t, mu=mu, a=a)
    a1, a2 = tb.lattice
    assert np.linalg.norm(a1) == pytest.approx(a) and np.linalg.norm(a2) == pytest.approx(a)
    for i, j, (n1, n2), _ in tb.hoppings:  # every bond joins nearest neighbours a/sqrt(3)
        bond = n1 * a1 + n2 * a2 + tb.tau[i] - tb.tau[j]
        assert np.linalg.norm(bond) == pytest.approx(a / math.sqrt(3))
    k = np.random.default_rng(2).uniform(-3, 3, (40, 2))
    f = np.abs(1 + np.exp(1j * k @ a1) + np.exp(1j * k @ a2))
    assert np.allclose(tb.bands(k), np.stack([-t * f - mu, t * f - mu], axis=1))
    # Dirac point at K = (4 pi / 3a, 0): both bands at -mu
    assert np.allclose(tb.bands(np.array([4 * np.pi / (3 * a), 0.0])), -mu)


def test_bloch_hamiltonian_is_the_real_space_hamiltonian():
    """G(R) from hk by FFT equals the inverse of the real-space Hamiltonian of an N x N
    torus built from the definition <R+n, a|H|R, b> = t plus hermitian partners."""
    tb = TightBinding(
        lattice=[[2.0, 0.0], [0.7, 1.8]], tau=[[0.0, 0.0], [0.9, 0.4]], onsite=[0.3, -0.2],
        hoppings=[(0, 1, (0, 0), 0.5), (1, 0, (1, 0), 0.4 + 0.2j), (0, 0, (1, 1), -0.3),
                  (1, 1, (0, 1), 0.25j), (0, 1, (-1, 2), 0.1)])
    n, m = 5, 2

    def index(c1, c2, orb):
        return ((c1 % n) * n + c2 % n) * m + orb

    h = np.zeros((n * n * m,) * 2, dtype=complex)
    for c1 in range(n):
        for c2 in range(n):
            for orb in range(m):
                h[index(c1, c2, orb), index(c1, c2, orb)] += tb.onsite[orb]
            for a, b, (n1, n2), t in tb.hoppings:
                h[index(c1 + n1, c2 + n2, a), index(c1, c2, b)] += t
                h[index(c1, c2, b), index(c1 + n1, c2 + n2, a)] += np.conj(t)
    z = 0.15 + 0.05j
    g_real = np.linalg.inv(z * np.eye(len(h)) - h)
    g = greens_function(tb.hk(n), z.real, z.imag)
    for c1 in range(n):
        for c2 in range(n):
            for a in range(m):
                for b in range(m):
                    expected = g_real[index(c1, c2, a), index(0, 0, b)]
                    assert g[c1, c2, a, b] == pytest.approx(expected)


# -- the continuum limit --------------------------------------------------------------------
def test_square_lattice_near_band_bottom_is_the_2d_electron_gas():
    # E ~ E_min + t a² k² near k = 0: a parabolic band with hbar²/2m* = t a²; k_F a = 0.3
    t, a, eps, eta, v = 1.0, A, 0.09, 0.01, 0.02
    energy = -4 * t + eps  # mu = 0: band bottom at -4t, the bias eps above it
    lattice = LatticeKernel("square", energy, t=t, mu=0.0, a=a, eta=eta, potential=v,
                            orbital_sigma=0.8, reach=150.0)
    # Born limit: contact potential v a², phase shift -m* v a² / 2 hbar² = -v / 4t
    gas = FriedelKernel(None, energy, mass=HBAR2_OVER_2ME / (t * a * a), band_bottom=-4 * t,
                        eta=eta, phase_shift=-v / (4 * t), tip_sigma=0.8)
    k_axis = fermi_wavevector((1, 0), energy, t, 0.0, 0.0)
    k_diag = fermi_wavevector((1 / math.sqrt(2), 1 / math.sqrt(2)), energy, t, 0.0, 0.0)
    assert k_axis * a == pytest.approx(0.3, rel=0.01)  # the lattice is fine: k_F a small
    assert gas.period == pytest.approx(math.pi / k_axis, rel=0.01)

    r = np.arange(10.0, 146.0, 0.5)
    profile, reference = lattice.azimuthal_average(r), gas.radial(r)
    zeros = zero_crossings(r, profile)
    assert len(zeros) >= 9
    half_period = np.polyfit(np.arange(len(zeros)), zeros, 1)[0]
    assert 2 * half_period == pytest.approx(gas.period, rel=0.02)
    assert 2 * half_period == pytest.approx(math.pi / (0.5 * (k_axis + k_diag)), rel=0.02)
    # same normalisation: rho0 = m*/2 pi hbar² per area (a step at the band bottom,
    # Lorentzian-broadened by eta), and the same amplitude
    step = 0.5 + math.atan(eps / eta) / math.pi
    site = LatticeKernel("square", energy, t=t, mu=0.0, a=a, eta=eta, potential=v,
                         orbital_sigma=0.8, reach=150.0, projection="site")
    assert site.rho0 == pytest.approx(step / (4 * math.pi * t * a * a), rel=0.02)
    # the continuum counts each orbital's overlap with its neighbours: in the gas
    # -(1/pi) Im G(d) = rho0 J0(k d), so rho0 gains sum_d S(d) J0(k_F d)
    n = np.arange(-6, 7)
    d = a * np.hypot(*np.meshgrid(n, n))
    gain = np.sum(np.exp(-d ** 2 / (8 * 0.8 ** 2)) * special.j0(k_axis * d))
    assert lattice.rho0 == pytest.approx(site.rho0 * gain, rel=0.02)
    scale = np.dot(profile, reference) / np.dot(reference, reference)
    assert scale == pytest.approx(1.0, rel=0.1)
    assert np.corrcoef(profile, reference)[0, 1] > 0.98


# -- q-space --------------------------------------------------------------------------------
def test_2kf_peaks_follow_the_anisotropic_fermi_surface():
    t, t_prime, mu, eta, reach = 1.0, -0.3, -2.3, 0.02, 150.0
    kernel = LatticeKernel("square", 0.0, t=t, t_prime=t_prime, mu=mu, a=A, eta=eta,
                           potential=0.5, reach=reach)
    two_kf_axis = 2 * fermi_wavevector((1, 0), 0.0, t, t_prime, mu)
    two_kf_diag = 2 * fermi_wavevector((1 / math.sqrt(2), 1 / math.sqrt(2)), 0.0, t, t_prime,
                                       mu)
    resolution = 2 * math.pi / (2 * reach)  # of a pattern known over a disc of radius reach
    assert two_kf_axis - two_kf_diag > 4 * resolution  # the directions are told apart

    spectrum = q_space(kernel)
    size = spectrum.shape[0]
    steps = np.arange(1, size // 2)
    dq = 2 * math.pi / (size * A)
    q_axis, q_diag = steps * dq, steps * dq * math.sqrt(2)
    along_axis, along_diag = spectrum[steps, 0], spectrum[steps, steps]
    away = q_axis > 0.3  # away from the forward-scattering region around q = 0
    peak_axis = q_axis[away][np.argmax(along_axis[away])]
    away = q_diag > 0.3
    peak_diag = q_diag[away][np.argmax(along_diag[away])]
    assert peak_axis == pytest.approx(two_kf_axis, abs=resolution)
    assert peak_diag == pytest.approx(two_kf_diag, abs=resolution)


def test_perfect_nesting_gives_the_pi_pi_checkerboard():
    def pi_pi_weight(mu):
        kernel = LatticeKernel("square", 0.0, t=1.0, t_prime=0.0, mu=mu, a=A, eta=0.02,
                               potential=0.5, reach=100.0)
        spectrum = q_space(kernel, 128)
        return spectrum, spectrum[64, 64] / np.median(spectrum)

    nested, nested_weight = pi_pi_weight(0.0)  # half filling, t' = 0: Q = (pi/a, pi/a)
    assert np.unravel_index(np.argmax(nested), nested.shape) == (64, 64)
    _, doped_weight = pi_pi_weight(-0.5)  # no nesting
    assert nested_weight > 10 * doped_weight


# -- sanity ---------------------------------------------------------------------------------
def test_born_limit_is_linear_in_the_potential():
    x = np.array([0.0, 2.5, 7.3, -11.0, 20.0])
    y = np.array([0.0, 0.0, 3.1, 4.4, -13.0])

    def pattern(v):
        return LatticeKernel("square", 0.0, t=1.0, mu=-1.0, eta=0.05, potential=v,
                             reach=25.0).evaluate(x, y)

    weak = pattern(1e-3)
    tolerance = 2e-3 * np.abs(weak).max()  # second order: ~ V |G(0)| ~ 1e-3 relative
    assert np.allclose(pattern(2e-3), 2 * weak, rtol=0, atol=2 * tolerance)
    assert np.allclose(pattern(-1e-3), -weak, rtol=0, atol=tolerance)
    strong = pattern(3.0)  # beyond Born: multiple scattering makes it non-linear
    assert not np.allclose(strong, 3000 * weak, rtol=0, atol=0.1 * np.abs(strong).max())


def test_square_pattern_has_c4v_symmetry():
    kernel = LatticeKernel("square", 0.1, t=1.0, t_prime=-0.2, mu=-0.7, eta=0.04, reach=30.0)
    x, y = np.random.default_rng(3).uniform(-25, 25, (2, 200))
    k = kernel.evaluate(x, y)
    assert np.abs(k).max() > 1e-3
    scale = np.abs(k).max()
    for xx, yy in ((y, x), (-x, y), (x, -y), (-y, x)):
        assert np.allclose(kernel.evaluate(xx, yy), k, rtol=0, atol=1e-9 * scale)


def test_honeycomb_pattern_has_c3_but_not_c6_symmetry():
    kernel = LatticeKernel("honeycomb", 0.4, eta=0.05, potential=2.0, reach=30.0)
    x, y = np.random.default_rng(4).uniform(-25, 25, (2, 200))
    k = kernel.evaluate(x, y)
    scale = np.abs(k).max()

    def rotated(angle):
        c, s = math.cos(angle), math.sin(angle)
        return kernel.evaluate(c * x - s * y, s * x + c * y)

    assert np.allclose(rotated(2 * math.pi / 3), k, rtol=0, atol=1e-9 * scale)
    assert np.allclose(rotated(-2 * math.pi / 3), k, rtol=0, atol=1e-9 * scale)
    # the impurity sits on sublattice A: a 60° rotation swaps the sublattices
    assert not np.allclose(rotated(math.pi / 3), k, rtol=0, atol=1e-2 * scale)


def test_hopping_file_equals_the_built_in_square_model(tmp_path):
    t, t_prime, mu = 0.9, -0.2, -0.6
    path = tmp_path / "square.json"
    path.write_text(json.dumps({
        "description": "one s orbital on a square lattice",
        "lattice": [[A, 0.0], [0.0, A]],
        "orbitals": [{"name": "s", "position": [0.0, 0.0], "onsite": 0.0}],
        "hoppings": [["s", "s", [1, 0], -t], [0, 0, [0, 1], -t],
                     ["s", "s", [1, 1], -t_prime], ["s", "s", [1, -1], [-t_prime, 0.0]]],
    }))
    from_file = LatticeKernel("file", 0.05, hopping_file=path, mu=mu, eta=0.05, reach=30.0)
    built_in = LatticeKernel("square", 0.05, t=t, t_prime=t_prime, mu=mu, a=A, eta=0.05,
                             reach=30.0)
    assert np.allclose(TightBinding.from_file(path).hk(6) - mu * np.eye(1),
                       TightBinding.square(t, t_prime, mu, A).hk(6))
    assert from_file.n_k == built_in.n_k
    x, y = np.random.default_rng(5).uniform(-30, 30, (2, 100))
    assert np.allclose(from_file.evaluate(x, y), built_in.evaluate(x, y), rtol=1e-10, atol=0)


GOOD = {"lattice": [[2.5, 0], [0, 2.5]],
        "orbitals": [{"name": "s", "position": [0, 0], "onsite": 0.0}],
        "hoppings": [["s", "s", [1, 0], -1.0], ["s", "s", [0, 1], -1.0]]}


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("hoppings"), "missing key"),
    (lambda d: d.update(lattice=[[2.5, 0]]), "lattice"),
    (lambda d: d.update(lattice=[[2.5, 0], [5.0, 0]]), "collinear"),
    (lambda d: d.update(hopings=[]), "unknown key"),
    (lambda d: d["hoppings"].append(["p", "s", [1, 1], -0.1]), "no orbital named 'p'"),
    (lambda d: d["hoppings"].append([3, 0, [1, 1], -0.1]), "neither a name nor an index"),
    (lambda d: d["hoppings"].append(["s", "s", [-1, 0], -1.0]), "listed twice"),
    (lambda d: d["hoppings"].append(["s", "s", [0, 0], 0.5]), "on-site"),
    (lambda d: d["hoppings"].append(["s", "s", [0.5, 0], 0.5]), "two integers"),
    (lambda d: d["hoppings"].append(["s", "s", [2, 0], "big"]), "t \\(eV"),
    (lambda d: d["orbitals"][0].pop("onsite"), "orbital 0"),
    (lambda d: d["orbitals"][0].update(position=[0, float("nan")]), "position"),
])
def test_bad_hopping_file_raises_a_clear_error(tmp_path, change, message):
    data = json.loads(json.dumps(GOOD))
    change(data)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message) as info:
        TightBinding.from_file(path)
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match=message):
        LatticeKernel("file", hopping_file=path)


def test_hopping_file_that_is_not_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"lattice": [[2.5, 0], [0, 2.5]],')
    with pytest.raises(ValueError, match="not valid JSON") as info:
        TightBinding.from_file(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(structure="kagome"), "unknown structure"),
    (dict(eta=0.0), "eta"),
    (dict(orbital_sigma=-1.0), "orbital_sigma"),
    (dict(energy=float("nan")), "energy"),
    (dict(structure="honeycomb", t_prime=0.1), "not part of the honeycomb"),
    (dict(structure="file"), "needs hopping_file"),
    (dict(structure="square", hopping_file="x.json"), "only used with"),
    (dict(impurity_orbital=1), "impurity_orbital"),
    (dict(reach=100.0, kgrid=64), "kgrid must be an integer >= 86"),  # reach + 8 sigma
    (dict(reach=100.0, kgrid=64, projection="site"), "kgrid must be an integer >= 84"),
    (dict(projection="sites"), "unknown projection"),
    (dict(orbital="p"), "unknown orbital"),
    (dict(orbital="image"), "needs orbital_file"),
])
def test_invalid_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LatticeKernel(**kwargs)


def test_automatic_k_grid_suppresses_the_periodic_images():
    def sites(**kw):
        return LatticeKernel("square", 0.0, t=1.0, mu=-1.0, eta=0.02, reach=60.0,
                             **kw).site_values()[1]

    auto = LatticeKernel("square", 0.0, t=1.0, mu=-1.0, eta=0.02, reach=60.0)
    n = auto.n_k
    assert n * A > 2 * auto.reach
    pos, values = auto.site_values()
    reference = sites(kgrid=2 * n)
    far = np.linalg.norm(pos, axis=1) > 40  # where the images would show first
    scale = np.abs(reference[far]).max()
    assert np.abs(values - reference)[far].max() < 0.01 * scale
    # the bare requirement N a > 2 reach is not enough at this broadening
    bare = sites(kgrid=math.floor(2 * (60.0 + auto.orbital_model.cutoff) / A) + 1)
    assert np.abs(bare - reference)[far].max() > 0.1 * scale


def test_interface_params_azimuthal_average_and_lattice():
    kernel = LatticeKernel("honeycomb", 0.5, t=2.7, mu=0.1, a=2.46, eta=0.05, reach=20.0)
    params = kernel.params()
    assert params["model"] == "lattice"
    json.dumps(params)
    again = LatticeKernel(**{k: v for k, v in params.items() if k != "model"})
    assert again == kernel
    x, y = np.random.default_rng(6).uniform(-20, 20, (2, 20))
    assert np.array_equal(again.evaluate(x, y), kernel.evaluate(x, y))
    assert not kernel.isotropic and kernel.extent == 20.0
    assert np.allclose(kernel.lattice, 2.46 * np.array([[1, 0], [0.5, math.sqrt(3) / 2]]))
    # the azimuthal average; at r = 0 it is the value on the impurity
    phi = np.linspace(0, 2 * np.pi, 4000, endpoint=False)
    for r in (3.0, 11.0):
        mean = kernel.evaluate(r * np.cos(phi), r * np.sin(phi)).mean()
        assert kernel.azimuthal_average(np.array([r]))[0] == pytest.approx(mean, rel=1e-4)
    assert np.allclose(kernel.azimuthal_average(np.zeros(2)), kernel.evaluate(0.0, 0.0),
                       rtol=1e-12)
    assert kernel.azimuthal_average(np.zeros((2, 3))).shape == (2, 3)
    # orbitals are kept out to reach + their cutoff: the pattern is zero one
    # cutoff farther out (8 widths)
    cut = kernel.orbital_model.cutoff
    assert cut == 8 * 0.8
    assert kernel.evaluate(0.0, 20.0 + 2 * cut + 0.5) == 0.0
    assert kernel.evaluate(0.0, 20.0 + 5 * 0.8) != 0.0
