"""A kernel known only from its samples: a kernel image (e.g. a file's row 3).

The kernel row samples ``K`` at the pixel centres, i.e. at distances up to ``fov/sqrt(2)``
from the scatterer, while scatterers anywhere in the field need ``K`` up to ``sqrt(2) fov``.
:class:`SampledKernel` makes a continuous radial model from the samples:

- inside the sampled range, an even cubic spline through the radially grouped samples
  (an isotropic kernel gives the same value at equal distances; the spread is reported as
  :attr:`SampledKernel.anisotropy`);
- beyond it, the Friedel asymptotics of a 2D scatterer,
  ``K(r) ≈ (A cos qr + B sin qr)/r + (C cos qr + D sin qr)/r²``, fitted to the outer half of
  the samples (``q`` free), joined smoothly; if that form does not describe the samples
  (relative residual > 10 %), the kernel is instead tapered to zero over 10 Å — stated in
  :attr:`SampledKernel.extension`.

:class:`SampledKernel2D` is the same for a kernel of any shape (a lattice, a
superconductor): the isotropic model of the ring means plus the image's departure from
them, ``D(x, y) = image - ring mean``, interpolated by a bicubic spline and brought to zero
over the outer tenth of the sampled square (beyond it only the isotropic part is known).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.interpolate import BSpline, CubicSpline, RectBivariateSpline

from ..core.grid import Grid
from .base import Kernel, RadialKernel
from .image import edge_window, measured_symmetry

__all__ = ["SampledKernel", "SampledKernel2D", "SplineKernel", "spline_knots"]


def _asymptotic_basis(q: float, r: np.ndarray) -> np.ndarray:
    c, s = np.cos(q * r), np.sin(q * r)
    return np.stack([c / r, s / r, c / r**2, s / r**2], axis=-1)


def fit_friedel_tail(r: np.ndarray, v: np.ndarray, qmax: float):
    """Least-squares fit of the 2D Friedel asymptotic form; returns ``(q, coef, rel_resid)``."""
    qs = np.linspace(2 * math.pi / (2 * (r.max() - r.min()) + 1e-9), qmax, 800)

    def resid(q):
        A = _asymptotic_basis(q, r)
        coef, *_ = np.linalg.lstsq(A, v, rcond=None)
        return float(np.sum((A @ coef - v) ** 2)), coef

    errors = [resid(q)[0] for q in qs]
    i = int(np.argmin(errors))
    lo, hi = qs[max(i - 1, 0)], qs[min(i + 1, len(qs) - 1)]
    from scipy.optimize import minimize_scalar

    q = float(minimize_scalar(lambda q: resid(q)[0], bounds=(lo, hi), method="bounded").x)
    err, coef = resid(q)
    rel = math.sqrt(err / max(float(np.sum(v * v)), 1e-300))
    return q, coef, rel


class SampledKernel(RadialKernel):
    """An isotropic kernel known from samples K(r_i), continued by Friedel asymptotics.

    The samples are e.g. a kernel image on a grid (:meth:`from_image`).

    Parameters
    ----------
    r, values : array_like
        Sample distances (Å, distinct, >= 0) and values; at least 8.
    tail_fit_tolerance : float
        Largest relative residual of the Friedel-tail fit that is accepted.
    taper : float
        Length (Å) over which the kernel is brought to zero when the tail does not fit.
    anisotropy : float
        How far the samples spread around their rings (recorded, see :meth:`from_image`).

    Examples
    --------
    >>> from qpiset.physics import FriedelKernel
    >>> g = Grid(64, 100.0)
    >>> K = SampledKernel.from_image(FriedelKernel().sample(g), g)
    >>> K.extension
    'friedel-tail'
    >>> SampledKernel(**{k: v for k, v in K.params().items() if k != "model"}) == K
    True
    """

    name = "sampled"

    def __init__(self, r: np.ndarray, values: np.ndarray, *, tail_fit_tolerance: float = 0.1,
                 taper: float = 10.0, anisotropy: float = 0.0) -> None:
        r = np.asarray(r, dtype=float)
        values = np.asarray(values, dtype=float)
        if r.shape != values.shape or r.ndim != 1 or not np.all(np.isfinite(values)):
            raise ValueError("r and values must be 1D arrays of the same length, values finite")
        self.tail_fit_tolerance = float(tail_fit_tolerance)
        order = np.argsort(r)
        r, values = r[order], values[order]
        if r.size < 8 or r[0] < 0 or np.any(np.diff(r) <= 0):
            raise ValueError("need at least 8 distinct, non-negative sample distances")
        self.r_samples, self.samples = r, values
        self.anisotropy = float(anisotropy)
        self.r_max = float(r[-1])
        if r[0] == 0:
            rr, vv = np.concatenate([-r[:0:-1], r]), np.concatenate([values[:0:-1], values])
        else:
            rr, vv = np.concatenate([-r[::-1], r]), np.concatenate([values[::-1], values])
        self._spline = CubicSpline(rr, vv, bc_type="not-a-knot")
        self.taper = float(taper)
        outer = r >= 0.5 * self.r_max
        pitch = float(np.min(np.diff(np.unique(np.round(r, 9))))) if r.size > 1 else 1.0
        self.extension = "taper"
        self._tail = None
        if outer.sum() >= 12:
            spacing = max(float(np.median(np.diff(r[outer]))), 1e-6)
            qmax = min(math.pi / max(spacing, pitch), 4.0)
            q, coef, rel = fit_friedel_tail(r[outer], values[outer], qmax)
            self.tail_residual = rel
            if rel <= tail_fit_tolerance:
                self._tail = (q, coef)
                self.extension = "friedel-tail"

    @classmethod
    def from_image(cls, image: np.ndarray, grid: Grid, **kwargs) -> "SampledKernel":
        """Build from a kernel image ``[iy, ix]`` of one scatterer at (0, 0) on ``grid``."""
        image = np.asarray(image, dtype=float)
        if image.shape != grid.shape:
            raise ValueError(f"kernel image {image.shape} does not match the grid {grid.shape}")
        X, Y = grid.meshgrid()
        r = np.hypot(X, Y).ravel()
        key = np.round(r, 9)
        unique, inverse = np.unique(key, return_inverse=True)
        sums = np.bincount(inverse, weights=image.ravel())
        counts = np.bincount(inverse)
        mean = sums / counts
        spread = np.abs(image.ravel() - mean[inverse]).max()
        peak = np.abs(image).max() or 1.0
        return cls(unique, mean, anisotropy=float(spread / peak), **kwargs)

    def radial(self, r: np.ndarray) -> np.ndarray:
        r = np.abs(np.asarray(r, dtype=float))
        out = self._spline(np.minimum(r, self.r_max))
        beyond = r > self.r_max
        if np.any(beyond):
            rb = r[beyond]
            if self._tail is not None:
                q, coef = self._tail
                # join the fitted tail onto the spline continuously at r_max
                at_edge = float((_asymptotic_basis(q, np.array([self.r_max])) @ coef)[0])
                offset = float(self._spline(self.r_max)) - at_edge
                fade = np.exp(-(rb - self.r_max) / 5.0)
                out[beyond] = _asymptotic_basis(q, rb) @ coef + offset * fade
            else:
                t = np.clip((rb - self.r_max) / self.taper, 0.0, 1.0)
                out[beyond] = float(self._spline(self.r_max)) * 0.5 * (1 + np.cos(np.pi * t))
        return out

    def default_step(self) -> float:
        return 0.01

    def params(self) -> dict[str, Any]:
        return {"model": self.name, "r": self.r_samples.tolist(), "values": self.samples.tolist(),
                "tail_fit_tolerance": self.tail_fit_tolerance, "taper": self.taper,
                "anisotropy": self.anisotropy}

    def describe(self) -> dict[str, Any]:
        return {"model": self.name, "samples": int(self.samples.size), "r_max": self.r_max,
                "extension": self.extension, "anisotropy": self.anisotropy}


class SampledKernel2D(Kernel):
    """A kernel of any shape known from an image: the isotropic :class:`SampledKernel` of
    its ring means plus the bicubic spline of its departure from them (module docs).

    Parameters
    ----------
    image : array_like
        The kernel image ``[iy, ix]`` of one scatterer at the centre, on the pixel grid
        ``linspace(-fov/2, fov/2, R)`` (a file's kernel row).
    fov : float
        Its field of view (Å).
    taper : float
        Fraction of the half-width over which the departure is brought to zero.

    Examples
    --------
    >>> g = Grid(32, 50.0)
    >>> X, Y = g.meshgrid()
    >>> image = np.cos(X / 2) * np.exp(-(X**2 + Y**2) / 100)
    >>> K = SampledKernel2D(image, 50.0)
    >>> bool(np.allclose(K.evaluate(X[8:24, 8:24], Y[8:24, 8:24]), image[8:24, 8:24]))
    True
    """

    name = "sampled-2d"

    def __init__(self, image, fov: float, taper: float = 0.1) -> None:
        image = np.asarray(image, dtype=float)
        if image.ndim != 2 or image.shape[0] != image.shape[1] or image.shape[0] < 8:
            raise ValueError(f"expected a square kernel image of at least 8 pixels, got shape "
                             f"{image.shape}")
        if not np.all(np.isfinite(image)) or not (np.isfinite(fov) and fov > 0):
            raise ValueError("the kernel image must be finite and fov > 0")
        if not 0 <= taper < 1:
            raise ValueError(f"taper must be in [0, 1), got {taper!r}")
        self.image, self.fov, self.taper = image, float(fov), float(taper)
        grid = Grid(image.shape[0], self.fov)
        self.isotropic_part = SampledKernel.from_image(image, grid)
        self.anisotropy = self.isotropic_part.anisotropy
        X, Y = grid.meshgrid()
        departure = image - self.isotropic_part.radial(np.hypot(X, Y))
        self.axis = grid.x
        self._spline = RectBivariateSpline(self.axis, self.axis, departure, kx=3, ky=3, s=0)

    def _window(self, u: np.ndarray) -> np.ndarray:
        return edge_window(u, self.fov / 2, self.taper)

    def evaluate(self, x, y):
        x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        out = self.isotropic_part.radial(np.hypot(x, y))
        h = self.fov / 2
        inside = (np.abs(x) <= h) & (np.abs(y) <= h)
        if inside.any():
            xi, yi = x[inside], y[inside]
            out[inside] += self._spline.ev(yi, xi) * self._window(xi) * self._window(yi)
        return out

    def evaluate_grid(self, x, y):
        x, y = np.asarray(x, float), np.asarray(y, float)
        if np.any(np.diff(x) <= 0) or np.any(np.diff(y) <= 0):
            return super().evaluate_grid(x, y)
        out = self.isotropic_part.radial(np.hypot(x[None, :], y[:, None]))
        h = self.fov / 2
        ix, iy = np.flatnonzero(np.abs(x) <= h), np.flatnonzero(np.abs(y) <= h)
        if ix.size and iy.size:
            d = self._spline(y[iy], x[ix], grid=True)
            d *= self._window(y[iy])[:, None] * self._window(x[ix])[None, :]
            out[np.ix_(iy, ix)] += d
        return out

    def default_step(self) -> float:
        return float(self.axis[1] - self.axis[0]) / 8

    @property
    def rotational_symmetry(self) -> float:
        """Measured from the model within the untapered square, as for
        :class:`~qpiset.physics.ImageKernel`."""
        return measured_symmetry(self, float(self.axis[1] - self.axis[0]),
                                 (1 - self.taper) * self.fov / 2)

    def params(self) -> dict[str, Any]:
        return {"model": self.name, "image": self.image.tolist(), "fov": self.fov,
                "taper": self.taper}

    def describe(self) -> dict[str, Any]:
        return {"model": self.name, "image": f"array {self.image.shape[0]}x{self.image.shape[1]}",
                "fov": self.fov, "anisotropy": self.anisotropy}


def spline_knots(rmax: float, fine: float = 0.25, coarse: float = 0.5,
                 split: float = 8.0) -> np.ndarray:
    """Knots of a radial cubic B-spline: every ``fine`` Å up to ``split``, then every
    ``coarse`` Å to ``rmax`` (ends repeated three times)."""
    inner = np.arange(0.0, min(split, rmax), fine)
    outer = np.arange(inner[-1] + coarse if inner.size else 0.0, rmax + coarse, coarse)
    t = np.concatenate([inner, outer])
    return np.concatenate([[t[0]] * 3, t, [t[-1]] * 3])


class SplineKernel(RadialKernel):
    """An isotropic kernel given by radial cubic B-spline coefficients (an estimated or
    calibrated kernel, :mod:`qpiset.inverse`).

    Examples
    --------
    >>> K = SplineKernel(spline_knots(10.0), np.ones(len(spline_knots(10.0)) - 4))
    >>> SplineKernel(**{k: v for k, v in K.params().items() if k != "model"}) == K
    True
    """

    name = "spline"

    def __init__(self, knots: np.ndarray, coef: np.ndarray) -> None:
        self.knots = np.asarray(knots, float)
        self.coef = np.asarray(coef, float)
        self._spline = BSpline(self.knots, self.coef, 3, extrapolate=False)
        self.r_max = float(self.knots[-1])

    def radial(self, r: np.ndarray) -> np.ndarray:
        r = np.abs(np.asarray(r, float))
        out = self._spline(np.minimum(r, self.r_max))
        return np.nan_to_num(out)

    def default_step(self) -> float:
        return 0.01

    def params(self) -> dict[str, Any]:
        return {"model": self.name, "knots": self.knots.tolist(), "coef": self.coef.tolist()}

    def describe(self) -> dict[str, Any]:
        return {"model": self.name, "knots": int(self.knots.size), "r_max": self.r_max}
