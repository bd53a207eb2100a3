"""Kernel estimation: with known positions (linear least squares), or blind.

An image is linear in the kernel: ``y(p) = b + sum_i s_i K(|p - r_i|)``. The kernel is
written as a radial cubic B-spline ``K(r) = sum_j c_j B_j(r)`` (knots every 0.25 Å up to
8 Å, then every 0.5 Å), so with positions known the coefficients follow from one
linear least-squares problem over all pixels of all images (a light second-difference
penalty keeps knots that no pixel constrains well-behaved). Blind estimation
(:mod:`.blind`) alternates that step with sparse detection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.interpolate import BSpline

from ..core.grid import Grid
from ..physics import SplineKernel
from ..physics.sampled import spline_knots as _knots

__all__ = ["SplineKernel", "kernel_from_positions", "ring_wavevector", "LeastSquaresKernel"]


def _design(grid: Grid, positions: np.ndarray, strengths: np.ndarray, knots: np.ndarray):
    """Sparse matrix ``(R², n_basis)``: column j is ``sum_i s_i B_j(|p - r_i|)``."""
    X, Y = grid.meshgrid()
    px, py = X.ravel(), Y.ravel()
    pos = np.asarray(positions, float).reshape(-1, 2)
    npix = px.size
    nb = len(knots) - 4
    if len(pos) == 0:
        return sp.csr_matrix((npix, nb))
    r = np.hypot(px[None, :] - pos[:, 0, None], py[None, :] - pos[:, 1, None]).ravel()
    r = np.minimum(r, knots[-1] - 1e-9)
    D = BSpline.design_matrix(r, knots, 3)  # (k * npix, nb)
    weights = np.repeat(np.asarray(strengths, float), npix)
    rows = np.tile(np.arange(npix), len(pos))
    S = sp.csr_matrix((weights, (rows, np.arange(r.size))), shape=(npix, r.size))
    return (S @ D).tocsr()


def kernel_from_positions(images: Sequence[np.ndarray], positions: Sequence[np.ndarray],
                          grid: Grid, strengths: Sequence[np.ndarray] | None = None,
                          smooth: float = 1e-6, rmax: float | None = None,
                          weights: Sequence[float] | None = None,
                          backgrounds: Sequence[bool] | None = None) -> SplineKernel:
    """Least-squares kernel from images whose scatterer positions (and strengths) are known.

    Parameters
    ----------
    images : sequence of (R, R) arrays ``[iy, ix]``
    positions : sequence of (k, 2) arrays (Å)
    grid : Grid
    strengths : sequence of (k,) arrays, optional
        Default 1 (the overall scale of ``K`` and ``s`` is not separable anyway).
    smooth : float
        Weight of the second-difference penalty, relative to the mean diagonal.
    rmax : float, optional
        Outermost knot (Å); default: as far as a pixel is from a scatterer.
    weights : sequence of float, optional
        Weight of each image in the least squares (default 1).
    backgrounds : sequence of bool, optional
        Whether each image shares the one constant background that is fitted (default:
        all do; one background for all pins the kernel's constant offset, which a
        background per image would leave free).

    Returns
    -------
    SplineKernel
        ``.sample(grid)`` gives the kernel row.

    Examples
    --------
    >>> from qpiset.physics import FriedelKernel
    >>> from qpiset.forward import simulate
    >>> ds = simulate(FriedelKernel(), Grid(24, 40.0), n=3, seed=0, max_scatterers=10)
    >>> K = kernel_from_positions(ds.images, ds.positions, ds.grid)
    >>> K.sample(ds.grid).shape
    (24, 24)
    """
    # scatterers more than a field away from the centre say nothing useful about K
    keep = [np.all(np.abs(np.asarray(p, float).reshape(-1, 2)) <= grid.fov, axis=1)
            for p in positions]
    positions = [np.asarray(p, float).reshape(-1, 2)[k] for p, k in zip(positions, keep)]
    if strengths is not None:
        strengths = [np.asarray(s, float)[k] for s, k in zip(strengths, keep)]
    far = max((np.abs(p).max() for p in positions if len(p)), default=grid.fov / 2)
    rmax = rmax or np.sqrt(2.0) * (grid.fov / 2 + far) + 1.0
    knots = _knots(rmax)
    blocks, rhs = [], []
    shared = [True] * len(positions) if backgrounds is None else [bool(b) for b in backgrounds]
    for n, (img, pos) in enumerate(zip(images, positions)):
        s = np.ones(len(pos)) if strengths is None else strengths[n]
        w = 1.0 if weights is None else float(np.sqrt(weights[n]))
        D = _design(grid, pos, s, knots)
        ones = sp.csr_matrix(np.full((D.shape[0], 1), 1.0 if shared[n] else 0.0))
        blocks.append(w * sp.hstack([D, ones]))  # + the background they share
        rhs.append(w * np.asarray(img, float).ravel())
    A = sp.vstack(blocks).tocsr()
    y = np.concatenate(rhs)
    AtA = (A.T @ A).toarray()
    Aty = A.T @ y
    nb = len(knots) - 4
    L = np.diff(np.eye(nb), 2, axis=0)
    penalty = np.zeros_like(AtA)
    penalty[:nb, :nb] = L.T @ L
    scale = np.trace(AtA) / len(AtA)
    coef = np.linalg.lstsq(AtA + smooth * scale * penalty, Aty, rcond=None)[0]
    return SplineKernel(knots, coef[:nb])


def ring_wavevector(images: Sequence[np.ndarray], grid: Grid, pad: int = 4) -> float:
    """The wave vector ``q`` (1/Å) of the strongest ring of the images' power spectrum
    (``2 k_F`` for Friedel oscillations), excluding the lowest frequencies.

    The spectrum is zero-padded ``pad`` times (radial bins ``pad`` times finer than the
    FFT's own ``2 pi / fov``). The 2D Friedel (Lindhard) spectrum is flat below
    ``2 k_F`` and falls with infinite slope just above it: the steepest fall of the log
    spectrum beyond its peak marks ``2 k_F``, better than the peak itself.
    """
    r = grid.resolution
    n = pad * r
    power = np.zeros((n, n))
    for img in images:
        power += np.abs(np.fft.fft2(img - np.mean(img), s=(n, n))) ** 2
    f = np.fft.fftfreq(n, d=grid.pitch) * 2 * np.pi  # 1/Å
    q = np.hypot(f[None, :], f[:, None])
    dq = 2 * np.pi / (n * grid.pitch)
    bins = np.round(q / dq).astype(int)
    radial = np.bincount(bins.ravel(), power.ravel()) / np.maximum(np.bincount(bins.ravel()), 1)
    half = radial[: n // 2].copy()
    half[: 3 * pad] = 0  # the field's own scale, not a ring
    i = int(np.argmax(half))
    slope = np.gradient(np.log(half + 1e-300))
    j = i + int(np.argmin(slope[i:i + 3 * pad]))
    return float(j * dq)


@dataclass
class LeastSquaresKernel:
    """Kernel estimator ``lsq``: :func:`kernel_from_positions` with the file's positions."""

    smooth: float = 1e-6

    def steps(self, n_images: int) -> int:
        return 1

    def estimate(self, images, grid: Grid, positions=None, on_step=None) -> SplineKernel:
        if positions is None:
            raise ValueError("method 'lsq' needs the scatterer positions")
        if not any(len(np.asarray(p).reshape(-1, 2)) for p in positions):
            raise ValueError("method 'lsq' needs scatterers: these images have none")
        kernel = kernel_from_positions(images, positions, grid, smooth=self.smooth)
        if on_step:
            on_step(1)
        return kernel
