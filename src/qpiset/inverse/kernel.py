"""Kernel estimation: with known positions (linear least squares), or blind.

An image is linear in the kernel: ``y(p) = b + sum_i s_i K(|p - r_i|)``. The kernel is
written as a radial cubic B-spline ``K(r) = sum_j c_j B_j(r)`` (knots every 0.25 Å up to
8 Å, then every 0.5 Å), so with positions known the coefficients follow from one
linear least-squares problem over all pixels of all images (a light second-difference
penalty keeps knots that no pixel constrains well-behaved). Blind estimation alternates
that step with sparse detection (:class:`SparseDeconvolution`), starting from a 2D
point-scatterer pattern whose wave vector is read off the images' power-spectrum ring.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.interpolate import BSpline

from ..core.grid import Grid
from ..physics import RadialKernel, SplineKernel
from ..physics.sampled import spline_knots as _knots

__all__ = ["SplineKernel", "kernel_from_positions", "blind_kernel", "blind_steps",
           "ring_wavevector", "LeastSquaresKernel", "BlindKernel"]


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


def blind_steps(n_images: int, iterations: int = 3, phases: int = 6) -> int:
    """How many steps :func:`blind_kernel` reports to ``on_step``: one per trial kernel
    (``9 phases``) and one per image and round of detection."""
    return 9 * phases + iterations * n_images


def blind_kernel(images: Sequence[np.ndarray], grid: Grid, iterations: int = 3,
                 phases: int = 6, tip_sigma: float = 1.0, detector_options: dict | None = None,
                 on_step=None):
    """Blind kernel estimation by alternating sparse detection and kernel least squares.

    Start (physics prior, not the truth): the images' power spectrum has its ring at
    ``q = 2k``; a 2D point scatterer's pattern is ``Re[(e^{2i delta} - 1) H0(kr)²]``, so
    trial kernels with ``k`` within ±20 % of that estimate (9 values), a Gaussian tip of ``tip_sigma`` and ``phases`` phase
    shifts are tried on the first image and the one whose sparse seeds, refined, explain
    it best (smallest residual) is kept. Then ``iterations`` rounds of: detect in every image,
    least-squares kernel from those positions. ``on_step(1)`` is called after each trial
    and each image's detection (:func:`blind_steps` of them: a progress bar).

    Returns ``(SplineKernel, positions)``; the kernel is determined up to scale and sign.
    """
    step = on_step or (lambda k: None)
    from ..forward import Forward
    from ..physics import HBAR2_OVER_2ME, FriedelKernel
    from .refine import refine
    from .sparse import SparseDeconvolution

    images = [np.asarray(i, float) for i in images]
    k = ring_wavevector(images, grid) / 2  # a coarse estimate (the q grid is 2pi/fov)
    mass = 1.0
    trials = []
    for scale, delta in itertools.product(np.linspace(0.8, 1.2, 9),
                                          (np.arange(phases) + 0.5) * np.pi / phases):
        kk = k * scale
        guess = FriedelKernel(None, 0.0, mass=mass, band_bottom=-HBAR2_OVER_2ME * kk * kk / mass,
                              phase_shift=float(delta), tip_sigma=tip_sigma)
        model = Forward(guess, grid)
        pos, s = SparseDeconvolution(**(detector_options or {})).seeds(images[0], model)
        fit = refine(model, images[0].ravel(), pos, s, float(np.median(images[0])), max_iter=5)
        trials.append((fit.rss, guess))
        step(1)
    kernel: RadialKernel = min(trials, key=lambda t: t[0])[1]
    positions: list[np.ndarray] = []
    for _ in range(iterations):
        detector, op = SparseDeconvolution(**(detector_options or {})), Forward(kernel, grid)
        found = []
        for img in images:
            found.append(detector.detect(img[None], op))
            step(1)
        positions = [f.positions[0] for f in found]
        kernel = kernel_from_positions(images, positions, grid, [f.strengths[0] for f in found])
    return kernel, positions


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


@dataclass
class BlindKernel:
    """Kernel estimator ``blind``: :func:`blind_kernel`, from the images alone."""

    iterations: int = 3
    phases: int = 6
    tip_sigma: float = 1.0

    def steps(self, n_images: int) -> int:
        return blind_steps(n_images, self.iterations, self.phases)

    def estimate(self, images, grid: Grid, positions=None, on_step=None) -> SplineKernel:
        return blind_kernel(images, grid, self.iterations, self.phases, self.tip_sigma,
                            on_step=on_step)[0]
