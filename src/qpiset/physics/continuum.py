"""The LDOS at a point of space from a lattice Green's function: the continuum LDOS an STM
tip measures, and the site projection it reduces to for narrow orbitals.

With orbital amplitudes ``w_a`` (:mod:`.orbitals`) on the sites ``(R, a)`` at
``p = R + tau_a``, the LDOS at ``r`` is (Kreisel et al., PRL 114, 217002 (2015))::

    rho(r, E) = -(1/pi) Im sum_{R a, R' b} w_a(r - R - tau_a) G_ab(R, R'; E) w_b(r - R' - tau_b)

and with impurities, ``delta G(R a, R' b) = sum_ij G(R - R_i)_a. T_ij G(R_j - R')_.b``
(``T`` the single- or multi-impurity T-matrix). The double sum over site pairs factorises::

    delta rho(r) = -(1/pi) Im sum_kl u_k(r) T_kl v_l(r)
    u_k(r) = sum_s w(r - p_s) L[s, k],   L[s, (i c)] = G(R_s - R_i)_{a_s c}
    v_l(r) = sum_s w(r - p_s) M[s, l],   M[s, (j d)] = G(R_j - R_s)_{d a_s}

(``k = (i, c)``: impurity ``i``, orbital ``c`` that carries its potential), so the cost is
one sum over the sites within an orbital's reach of each point, not over pairs. The
interference between neighbouring orbitals is kept; that is what puts the weight of the
Fourier transform at ``2 k_F`` rather than at its reciprocal-lattice alias ``G - 2 k_F``
(a site-diagonal map is periodic in q; the continuum map is not).

The clean LDOS averaged over space, the normalisation ``rho0`` of the kernels, follows from
the same sum: integrating over a unit cell leaves the orbitals' overlaps
``S(d) = ∫ w(r) w(r - d) d²r``::

    rho0 = -(1/pi) Im sum_{a b} sum_D G(D)_ab S(D + tau_a - tau_b) / A_cell

The **site projection** (``projection="site"``) keeps only ``R = R', a = b``:
``delta rho(r) = sum_{R a} delta rho_a(R) |w_a(r - R - tau_a)|²``, a blurred lattice LDOS,
and ``rho0 = -(1/pi) Im Tr G(0) / A_cell``. It is the continuum LDOS when neighbouring
orbitals do not overlap (``sigma`` well below the distance between orbitals, ``S`` then
``~ delta``); for overlapping orbitals it drops the cross terms, 30-70 % of the map on the
square lattice at ``sigma = 0.8 Å``, ``a = 2.5 Å``, and more than the map on graphene.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .lattice_greens import ORBITAL_CUTOFF, project_gaussian
from .orbitals import Orbital, make_orbital

__all__ = ["PROJECTIONS", "DEFAULT_PROJECTION", "PROJECTION_PARAMS", "projection_fields",
           "amplitude_sums", "continuum_ldos", "continuum_ldos_grid", "clean_ldos_mean",
           "check_projection", "site_ldos"]

#: ``projection=`` of the lattice models: the continuum LDOS (default) or the site LDOS
#: carried by orbital densities.
PROJECTIONS = ("continuum", "site")
#: the lattice models' default projection
DEFAULT_PROJECTION = "continuum"

#: points per chunk of the general (non-separable) sums
_CHUNK = 65_536
#: table rows per block of the point-by-point tables
_ROWS = 64


#: the parameters of a lattice model that choose its projection and orbital
PROJECTION_PARAMS = ("projection", "orbital", "orbital_file", "orbital_pitch")


def projection_fields(projection: str, orbital: str, width: float, orbital_file=None,
                      orbital_pitch=None) -> dict:
    """A lattice model's projection attributes (:data:`PROJECTION_PARAMS`, checked) and its
    ``orbital_model`` (:func:`~.orbitals.make_orbital` of orbital width ``width``)."""
    return {"projection": check_projection(projection), "orbital": orbital,
            "orbital_file": None if orbital_file is None else str(orbital_file),
            "orbital_pitch": None if orbital_pitch is None else float(orbital_pitch),
            "orbital_model": make_orbital(orbital, width, orbital_file, orbital_pitch)}


def check_projection(projection: str) -> str:
    if projection not in PROJECTIONS:
        raise ValueError(f"unknown projection {projection!r}; choose one of {PROJECTIONS}")
    return projection


def _neighbour_count(positions: np.ndarray, radius: float) -> int:
    """Enough neighbours for any point: twice the mean site density times the disc."""
    span = np.ptp(positions, axis=0)
    area = max(float(span[0] * span[1]), 1e-12)
    density = len(positions) / area
    return int(min(len(positions), 2 * density * np.pi * radius * radius + 16))


def amplitude_sums(points: np.ndarray, positions: np.ndarray, coeffs: np.ndarray,
                   orbital: Orbital, *, tree: cKDTree | None = None,
                   density: bool = False) -> np.ndarray:
    """``u(r) = sum_s w(r - p_s) coeffs[s]`` at ``points`` ``(P, 2)``: ``(P, K)`` for
    ``coeffs`` ``(S, K)`` (sites within the orbital's cutoff of each point); with
    ``density=True`` the orbital densities ``|w|²`` instead of ``w``."""
    shape = orbital.density if density else orbital.amplitude
    points = np.asarray(points, float).reshape(-1, 2)
    coeffs = np.asarray(coeffs)
    out = np.zeros((len(points), coeffs.shape[1]), dtype=np.result_type(coeffs, float))
    if len(positions) == 0 or len(points) == 0:
        return out
    tree = tree if tree is not None else cKDTree(positions)
    k = _neighbour_count(positions, orbital.cutoff)
    padded = np.concatenate([coeffs, np.zeros((1, coeffs.shape[1]), coeffs.dtype)])
    chunk = max(256, _CHUNK * 16 // max(1, k * coeffs.shape[1]))  # bounded gather memory
    for start in range(0, len(points), chunk):
        block = points[start:start + chunk]
        dist, idx = tree.query(block, k=k, distance_upper_bound=orbital.cutoff)
        idx = np.asarray(idx).reshape(len(block), -1)
        ok = idx < len(positions)
        safe = np.where(ok, idx, 0)
        w = shape(block[:, None, 0] - positions[safe, 0],
                  block[:, None, 1] - positions[safe, 1])
        w = np.where(ok, w, 0.0)
        out[start:start + len(block)] = np.einsum("pn,pnk->pk", w,
                                                  padded[np.where(ok, idx, len(positions))])
    return out


def _combine(u: np.ndarray, tmat: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``-(1/pi) Im sum_kl u_k T_kl v_l`` over the last axis."""
    n_k = u.shape[-1]
    if n_k > 4:
        return -np.einsum("...k,...k->...", u @ tmat, v).imag / np.pi
    out = np.zeros(u.shape[:-1])
    for k in range(n_k):  # a few orbitals: elementwise, only the imaginary part
        uk = u[..., k]
        for m in range(n_k):
            t = tmat[k, m]
            if t == 0:
                continue
            w = uk * v[..., m]
            out += t.real * w.imag + t.imag * w.real
    return out / -np.pi


def continuum_ldos(points, positions, left, tmat, right, orbital: Orbital) -> np.ndarray:
    """``delta rho(r) = -(1/pi) Im sum_kl u_k(r) T_kl v_l(r)`` at ``points`` ``(..., 2)``
    (module docstring): ``left`` and ``right`` ``(S, K)`` the propagators from the
    impurity orbitals to the sites at ``positions`` ``(S, 2)`` and back, ``tmat`` ``(K, K)``.

    Examples
    --------
    One site, one orbital: ``|w|²`` times the site LDOS change.

    >>> from qpiset.physics.orbitals import GaussianOrbital
    >>> w = GaussianOrbital(0.5)
    >>> v = continuum_ldos([[0.3, 0.0]], [[0.0, 0.0]], [[1j]], [[1.0]], [[1.0]], w)
    >>> bool(np.isclose(v[0], -w.density(0.3, 0.0) / np.pi))
    True
    """
    points = np.asarray(points, float)
    shape = points.shape[:-1]
    positions = np.asarray(positions, float).reshape(-1, 2)
    tree = cKDTree(positions) if len(positions) else None
    pts = points.reshape(-1, 2)
    u = amplitude_sums(pts, positions, left, orbital, tree=tree)
    v = u if right is left else amplitude_sums(pts, positions, right, orbital, tree=tree)
    return _combine(u, np.asarray(tmat), v).reshape(shape)


def site_ldos(positions, values, x, y, orbital: Orbital) -> np.ndarray:
    """The site projection, ``sum_s values[s] |w(r - p_s)|²`` at ``(x, y)`` (Å): for
    Gaussian orbitals the normalised Gaussian densities cut at 5 widths
    (:func:`~.lattice_greens.project_gaussian`, the model as it always was)."""
    if orbital.name == "gaussian":
        return project_gaussian(values, positions, x, y, orbital.sigma, ORBITAL_CUTOFF)
    x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    positions = np.asarray(positions, float).reshape(-1, 2)
    values = np.asarray(values, float).reshape(-1, 1)
    pts = np.stack([x.ravel(), y.ravel()], axis=1)
    return amplitude_sums(pts, positions, values, orbital, density=True)[:, 0].reshape(x.shape)


def _row_sums(x: np.ndarray, px: np.ndarray, rows: np.ndarray, n_rows: int,
              coeffs: np.ndarray, orbital: Orbital) -> np.ndarray:
    """``H[r, i, k] = sum_{s in row r} fx(x_i - px_s) coeffs[s, k]`` on the regular axis
    ``x`` (the x half of a separable orbital)."""
    step = x[1] - x[0]
    half = int(np.ceil(orbital.cutoff / step)) + 1
    nx, n_k = len(x), coeffs.shape[1]
    offsets = np.arange(-half, half + 1)
    re = np.zeros((n_k, n_rows * nx))
    im = np.zeros((n_k, n_rows * nx))
    per = max(1, 4_000_000 // len(offsets))  # sites per chunk: bounded memory
    for s0 in range(0, len(px), per):
        p = px[s0:s0 + per]
        cols = np.rint((p - x[0]) / step).astype(np.int64)[:, None] + offsets[None, :]
        inside = (cols >= 0) & (cols < nx)
        safe = np.clip(cols, 0, nx - 1)
        f = np.where(inside, orbital.factor(x[safe] - p[:, None]), 0.0)
        flat = (rows[s0:s0 + per, None] * nx + safe).ravel()
        for k in range(n_k):
            c = coeffs[s0:s0 + per, k]
            re[k] += np.bincount(flat, weights=(f * c.real[:, None]).ravel(),
                                 minlength=n_rows * nx)
            im[k] += np.bincount(flat, weights=(f * c.imag[:, None]).ravel(),
                                 minlength=n_rows * nx)
    return (re + 1j * im).T.reshape(n_rows, nx, n_k)


def continuum_ldos_grid(x, y, positions, left, tmat, right, orbital: Orbital) -> np.ndarray:
    """:func:`continuum_ldos` on the grid ``x`` × ``y`` (regular axes, Å), ``(len(y),
    len(x))`` indexed ``[iy, ix]``.

    A separable orbital (Gaussian) makes it a sum over rows of sites: ``H_r(x) = sum_{s in
    row r} fx(x - px_s) L_s`` once per row, then ``u(x, y) = sum_r fy(y - py_r) H_r(x)``
    over the few rows within the orbital's reach of each ``y``, a small matrix product per
    block of table rows (sites share a row when they share ``y``, as on the built-in
    lattices, whose first vector lies along x). Other orbitals go point by point.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    positions = np.asarray(positions, float).reshape(-1, 2)
    left = np.asarray(left, complex)
    same = right is left
    right = left if same else np.asarray(right, complex)
    tmat = np.asarray(tmat, complex)
    if not orbital.separable or len(x) < 2 or len(y) < 2 or len(positions) == 0:
        out = np.empty((len(y), len(x)))
        for j0 in range(0, len(y), _ROWS):
            X, Y = np.meshgrid(x, y[j0:j0 + _ROWS])
            out[j0:j0 + _ROWS] = continuum_ldos(np.stack([X, Y], -1), positions, left, tmat,
                                                right if not same else left, orbital)
        return out
    row_y, rows = np.unique(np.round(positions[:, 1], 9), return_inverse=True)
    rows = rows.ravel()
    h_left = _row_sums(x, positions[:, 0], rows, len(row_y), left, orbital)
    h_right = h_left if same else _row_sums(x, positions[:, 0], rows, len(row_y), right,
                                            orbital)
    from .continuum_loops import combine_rows

    cut = orbital.cutoff
    first = np.searchsorted(row_y, y - cut, side="left")
    count = np.searchsorted(row_y, y + cut, side="right") - first
    width = max(1, int(count.max()))
    index = np.minimum(first[:, None] + np.arange(width)[None, :], len(row_y) - 1)
    fy = np.where(np.arange(width)[None, :] < count[:, None],
                  orbital.factor(y[:, None] - row_y[index]), 0.0)
    out = np.empty((len(y), len(x)))
    combine_rows(first.astype(np.int64), count.astype(np.int64), fy, h_left, h_right, same,
                 tmat, out)
    return out


def clean_ldos_mean(g0: np.ndarray, lattice: np.ndarray, tau: np.ndarray, orbitals,
                    orbital: Orbital | None, area: float) -> float:
    """``rho0``, the clean LDOS averaged over space (module docstring): the continuum sum
    with the orbitals' overlaps, or with ``orbital=None`` the site projection's
    ``-(1/pi) Im Tr G(0) / area`` over ``orbitals`` (indices of ``G``'s last axes that
    make the LDOS; the electron one of a Nambu matrix)."""
    orbitals = list(orbitals)
    if orbital is None:
        local = g0[0, 0][np.ix_(orbitals, orbitals)]
        return float(-np.trace(local).imag / np.pi / area)
    n = g0.shape[0]
    lattice = np.asarray(lattice, float)
    tau = np.asarray(tau, float)
    reach = 2 * orbital.cutoff + 2 * float(np.max(np.linalg.norm(tau, axis=1), initial=0.0))
    half = [min(n // 2, int(np.ceil(reach * np.linalg.norm(b))) + 1)
            for b in np.linalg.inv(lattice).T]
    c1, c2 = np.meshgrid(np.arange(-half[0], half[0] + 1), np.arange(-half[1], half[1] + 1),
                         indexing="ij")
    cells = np.stack([c1.ravel(), c2.ravel()], axis=1)
    shift = cells @ lattice  # (D, 2)
    total = 0.0 + 0.0j
    for a in orbitals:
        for b in orbitals:
            d = shift + tau[a] - tau[b]
            s = orbital.overlap(d[:, 0], d[:, 1])
            total += np.sum(g0[cells[:, 0] % n, cells[:, 1] % n, a, b] * s)
    return float(-total.imag / np.pi / area)
