"""The continuum LDOS of the lattice models (issue 14), against an independent
implementation written here: plain numpy, the real-space Hamiltonian of a small periodic
crystal, the impurity by exact inversion (no T-matrix), and the double sum over every
pair of orbitals; the clean normalisation by quadrature over a unit cell."""

import math

import numpy as np
import pytest

from qpiset.physics import BdGKernel, LatticeKernel
from qpiset.physics.orbitals import GaussianOrbital, SlaterOrbital

# -- the independent implementation ---------------------------------------------------------


def crystal(lattice, tau, n):
    """Sites of an n x n periodic crystal: positions (M, 2) centred on cell 0, cell
    indices (M, 2), orbital indices (M,)."""
    half = n // 2
    cells, orbs, pos = [], [], []
    for c1 in range(-half, n - half):
        for c2 in range(-half, n - half):
            for a, t in enumerate(tau):
                cells.append((c1, c2))
                orbs.append(a)
                pos.append(c1 * lattice[0] + c2 * lattice[1] + t)
    return np.array(pos), np.array(cells), np.array(orbs)


def torus_distance(pos, lattice, n):
    """|p_i - p_j| to the nearest periodic image, (M, M)."""
    d = pos[:, None, :] - pos[None, :, :]
    best = np.full(d.shape[:2], np.inf)
    for s1 in (-1, 0, 1):
        for s2 in (-1, 0, 1):
            shift = n * (s1 * lattice[0] + s2 * lattice[1])
            best = np.minimum(best, np.linalg.norm(d + shift, axis=-1))
    return best


def hamiltonian(pos, lattice, n, hops, onsite):
    """Real-space H: ``onsite[a]`` on every orbital ``a``, ``hops`` [(distance, t)] between
    every pair at that torus distance."""
    dist = torus_distance(pos, lattice, n)
    m = len(onsite)
    h = np.diag(np.tile(np.asarray(onsite, float), len(pos) // m))
    for d, t in hops:
        h = h + np.where(np.abs(dist - d) < 1e-6, t, 0.0)
    return h


def amplitude(orbital, points, pos):
    """w(r - p_s) for every point and site, (P, M), cut where the model cuts its orbitals."""
    d = points[:, None, :] - pos[None, :, :]
    return orbital.amplitude(d[..., 0], d[..., 1])


def ldos(gmat, w_points, rows):
    """-(1/pi) Im sum_{s s'} w_s G_ss' w_s' over every pair (rows: the orbitals that count)."""
    w = w_points[:, rows]
    return -np.einsum("ps,st,pt->p", w, gmat[np.ix_(rows, rows)], w).imag / np.pi


def cell_mean(gmat, lattice, pos, orbital, rows, m=40):
    """The clean LDOS averaged over a unit cell by quadrature (m x m points)."""
    u = (np.arange(m) + 0.5) / m
    f1, f2 = np.meshgrid(u, u, indexing="ij")
    pts = f1.reshape(-1, 1) * lattice[0] + f2.reshape(-1, 1) * lattice[1]
    return float(np.mean(ldos(gmat, amplitude(orbital, pts, pos), rows)))


def reference_kernel(lattice, tau, n, hops, onsite, potential, orbital, points, *,
                     nambu=None):
    """delta rho(r) / rho0 with all pairs; ``nambu=(delta, v_imp)`` for BdG."""
    pos, _, _ = crystal(lattice, tau, n)
    h = hamiltonian(pos, lattice, n, hops, onsite)
    rows = np.arange(len(pos))
    if nambu is not None:
        delta, vimp = nambu
        h = np.block([[h, delta], [delta, -h]])
        pos = np.concatenate([pos, pos])
        rows = np.arange(len(pos) // 2)  # electron part
    z = (potential[0] + 1j * potential[1])
    clean = np.linalg.inv(z * np.eye(len(h)) - h)
    v = np.zeros(len(h))
    imp = int(np.flatnonzero(np.all(np.abs(pos[: len(rows)]) < 1e-9, axis=1))[0])
    if nambu is None:
        v[imp] = potential[2]
    else:
        v[imp], v[imp + len(rows)] = vimp
    dirty = np.linalg.inv(z * np.eye(len(h)) - h - np.diag(v))
    w = amplitude(orbital, points, pos)
    rho0 = cell_mean(clean, lattice, pos, orbital, rows)
    return ldos(dirty - clean, w, rows) / rho0


SQUARE = 2.5 * np.eye(2)
HONEY = 2.46 * np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])


def _points(rng, radius, k=60):
    r = radius * np.sqrt(rng.uniform(0, 1, k))
    phi = rng.uniform(0, 2 * np.pi, k)
    return np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)


# -- the continuum against all pairs ------------------------------------------------------

@pytest.mark.parametrize("t_prime", [0.0, -0.3])
def test_square_lattice_equals_the_sum_over_all_pairs(t_prime):
    n, reach = 18, 9.0
    K = LatticeKernel("square", 0.1, t=1.0, t_prime=t_prime, mu=-1.0, eta=0.05, reach=reach,
                      kgrid=n, potential=0.8)
    pts = _points(np.random.default_rng(1), reach)
    hops = [(2.5, -1.0)] + ([(2.5 * math.sqrt(2), -t_prime)] if t_prime else [])
    ref = reference_kernel(SQUARE, np.zeros((1, 2)), n, hops, [1.0], (0.1, 0.05, 0.8),
                           K.orbital_model, pts)
    got = K.evaluate(pts[:, 0], pts[:, 1])
    assert np.abs(got - ref).max() < 1e-6 * np.abs(ref).max()
    assert np.abs(ref).max() > 1e-2


def test_honeycomb_equals_the_sum_over_all_pairs():
    n, reach = 14, 8.0
    K = LatticeKernel("honeycomb", 0.6, eta=0.08, reach=reach, kgrid=n, potential=2.0)
    tau = np.array([[0.0, 0.0], (HONEY[0] + HONEY[1]) / 3])
    pts = _points(np.random.default_rng(2), reach)
    ref = reference_kernel(HONEY, tau, n, [(2.46 / math.sqrt(3), -2.7)], [0.0, 0.0],
                           (0.6, 0.08, 2.0), K.orbital_model, pts)
    got = K.evaluate(pts[:, 0], pts[:, 1])
    assert np.abs(got - ref).max() < 1e-6 * np.abs(ref).max()


@pytest.mark.parametrize("pairing, scatterer", [("s", "potential"), ("d", "magnetic")])
def test_bdg_electron_part_equals_the_sum_over_all_pairs(pairing, scatterer):
    n, reach, a = 14, 12.0, 3.8
    p = dict(t=0.15, t_prime=-0.045, mu=-0.15, eta=0.01, delta0=0.04, potential=0.1)
    K = BdGKernel(0.02, pairing=pairing, scatterer=scatterer, reach=reach, kgrid=n, a=a, **p)
    pos, _, _ = crystal(a * np.eye(2), np.zeros((1, 2)), n)
    dist = torus_distance(pos, a * np.eye(2), n)
    d = pos[:, None, :] - pos[None, :, :]
    nn = np.abs(dist - a) < 1e-6
    if pairing == "s":
        delta = p["delta0"] * np.eye(len(pos))
    else:  # Delta0/2 (cos kx - cos ky): +Delta0/4 on x bonds, -Delta0/4 on y bonds
        along_x = np.abs(np.abs(d[..., 1]) % (n * a)) < 1e-6
        delta = np.where(nn & along_x, p["delta0"] / 4, np.where(nn, -p["delta0"] / 4, 0.0))
    hops = [(a, -p["t"]), (a * math.sqrt(2), -p["t_prime"])]
    vimp = (0.1, -0.1) if scatterer == "potential" else (0.1, 0.1)
    pts = _points(np.random.default_rng(3), reach - K.orbital_model.cutoff)
    ref = reference_kernel(a * np.eye(2), np.zeros((1, 2)), n, hops, [-p["mu"]],
                           (0.02, p["eta"], None), K.orbital_model, pts, nambu=(delta, vimp))
    got = K.evaluate(pts[:, 0], pts[:, 1])
    assert np.abs(got - ref).max() < 1e-6 * np.abs(ref).max()


def test_the_normalisation_is_the_clean_continuum_ldos_averaged_over_space():
    n = 14
    K = LatticeKernel("honeycomb", 0.6, eta=0.08, reach=8.0, kgrid=n)
    tau = np.array([[0.0, 0.0], (HONEY[0] + HONEY[1]) / 3])
    pos, _, _ = crystal(HONEY, tau, n)
    h = hamiltonian(pos, HONEY, n, [(2.46 / math.sqrt(3), -2.7)], [0.0, 0.0])
    clean = np.linalg.inv((0.6 + 0.08j) * np.eye(len(h)) - h)
    rho0 = cell_mean(clean, HONEY, pos, K.orbital_model, np.arange(len(pos)))
    area = abs(np.linalg.det(HONEY))
    assert K.rho0 == pytest.approx(rho0, rel=1e-6)  # quadrature of the cell
    # the site projection's: -(1/pi) Im Tr G(0) / A_cell, without the overlaps
    site = LatticeKernel("honeycomb", 0.6, eta=0.08, reach=8.0, kgrid=n, projection="site")
    assert site.rho0 == pytest.approx(-np.trace(clean[:2, :2]).imag / np.pi / area, rel=1e-9)


# -- limits and symmetries ----------------------------------------------------------------

@pytest.mark.parametrize("orbital, width", [("gaussian", 0.25), ("slater", 0.12)])
def test_narrow_orbitals_give_the_site_projection(orbital, width):
    """Orbitals that do not overlap: the lattice LDOS change times the orbital density."""
    kw = dict(t=1.0, mu=-1.0, eta=0.05, reach=12.0, kgrid=24, orbital=orbital,
              orbital_sigma=width)
    K = LatticeKernel("square", 0.1, **kw)
    site = LatticeKernel("square", 0.1, projection="site", **kw)
    rng = np.random.default_rng(4)
    pts = rng.uniform(-9, 9, (400, 2))
    cont, proj = K.evaluate(*pts.T), site.evaluate(*pts.T)
    assert np.abs(cont - proj).max() < 1e-5 * np.abs(proj).max()
    # and near each site, delta rho(R) / rho0 times |w|²
    pos, values = K.site_values()
    near = np.argmin(np.linalg.norm(pts[:, None] - pos[None], axis=-1), axis=1)
    d = pts - pos[near]
    expect = values[near] * K.orbital_model.density(d[:, 0], d[:, 1])
    assert np.abs(cont - expect).max() < 1e-5 * np.abs(expect).max()


def test_overlapping_orbitals_differ_from_the_site_projection():
    """At the default width the cross terms are a large part of the map (the reason for
    the continuum default)."""
    kw = dict(t=1.0, mu=-1.0, eta=0.05, reach=12.0, kgrid=24)
    K = LatticeKernel("square", 0.0, **kw)
    site = LatticeKernel("square", 0.0, projection="site", **kw)
    ax = np.linspace(-8, 8, 65)
    a, b = K.evaluate_grid(ax, ax), site.evaluate_grid(ax, ax)
    assert np.linalg.norm(a - b) > 0.2 * np.linalg.norm(b)


def test_honeycomb_a_and_b_impurities_are_inversions_of_each_other():
    kw = dict(eta=0.08, reach=10.0, kgrid=16, potential=1.5)
    on_a = LatticeKernel("honeycomb", 0.5, impurity_orbital=0, **kw)
    on_b = LatticeKernel("honeycomb", 0.5, impurity_orbital=1, **kw)
    tau_b = (HONEY[0] + HONEY[1]) / 3
    pts = np.random.default_rng(5).uniform(-5, 5, (200, 2))
    a = on_a.evaluate(*pts.T)
    b = on_b.evaluate(*(tau_b - pts).T)  # inversion about the bond centre swaps A and B
    assert np.abs(a - b).max() < 1e-9 * np.abs(a).max()
    assert on_a.rho0 == pytest.approx(on_b.rho0, rel=1e-12)


@pytest.mark.parametrize("model", ["square", "bdg"])
def test_born_limit_is_linear_in_the_potential(model):
    def kernel(v):
        if model == "bdg":
            return BdGKernel(0.02, potential=v, reach=12.0, kgrid=16, eta=0.01)
        return LatticeKernel("square", 0.1, mu=-1.0, eta=0.05, reach=10.0, kgrid=20, potential=v)

    pts = np.random.default_rng(6).uniform(-6, 6, (200, 2))
    small, double = kernel(1e-4).evaluate(*pts.T), kernel(2e-4).evaluate(*pts.T)
    assert np.abs(double - 2 * small).max() < 1e-3 * np.abs(double).max()
    strong = kernel(1.0).evaluate(*pts.T)
    assert np.abs(strong - 1e4 * small).max() > 0.05 * np.abs(strong).max()  # not linear


def test_grid_tables_agree_with_pointwise_evaluation():
    for K in (LatticeKernel("honeycomb", 0.6, eta=0.08, reach=10.0, kgrid=16),
              LatticeKernel("square", 0.1, mu=-1.0, eta=0.05, reach=10.0, kgrid=20,
                            orbital="slater", orbital_sigma=0.5),
              BdGKernel(0.02, reach=12.0, kgrid=16, eta=0.01)):
        x = np.linspace(-7, 7, 57)
        y = np.linspace(-6, 6, 41)
        X, Y = np.meshgrid(x, y)
        grid, points = K.evaluate_grid(x, y), K.evaluate(X, Y)
        assert grid.shape == (41, 57)
        # the separable sums keep a square window of each orbital, the points a disc
        assert np.abs(grid - points).max() < 3e-5 * np.abs(points).max()


def test_q_space_shows_2kf_not_its_alias():
    """Square lattice, t = 1, mu = -1, nearest neighbours, default width: the strongest
    non-Bragg peak of |FT| along q_x is at 2 k_F = (2/3) 2 pi / a, not at G - 2 k_F."""
    a = 2.5
    cont = LatticeKernel("square", 0.0, t=1.0, mu=-1.0, reach=90.0)
    site = LatticeKernel("square", 0.0, t=1.0, mu=-1.0, reach=90.0, projection="site")
    x = np.arange(-64 * 8, 64 * 8) * (a / 8)  # 128 cells, 8 samples a cell
    keep = np.abs(x) <= 80
    x = x[keep]

    def strongest(K):
        m = K.evaluate_grid(x, x)
        win = np.hanning(len(x))
        f = np.abs(np.fft.fft2(m * np.outer(win, win)))
        q = np.fft.fftfreq(len(x), d=a / 8) * a  # in units of 2 pi / a
        line = f[0]  # q_y = 0
        ok = (q > 0.15) & (q < 0.95)
        qs, vals = q[ok], line[ok]
        peaks = [i for i in range(1, len(vals) - 1) if vals[i] >= vals[i - 1]
                 and vals[i] >= vals[i + 1]]
        return qs[max(peaks, key=lambda i: vals[i])]

    assert strongest(cont) == pytest.approx(2 / 3, abs=0.03)
    assert strongest(site) == pytest.approx(1 / 3, abs=0.03)  # the alias, as measured


# -- orbitals -----------------------------------------------------------------------------

@pytest.mark.parametrize("orbital", [GaussianOrbital(0.7), SlaterOrbital(0.6)])
def test_orbitals_are_normalised_and_their_overlaps_are_the_integrals(orbital):
    h = 0.02
    ax = np.arange(-12, 12 + h / 2, h)
    X, Y = np.meshgrid(ax, ax)
    w = orbital.amplitude(X, Y)
    assert np.sum(w * w) * h * h == pytest.approx(1.0, rel=2e-4)
    for d in (0.5, 1.4, 2.5):
        shifted = orbital.amplitude(X - d, Y)
        assert float(orbital.overlap(d, 0.0)) == pytest.approx(np.sum(w * shifted) * h * h,
                                                              rel=2e-3)


def test_an_orbital_image_and_its_file(tmp_path):
    from qpiset.physics.orbitals import ImageOrbital

    g = GaussianOrbital(0.8)
    pitch = 0.1
    ax = (np.arange(121) - 60) * pitch
    X, Y = np.meshgrid(ax, ax)
    path = tmp_path / "w.npy"
    np.save(path, 3.0 * g.amplitude(X, Y))  # any scale: normalised on reading
    w = ImageOrbital.from_file(path, pitch)
    pts = np.random.default_rng(7).uniform(-3, 3, (50, 2))
    assert np.allclose(w.amplitude(*pts.T), g.amplitude(*pts.T), atol=1e-4 * 0.5)
    assert np.allclose(w.overlap(*pts.T), g.overlap(*pts.T), atol=1e-3)
    kw = dict(t=1.0, mu=-1.0, eta=0.05, reach=8.0, kgrid=16)
    K = LatticeKernel("square", 0.1, orbital="image", orbital_file=str(path),
                      orbital_pitch=pitch, **kw)
    ref = LatticeKernel("square", 0.1, **kw)
    assert K.params()["orbital_file"] == str(path)
    pts = np.random.default_rng(8).uniform(-4, 4, (100, 2))
    a, b = K.evaluate(*pts.T), ref.evaluate(*pts.T)
    assert np.abs(a - b).max() < 2e-3 * np.abs(b).max()


def test_old_records_are_read_as_the_site_projection():
    from qpiset.physics import kernel_from_record

    record = LatticeKernel("square", 0.1, reach=10.0, kgrid=20).params()
    for key in ("projection", "orbital", "orbital_file", "orbital_pitch"):
        record.pop(key)
    assert kernel_from_record(record).projection == "site"
    assert kernel_from_record({**record, "projection": "continuum"}).projection == "continuum"
    bdg = BdGKernel(0.02, reach=12.0, kgrid=16).params()
    bdg.pop("projection")
    assert kernel_from_record(bdg).projection == "site"
