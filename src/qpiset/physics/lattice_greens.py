"""Lattice Green's functions, shared by the lattice models: ``G(R)`` by FFT over a k-grid,
the impurity T-matrix, the site LDOS change, the clean LDOS ``rho0``, the k-grid sizes,
the projection of site values onto continuous coordinates, and the propagator record the
multiple-impurity code uses (:class:`LatticePropagator`).

Conventions (used by :mod:`.lattice`, :mod:`.superconductor` and
:mod:`.lattice_multiple`):

- Real-space lattice vectors ``a1, a2`` are the rows of ``A`` (Å); orbital ``a`` of cell
  ``R = (n1, n2)`` sits at ``n1 a1 + n2 a2 + tau[a]``.
- A Bloch Hamiltonian is given on the ``N x N`` grid of phases
  ``theta = 2 pi (i1, i2) / N`` (``theta . R`` is the phase of cell ``R``) in the periodic
  gauge: ``H(theta) = sum_R t(R) exp(i theta . R)`` with ``t(R) = <0|H|R>`` (the hopping
  from cell ``R`` to cell 0; equivalently ``sum_n <R+n|H|R> exp(-i theta . n)``), an array
  ``(N, N, m, m)``.
- ``G(R) = (1/N²) sum_theta exp(i theta . R) (E + i eta - H(theta))^-1`` (numpy's ``ifft2``
  over the two phase axes), indexed ``[n1 mod N, n2 mod N, a, b]``: the propagator from
  orbital ``b`` of cell 0 to orbital ``a`` of cell ``R``.
- One impurity at cell 0 with potential matrix ``V`` (``m x m``): ``T = V (1 - G(0) V)^-1``
  (Dyson equation summed exactly), and ``delta G(R, R') = G(R) T G(-R')``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["greens_function", "t_matrix", "delta_site_ldos", "clean_ldos", "site_positions",
           "project_gaussian", "fft_size", "even_fast_size", "LatticePropagator",
           "ORBITAL_CUTOFF", "orbital_reach", "site_legs"]

#: Sites farther than this many orbital widths from a point do not contribute to it
#: (the cut-off of :func:`project_gaussian` in the lattice models).
ORBITAL_CUTOFF = 5.0


def greens_function(hk: np.ndarray, energy: float, eta: float) -> np.ndarray:
    """Real-space lattice Green's function ``G(R)`` ``(N, N, m, m)`` from the Bloch
    Hamiltonian ``hk`` ``(N, N, m, m)`` at complex energy ``energy + i eta`` (eV)."""
    hk = np.asarray(hk)
    m = hk.shape[-1]
    z = (energy + 1j * eta) * np.eye(m)
    gk = np.linalg.inv(z - hk)
    return np.fft.ifft2(gk, axes=(0, 1))


def t_matrix(g0: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``T = V (1 - G0(R=0) V)^-1`` for an impurity potential ``v`` (``m x m``) at cell 0."""
    v = np.atleast_2d(np.asarray(v, dtype=complex))
    local = g0[0, 0]
    return v @ np.linalg.inv(np.eye(len(v)) - local @ v)


def delta_site_ldos(g0: np.ndarray, t: np.ndarray, orbitals=None) -> np.ndarray:
    """``delta rho_a(R) = -(1/pi) Im [G(R) T G(-R)]_aa`` on every cell, ``(N, N, m)``.

    ``orbitals``: restrict the trace to these diagonal entries (e.g. the electron part of a
    Nambu matrix); default all.
    """
    n1, n2 = g0.shape[:2]
    back = g0[(-np.arange(n1)) % n1][:, (-np.arange(n2)) % n2]  # G(-R)
    dg = np.einsum("xyab,bc,xycd->xyad", g0, t, back)
    diag = np.einsum("xyaa->xya", dg)
    if orbitals is not None:
        diag = diag[..., list(orbitals)]
    return -diag.imag / np.pi


def site_legs(g0: np.ndarray, cells: np.ndarray, orbs: np.ndarray, support,
              impurities: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The propagators between impurity orbitals and sites, ``(left, right)`` ``(S, k p)``:
    ``left[s, (i, c)] = G(R_s - R_i)_{a_s c}`` and ``right[s, (j, d)] = G(R_j - R_s)_{d a_s}``
    for sites ``s`` in cells ``cells`` ``(S, 2)`` (integers) on orbitals ``orbs`` ``(S,)``,
    impurities in cells ``impurities`` ``(k, 2)`` (default one, at cell 0) and the ``p``
    orbitals ``support`` that carry their potential (:mod:`.continuum`). ``right`` is
    ``left`` itself (the same object) when the model is reciprocal, ``G(-R)^T = G(R)``, as
    for real hoppings, so the continuum sums are made once."""
    n = g0.shape[0]
    cells = np.asarray(cells, np.int64).reshape(-1, 2)
    orbs = np.asarray(orbs, np.int64).ravel()
    support = np.asarray(support, np.int64)
    imp = np.zeros((1, 2), np.int64) if impurities is None else np.asarray(impurities, np.int64)
    fwd = (cells[:, None, :] - imp[None, :, :]) % n  # R_s - R_i   (S, k, 2)
    back = (-fwd) % n
    left = g0[fwd[..., 0], fwd[..., 1], orbs[:, None]][..., support]  # (S, k, p)
    right = np.swapaxes(g0[back[..., 0], back[..., 1]][..., support, :], -1, -2)
    right = right[np.arange(len(orbs)), :, orbs]  # (S, k, p)
    left = left.reshape(len(orbs), -1)
    right = right.reshape(len(orbs), -1)
    scale = float(np.abs(left).max(initial=0.0))
    if np.allclose(left, right, rtol=1e-9, atol=1e-12 * scale):
        return left, left
    return left, right


def orbital_reach(orbital, projection: str) -> float:
    """How far (Å) a site's orbital reaches in a projection: ``5 sigma`` for the site
    projection's Gaussian densities (:data:`ORBITAL_CUTOFF`, the model as it always was),
    the amplitude's cutoff otherwise."""
    if projection == "site" and getattr(orbital, "name", "") == "gaussian":
        return ORBITAL_CUTOFF * orbital.sigma
    return float(orbital.cutoff)


def clean_ldos(g0: np.ndarray, orbitals=None, area: float = 1.0) -> float:
    """The clean LDOS ``rho0 = -(1/pi) Im Tr G(0) / area`` over ``orbitals`` (default all;
    the electron entry ``[0]`` of a Nambu matrix), per ``area`` (the cell area for a
    density per Å², 1 for a density per site); states / eV.

    Examples
    --------
    >>> g = np.zeros((1, 1, 2, 2), complex); g[0, 0] = np.diag([-1j, -2j])
    >>> round(clean_ldos(g) * np.pi, 12), round(clean_ldos(g, [0]) * np.pi, 12)
    (3.0, 1.0)
    """
    local = g0[0, 0] if orbitals is None else g0[0, 0][np.ix_(orbitals, orbitals)]
    return float(-np.trace(local).imag / np.pi / area)


def fft_size(smallest: int) -> int:
    """Smallest ``2^p`` or ``3 2^p`` (fast FFT sizes) that is ``>= smallest``.

    Examples
    --------
    >>> fft_size(100), fft_size(129)
    (128, 192)
    """
    p = max(0, math.ceil(math.log2(max(smallest, 1))))
    return min(n for n in (2**p, 3 * 2 ** max(p - 2, 0), 3 * 2 ** max(p - 1, 0))
               if n >= smallest)


def even_fast_size(smallest: int) -> int:
    """Smallest even size ``>= smallest`` that scipy's FFT handles fast (an even ``N``
    puts ``(pi/a, pi/a)`` on the grid).

    Examples
    --------
    >>> even_fast_size(343)
    350
    """
    from scipy.fft import next_fast_len

    n = next_fast_len(int(smallest))
    while n % 2:
        n = next_fast_len(n + 1)
    return n


@dataclass(frozen=True, eq=False)
class LatticePropagator:
    """A lattice kernel's clean propagator and constants, computed once for many images
    (what :mod:`.lattice_multiple` needs; the kernels make it, ``kernel.propagator()``).

    Attributes
    ----------
    g0 : ndarray (N, N, m, m)
        ``G0(R)`` indexed ``[n1 mod N, n2 mod N, a, b]``.
    potential : ndarray (m, m)
        The impurity potential matrix ``V`` (eV) of strength 1.
    lattice : ndarray (2, 2)
        Lattice vectors (rows, Å).
    tau : ndarray (m, 2)
        Orbital positions in the cell (Å).
    orbitals : tuple of int
        Diagonal entries of ``G T G`` that make the LDOS (the electron one for Nambu).
    weight : float
        Site value ``= weight * delta rho``: the kernel's normalisation, so that the values
        are the weights of its normalised Gaussian orbitals.
    site_area : float
        The area (Å²) each site value carries in the kernel's projection besides ``1/rho0``
        (1 when ``rho0`` is per Å², ``a²`` when it is per site): site values are
        ``weight * delta rho / site_area`` in the kernel's ``site_values`` convention.
    sigma : float
        Orbital width (Å).
    cut : float
        Radius (Å) beyond which an impurity's propagators to the sites are dropped.
    reach : float
        The kernel's ``reach`` (Å).
    orbital : Orbital, optional
        The orbital amplitude (:mod:`.orbitals`); ``None``: Gaussians of width ``sigma``.
    projection : {"site", "continuum"}
        How the sites' Green's functions become an image (:mod:`.continuum`).
    """

    g0: np.ndarray
    potential: np.ndarray
    lattice: np.ndarray
    tau: np.ndarray
    orbitals: tuple[int, ...]
    weight: float
    site_area: float
    sigma: float
    cut: float
    reach: float
    orbital: Any = None
    projection: str = "site"

    @property
    def n(self) -> int:
        """``N`` of the k-grid (supercell of ``N x N`` cells)."""
        return self.g0.shape[0]


def site_positions(lattice: np.ndarray, tau: np.ndarray, n: int) -> np.ndarray:
    """Positions (Å) ``(n, n, m, 2)`` of every orbital for cells ``R`` wrapped to the
    centred range ``-n/2 <= n_i < n/2`` (so the impurity at cell 0 is in the middle)."""
    idx = np.arange(n)
    idx = np.where(idx < (n + 1) // 2, idx, idx - n)
    c1, c2 = np.meshgrid(idx, idx, indexing="ij")
    cells = c1[..., None] * lattice[0] + c2[..., None] * lattice[1]  # (n, n, 2)
    return cells[:, :, None, :] + np.asarray(tau, float)[None, None, :, :]


def project_gaussian(values: np.ndarray, positions: np.ndarray, x: np.ndarray, y: np.ndarray,
                     sigma: float, cutoff: float = 5.0) -> np.ndarray:
    """``f(x, y) = sum_s values[s] g(r - positions[s])`` with the normalised 2D Gaussian
    ``g`` of width ``sigma`` (Å): site values as densities of Gaussian (Wannier-like)
    orbitals, so the lattice constant and the pixel pitch are independent.

    Sites farther than ``cutoff * sigma`` from a point are ignored (``exp(-12.5)``).
    """
    values = np.asarray(values, float).ravel()
    positions = np.asarray(positions, float).reshape(-1, 2)
    x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    pts = np.stack([x.ravel(), y.ravel()], axis=1)
    out = np.zeros(len(pts))
    tree = cKDTree(positions)
    norm = 1.0 / (2 * np.pi * sigma * sigma)
    span = np.ptp(positions, axis=0)
    density = len(positions) / max(float(span[0] * span[1]), 1e-12)
    k = int(min(len(positions), 2 * density * np.pi * (cutoff * sigma) ** 2 + 16))
    chunk = 200_000
    for start in range(0, len(pts), chunk):
        block = pts[start:start + chunk]
        dist, idx = tree.query(block, k=k,
                               distance_upper_bound=cutoff * sigma)
        ok = np.isfinite(dist)
        w = np.where(ok, np.exp(-0.5 * (np.where(ok, dist, 0.0) / sigma) ** 2), 0.0)
        vals = values[np.where(ok, idx, 0)]
        out[start:start + chunk] = norm * np.sum(w * vals, axis=1)
    return out.reshape(x.shape)
