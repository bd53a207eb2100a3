"""Multiple scattering on a crystal: many impurities in a lattice model, to all orders.

The Born image of :mod:`qpiset.forward` adds single-impurity patterns of a
:class:`~.lattice.LatticeKernel` or :class:`~.superconductor.BdGKernel`. Here the
quasiparticle may scatter off any sequence of impurities (conventions of
:mod:`.lattice_greens`; ``G0(R)`` the clean propagator from cell 0 to cell ``R``)::

    V_i   = s_i V                                   impurity i at cell R_i, strength s_i
    G_ij  = G0(R_i - R_j)                           all i, j; G_ii = G0(0) (finite on a lattice)
    T     = (1 - V G)^-1 V,   V = diag(V_i)         multi-impurity T-matrix (block matrices)
    delta rho_a(R) = -(1/pi) Im sum_ij [G0(R - R_i) T_ij G0(R_j - R)]_aa

(electron component ``a = 0`` for the Nambu kernel). With one impurity this is the
kernel's ``T = V (1 - G0(0) V)^-1`` exactly. The image is then made as the kernel's is
(:mod:`.continuum`): the continuum LDOS ``-(1/pi) Im sum_ij u_i(r) T_ij v_j(r)`` with each
impurity's propagators carried to ``r`` by the orbitals, or in the site projection the
site values carried by the orbital densities; normalised by the kernel's ``rho0``, so one
impurity of strength 1 gives ``render(kernel, grid, [R_1])``.

Strength. ``s_i`` scales the impurity *potential* (``V_i = s_i V``, ``V`` the kernel's
``potential`` matrix), so ``s = 1`` is the kernel's impurity and the image is not linear
in ``s``: even one impurity gives the pattern of potential ``s V``, which equals ``s K``
only to first order in ``s V`` (Born limit). ``scaling="t_matrix"`` instead scales each
impurity's single-site T-matrix (``t_i = s_i T_1``, ``T = (1 - t G')^-1 t`` with ``G'``
without the ``i = j`` blocks, the convention of :mod:`.multiple`): then every
single-impurity term is exactly ``s_i K`` and the image is ``render(...)`` plus the
inter-impurity terms, ``O(s²)``. Both agree at ``s = 1``.

Truncation and the supercell. ``G0`` comes from the kernel's ``N x N`` k-grid, i.e. a
torus: ``R - R_i`` is taken modulo ``N`` in lattice coordinates. As in the kernel, an
impurity's propagators to the observed sites are kept only within the kernel's radius
(:class:`~.lattice.LatticeKernel`: orbitals within ``reach`` plus an orbital's reach of the
impurity's cell; :class:`~.superconductor.BdGKernel`: sites within ``reach``), so the
single-impurity terms are exactly the kernel's pattern. Like ``render``, the field of view
plus the scatterers' spread must fit in ``reach`` along both axes (and so must every
impurity pair, whose propagator ``G_ij`` is the torus one, uncut), otherwise ``ValueError``.
"""

from __future__ import annotations

import numpy as np

from .continuum import continuum_ldos, site_ldos
from .lattice_greens import LatticePropagator, orbital_reach, site_legs
from .orbitals import GaussianOrbital

__all__ = ["lattice_propagator", "image_renderer", "lattice_cells",
           "lattice_multiple_scattering_sites", "lattice_multiple_scattering_image",
           "SCALINGS"]

#: What a strength scales: the impurity potential or the single-site T-matrix.
SCALINGS = ("potential", "t_matrix")
#: Tolerance (Å) of a position on a lattice translation.
_ON_SITE_TOL = 1e-6


def lattice_propagator(kernel) -> LatticePropagator:
    """Clean propagator and normalisation of a lattice kernel, ``kernel.propagator()`` (one
    FFT; reuse it for many images through the ``propagator`` argument).

    Examples
    --------
    >>> from qpiset.physics.lattice import LatticeKernel
    >>> P = lattice_propagator(LatticeKernel("square", energy=-3.0, eta=0.1, reach=10.0))
    >>> P.g0.shape[2:], P.orbitals
    ((1, 1), (0,))
    """
    return kernel.propagator()


def image_renderer(kernel, grid):
    """``f(positions, strengths) -> images (N, R, R)`` with all multiple scattering
    between lattice impurities, the propagator computed once for the run; a strength
    scales a site's t-matrix, as for the gas, so the image is Born + O(s²)."""
    g0 = kernel.propagator()

    def render(positions, strengths):
        return np.array([lattice_multiple_scattering_image(
            kernel, grid, p, a, scaling="t_matrix", propagator=g0)
            for p, a in zip(positions, strengths)]).reshape(-1, grid.resolution,
                                                            grid.resolution)

    return render


def lattice_cells(positions, lattice) -> np.ndarray:
    """Integer cells ``(k, 2)`` of positions ``(k, 2)`` (Å) that are lattice translations
    ``n1 a1 + n2 a2`` (rows of ``lattice``); ``ValueError`` if one is farther than 1e-6 Å
    from every translation.

    Examples
    --------
    >>> lattice_cells([[5.0, -2.5]], 2.5 * np.eye(2)).tolist()
    [[2, -1]]
    """
    lattice = np.asarray(lattice, float)
    pos = np.asarray(positions, float).reshape(-1, 2)
    if not np.all(np.isfinite(pos)):
        raise ValueError("positions must be finite")
    # n = A^-T r, r = n1 a1 + n2 a2
    cells = np.rint(np.linalg.solve(lattice.T, pos.T).T).astype(np.int64)
    off = np.linalg.norm(cells @ lattice - pos, axis=1)
    if np.any(off > _ON_SITE_TOL):
        i = int(np.argmax(off))
        raise ValueError(f"position {pos[i].tolist()} is {off[i]:.3g} Å from the nearest "
                         "lattice site; scatterers must sit on lattice translations "
                         "(see qpiset.forward.snap_to_lattice)")
    return cells


def _strengths(strengths, k: int) -> np.ndarray:
    if strengths is None:
        return np.ones(k)
    s = np.asarray(strengths, float).reshape(-1)
    if s.shape != (k,) or not np.all(np.isfinite(s)):
        raise ValueError(f"strengths must be {k} finite numbers, got {strengths!r}")
    return s


def _t_matrix(prop: LatticePropagator, cells: np.ndarray, s: np.ndarray, support,
              scaling: str) -> np.ndarray:
    """Multi-impurity T ``(k p, k p)`` on the ``p`` orbitals that carry the potential."""
    n, k, p = prop.n, len(cells), len(support)
    d = (cells[:, None, :] - cells[None, :, :]) % n  # R_i - R_j on the torus
    blocks = prop.g0[d[..., 0], d[..., 1]][:, :, support][..., support]  # (k, k, p, p)
    g = blocks.transpose(0, 2, 1, 3).reshape(k * p, k * p)
    v1 = prop.potential[np.ix_(support, support)]
    if scaling == "potential":
        vb = np.kron(np.diag(s), v1)
        # T = (1 - V G)^-1 V
        return np.linalg.solve(np.eye(k * p) - vb @ g, vb)
    # t_1 = V (1 - G0(0) V)^-1, t_i = s_i t_1; T = (1 - t G')^-1 t, G' without i = j blocks
    t1 = v1 @ np.linalg.inv(np.eye(p) - prop.g0[0, 0][np.ix_(support, support)] @ v1)
    tb = np.kron(np.diag(s), t1)
    off = g - np.kron(np.eye(k), prop.g0[0, 0][np.ix_(support, support)])
    return np.linalg.solve(np.eye(k * p) - tb @ off, tb)


def _site_values(prop: LatticePropagator, cells: np.ndarray, s: np.ndarray,
                 sites: np.ndarray, scaling: str) -> np.ndarray:
    """``weight * delta rho_a`` ``(len(sites), len(orbitals))`` at integer cells ``sites``."""
    orbs = list(prop.orbitals)
    support = np.flatnonzero(np.any(prop.potential != 0, axis=0)
                             | np.any(prop.potential != 0, axis=1))
    out = np.zeros((len(sites), len(orbs)))
    if len(cells) == 0 or len(support) == 0 or len(sites) == 0:
        return out
    n, k, p = prop.n, len(cells), len(support)
    tm = _t_matrix(prop, cells, s, support, scaling)
    fwd = (sites[:, None, :] - cells[None, :, :]) % n  # R - R_i
    back = (-fwd) % n  # R_i - R
    # kept legs: |R - R_i + tau_a| <= cut (the kernel's own site cut)
    rel = (sites[:, None, :] - cells[None, :, :]) @ prop.lattice  # (sites, k, 2)
    for col, a in enumerate(orbs):
        keep = np.linalg.norm(rel + prop.tau[a], axis=-1) <= prop.cut  # (sites, k)
        left = prop.g0[fwd[..., 0], fwd[..., 1], a][..., support] * keep[..., None]
        right = prop.g0[back[..., 0], back[..., 1]][..., support, a] * keep[..., None]
        left = left.reshape(len(sites), k * p)
        right = right.reshape(len(sites), k * p)
        # delta rho_a(R) = -(1/pi) Im sum_ij G0(R - R_i)_a. T_ij G0(R_j - R)_.a
        out[:, col] = -np.einsum("si,si->s", left @ tm, right).imag / np.pi
    return prop.weight * out


def _check_scaling(scaling: str) -> str:
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; choose one of {SCALINGS}")
    return scaling


def lattice_multiple_scattering_sites(kernel, positions, sites, strengths=None, *,
                                      scaling: str = "potential",
                                      propagator: LatticePropagator | None = None
                                      ) -> np.ndarray:
    """Site values of the multiple-scattering LDOS change at given cells.

    Parameters
    ----------
    kernel : LatticeKernel or BdGKernel
        The single-impurity model (energy, potential, lattice, normalisation).
    positions : array_like (k, 2)
        Impurity positions (Å), lattice translations ``n1 a1 + n2 a2``.
    sites : array_like of int (s, 2)
        Cells ``(n1, n2)`` at which to evaluate.
    strengths : array_like (k,), optional
        ``s_i`` (default 1); see ``scaling`` and the module docstring.
    scaling : {"potential", "t_matrix"}
        ``V_i = s_i V`` (default) or ``t_i = s_i T_1``.
    propagator : LatticePropagator, optional
        ``lattice_propagator(kernel)``, to reuse it.

    Returns
    -------
    ndarray (s, n_o)
        ``delta rho_a(R) / rho0`` per traced orbital (all orbitals of a LatticeKernel, the
        electron one of a BdGKernel): the kernel's :meth:`site_values` convention, i.e. for a
        BdGKernel without the factor ``a²`` of its projection. No reach check here: sites
        farther than the kernel's radius from an impurity do not see it.

    Examples
    --------
    >>> from qpiset.physics.lattice import LatticeKernel
    >>> K = LatticeKernel("square", energy=-3.0, eta=0.1, reach=10.0)
    >>> v = lattice_multiple_scattering_sites(K, [[0.0, 0.0]], [[1, 0], [0, 1]])
    >>> bool(np.isclose(v[0, 0], v[1, 0]))
    True
    """
    _check_scaling(scaling)
    prop = lattice_propagator(kernel) if propagator is None else propagator
    cells = lattice_cells(positions, prop.lattice)
    s = _strengths(strengths, len(cells))
    sites = np.asarray(sites, dtype=np.int64).reshape(-1, 2)
    values = _site_values(prop, cells, s, sites, scaling)
    return values / prop.site_area


def lattice_multiple_scattering_image(kernel, grid, positions, strengths=None, *,
                                      scaling: str = "potential",
                                      propagator: LatticePropagator | None = None
                                      ) -> np.ndarray:
    """Clean image with all multiple scattering between lattice impurities, ``(R, R)``
    indexed ``[iy, ix]``, in the units of ``render(kernel, grid, positions, strengths)``.

    Parameters
    ----------
    kernel : LatticeKernel or BdGKernel
        The single-impurity model.
    grid : Grid
        Pixel grid (``grid.x``: pixel centres, Å).
    positions : array_like (k, 2)
        Impurity positions (Å); each must be a lattice translation ``n1 a1 + n2 a2`` of
        ``kernel.lattice`` to 1e-6 Å (``ValueError`` otherwise).
    strengths : array_like (k,), optional
        ``s_i`` (default 1). With ``scaling="potential"`` the impurity potential is
        ``s_i V``: the image is not linear in ``s`` (one impurity gives the pattern of
        potential ``s V``, ``s K`` only to first order).
    scaling : {"potential", "t_matrix"}
        What a strength scales (module docstring); ``"t_matrix"`` keeps every
        single-impurity term at exactly ``s_i K``.
    propagator : LatticePropagator, optional
        ``lattice_propagator(kernel)`` computed once for many images.

    Returns
    -------
    ndarray (R, R)
        ``delta rho / rho0`` on the pixels (the orbitals that reach the field, in the
        kernel's projection).

    Raises
    ------
    ValueError
        Off-lattice positions, bad strengths, or a field of view plus scatterer spread
        (``max |x - x_i|``, ``|y - y_i|`` over the field, and between impurities) larger
        than the kernel's ``reach``: the k-grid was sized for that reach.

    Examples
    --------
    >>> from qpiset.core import Grid
    >>> from qpiset.physics.lattice import LatticeKernel
    >>> K = LatticeKernel("square", energy=-3.0, eta=0.1, reach=16.0)
    >>> img = lattice_multiple_scattering_image(K, Grid(16, 10.0), [[0.0, 0.0], [2.5, 5.0]])
    >>> img.shape
    (16, 16)
    """
    _check_scaling(scaling)
    prop = lattice_propagator(kernel) if propagator is None else propagator
    cells = lattice_cells(positions, prop.lattice)
    s = _strengths(strengths, len(cells))
    x = np.asarray(grid.x, float)
    if len(cells) == 0:
        return np.zeros((len(x), len(x)))
    imp = cells @ prop.lattice
    lo, hi = float(x.min()), float(x.max())
    # axis-wise spread field <-> impurities and impurity <-> impurity (as render's table)
    need = float(np.max(np.maximum(np.abs(imp - lo), np.abs(imp - hi))))
    if len(imp) > 1:
        need = max(need, float(np.ptp(imp, axis=0).max()))
    if need > prop.reach + 1e-9:
        raise ValueError(f"the field of view and the scatterers span {need:.4g} Å along an "
                         f"axis, more than the kernel's reach {prop.reach:g} Å for which "
                         f"its k-grid was sized: raise the kernel's reach to >= {need:.4g}")
    orbital = prop.orbital if prop.orbital is not None else GaussianOrbital(prop.sigma)
    # every orbital that reaches the field (the projection ignores the rest)
    margin = orbital_reach(orbital, prop.projection)
    box = np.array([[lo - margin, lo - margin], [hi + margin, lo - margin],
                    [lo - margin, hi + margin], [hi + margin, hi + margin]])
    frac = np.concatenate([np.linalg.solve(prop.lattice.T, (box - t).T).T for t in prop.tau])
    n_lo, n_hi = np.floor(frac.min(axis=0)).astype(int), np.ceil(frac.max(axis=0)).astype(int)
    c1, c2 = np.meshgrid(np.arange(n_lo[0], n_hi[0] + 1), np.arange(n_lo[1], n_hi[1] + 1),
                         indexing="ij")
    sites = np.stack([c1.ravel(), c2.ravel()], axis=1)
    pos = (sites @ prop.lattice)[:, None, :] + prop.tau[list(prop.orbitals)][None]  # (s, o, 2)
    inside = np.all((pos >= lo - margin) & (pos <= hi + margin), axis=-1).any(axis=1)
    sites, pos = sites[inside], pos[inside]
    X, Y = np.meshgrid(x, x, indexing="xy")  # [iy, ix]
    if prop.projection == "continuum":
        return _continuum_image(prop, cells, s, sites, pos, X, Y, scaling, orbital)
    values = _site_values(prop, cells, s, sites, scaling)  # (s, o)
    # image(r) = sum_{R, a} value_a(R) |w(r - R - tau_a)|²
    return site_ldos(pos.reshape(-1, 2), values.ravel(), X, Y, orbital)


def _continuum_image(prop: LatticePropagator, cells, s, sites, pos, X, Y, scaling: str,
                     orbital) -> np.ndarray:
    """``weight * delta rho(r)`` of the continuum projection (:mod:`.continuum`):
    ``-(1/pi) Im sum_ij u_i(r) T_ij v_j(r)`` with each impurity's legs to the sites cut at
    the kernel's radius, as the kernel's own."""
    support = np.flatnonzero(np.any(prop.potential != 0, axis=0)
                             | np.any(prop.potential != 0, axis=1))
    if len(support) == 0:
        return np.zeros(X.shape)
    tm = _t_matrix(prop, cells, s, support, scaling)
    orbs = list(prop.orbitals)
    n_o, p = len(orbs), len(support)
    site_cells = np.repeat(sites, n_o, axis=0)
    site_orbs = np.tile(np.asarray(orbs), len(sites))
    positions = pos.reshape(-1, 2)
    left, right = site_legs(prop.g0, site_cells, site_orbs, support, cells)
    # kept legs: |R - R_i + tau_a| <= cut (the kernel's own site cut)
    rel = positions[:, None, :] - (cells @ prop.lattice)[None, :, :]  # (S, k, 2)
    keep = np.repeat(np.linalg.norm(rel, axis=-1) <= prop.cut, p, axis=1)  # (S, k p)
    same = right is left
    left = left * keep
    right = left if same else right * keep
    return prop.weight * continuum_ldos(np.stack([X, Y], axis=-1), positions, left, tm,
                                        right, orbital)
