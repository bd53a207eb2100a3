"""A kernel given as an image: a user's measured or computed single-scatterer pattern.

The image (an array, a ``.npy`` file, or the kernel row of any dataset file qpiset reads)
is interpolated by a bicubic spline, so scatterers can sit at continuous positions; no isotropy is
assumed. The pattern is known only on the sampled square: beyond it the kernel is zero,
reached through a cosine taper over the outer ``taper`` fraction of the half-width (a
step would ring in q-space). For an isotropic kernel known from a file, the detectors'
:class:`~qpiset.physics.sampled.SampledKernel` extends it further by Friedel asymptotics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.interpolate import RectBivariateSpline

from ..core.sources import KERNEL_IMAGE_SOURCES
from .base import Kernel, measure_rotational_symmetry

__all__ = ["ImageKernel", "load_kernel_image", "edge_window", "measured_symmetry"]


def edge_window(u: np.ndarray, half: float, taper: float) -> np.ndarray:
    """1 inside ``|u| <= half``, brought to 0 by a cosine over its outer ``taper``
    fraction, 0 beyond."""
    w = taper * half
    a = np.abs(u)
    if w == 0:
        return (a <= half).astype(float)
    t = np.clip((a - (half - w)) / w, 0.0, 1.0)
    return 0.5 * (1 + np.cos(np.pi * t))


def measured_symmetry(kernel: Kernel, pitch: float, radius: float) -> float:
    """The rotational symmetry of a kernel known from an image of ``pitch`` (cached on it):
    rotations that change it by at most 5 % (RMS) within ``radius``, on rings half a pixel
    apart (:func:`~.base.measure_rotational_symmetry`)."""
    cached = kernel.__dict__.get("_symmetry")
    if cached is None:
        cached = measure_rotational_symmetry(kernel, radius, step=pitch / 2, tolerance=0.05)
        kernel.__dict__["_symmetry"] = cached
    return cached


def load_kernel_image(source: str | Path, fov: float | None = None) -> tuple[np.ndarray, float]:
    """``(image [iy, ix] centred on the scatterer, fov in Å)`` from ``source``: a ``.npy``
    array (then ``fov`` is required) or a dataset file (its kernel row and grid; the
    readers of :mod:`qpiset.core.sources`, which :mod:`qpiset.io` fills)."""
    path = Path(source)
    if path.suffix == ".npy":
        if fov is None:
            raise ValueError(f"{path}: a .npy kernel needs its field of view (fov, Å)")
        image = np.load(path, allow_pickle=False)
        if image.ndim != 2 or image.shape[0] != image.shape[1] or image.shape[0] < 4:
            raise ValueError(f"{path}: expected a square 2D array, got shape {image.shape}")
        if not np.all(np.isfinite(image)):
            raise ValueError(f"{path}: the kernel image has non-finite values")
        return np.asarray(image, float), float(fov)
    for accepts, read in KERNEL_IMAGE_SOURCES:
        if accepts(path):
            return read(path)
    raise ValueError(f"{path}: not a kernel image qpiset can read (a .npy array, or a "
                     "dataset file once qpiset.io is imported)")


class ImageKernel(Kernel):
    """Kernel from an image, bicubic spline interpolation, tapered to zero at its edge.

    Parameters
    ----------
    source : str or Path, optional
        ``.npy`` file or dataset file to take the image from (recorded in ``params``).
    fov : float, optional
        Field of view of the image (Å; required for ``.npy`` and ``image``).
    image : array_like, optional
        The image itself ``[iy, ix]``, scatterer at its centre, instead of ``source``
        (recorded in ``params`` as nested lists).
    taper : float
        Fraction of the half-width over which the pattern is brought to zero.

    Examples
    --------
    >>> from qpiset.core import Grid
    >>> g = Grid(32, 50.0)
    >>> X, Y = g.meshgrid()
    >>> K = ImageKernel(image=np.cos(X / 3) * np.exp(-(X**2 + Y**2) / 200), fov=50.0)
    >>> bool(abs(K.evaluate(g.x[16], g.x[16]) - np.cos(g.x[16] / 3) * np.exp(-2 * g.x[16]**2 / 200)) < 1e-12)
    True
    """

    name = "image"

    def __init__(self, source: str | Path | None = None, fov: float | None = None,
                 image: np.ndarray | None = None, taper: float = 0.1) -> None:
        if (source is None) == (image is None):
            raise ValueError("give either source (a .npy or dataset file) or image")
        self.source = None if source is None else str(source)
        if image is None:
            image, fov = load_kernel_image(self.source, fov)
        elif fov is None:
            raise ValueError("an image kernel needs its field of view (fov, Å)")
        image = np.asarray(image, dtype=float)
        if image.ndim != 2 or image.shape[0] != image.shape[1] or image.shape[0] < 4:
            raise ValueError(f"expected a square 2D image, got shape {image.shape}")
        if not (np.isfinite(fov) and fov > 0):
            raise ValueError(f"fov must be > 0, got {fov!r}")
        if not 0 <= taper < 1:
            raise ValueError(f"taper must be in [0, 1), got {taper!r}")
        if not np.all(np.isfinite(image)):
            raise ValueError("the kernel image has non-finite values")
        self.fov, self.taper, self.image = float(fov), float(taper), image
        n = image.shape[0]
        self.axis = np.linspace(-self.fov / 2, self.fov / 2, n)
        self._spline = RectBivariateSpline(self.axis, self.axis, image, kx=3, ky=3, s=0)
        self.extent = self.fov / 2  # the pattern is known on the square of this half-width

    def _window(self, u: np.ndarray) -> np.ndarray:
        """1 inside, cosine to 0 over the outer ``taper`` of the half-width, 0 outside."""
        return edge_window(u, self.fov / 2, self.taper)

    def evaluate(self, x, y):
        x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        h = self.fov / 2
        inside = (np.abs(x) <= h) & (np.abs(y) <= h)
        out = np.zeros(x.shape)
        if inside.any():
            xi, yi = x[inside], y[inside]
            out[inside] = self._spline.ev(yi, xi) * self._window(xi) * self._window(yi)
        return out

    def sample(self, grid) -> np.ndarray:
        """The image itself (times the taper) on its own grid; interpolated elsewhere."""
        if grid.resolution == self.image.shape[0] and np.allclose(
                grid.x, self.axis, rtol=0, atol=1e-9 * self.fov):
            w = self._window(self.axis)
            return self.image * w[None, :] * w[:, None]
        return super().sample(grid)

    def default_step(self) -> float:
        return float(self.axis[1] - self.axis[0]) / 8

    @property
    def rotational_symmetry(self) -> float:
        """Measured from the image (:func:`~.base.measure_rotational_symmetry`): rotations
        about its centre that change it by at most 5 % (RMS) within the disc the taper
        leaves alone, on rings half a pixel apart. Rotations by 90° map the pixels onto
        each other, so C2 and C4 are exact tests; an isotropic pattern drawn on too coarse
        a grid measures as C4 (its pixels are), a lattice pattern finer than the pixels as
        no symmetry (1)."""
        return measured_symmetry(self, float(self.axis[1] - self.axis[0]),
                                 (1 - self.taper) * self.fov / 2)

    def params(self) -> dict[str, Any]:
        if self.source is None:  # made from an array: the array is the record
            return {"model": self.name, "image": self.image.tolist(), "fov": self.fov,
                    "taper": self.taper}
        return {"model": self.name, "source": self.source, "fov": self.fov, "taper": self.taper}

    def describe(self) -> dict[str, Any]:
        p = self.params()
        if "image" in p:
            p["image"] = f"array {self.image.shape[0]}x{self.image.shape[1]}"
        return p
