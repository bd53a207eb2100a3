"""Orbitals: the real-space amplitude ``w(r)`` that each tight-binding orbital carries, so a
lattice model's Green's function becomes the continuum LDOS an STM tip measures
(:mod:`.continuum`).

Every orbital is normalised, ``∫ |w(r)|² d²r = 1``, and centred on its site:

- :class:`GaussianOrbital` (the default): ``w = sqrt(g_sigma)``, ``g_sigma`` the normalised
  2D Gaussian density of width ``sigma``, i.e. ``w(r) = (2 pi sigma²)^(-1/2)
  exp(-r²/4 sigma²)``; separable in ``x`` and ``y``, which the fast tables use. Overlap of
  two at distance ``d``: ``S(d) = exp(-d²/8 sigma²)``.
- :class:`SlaterOrbital`: an exponential (Slater-type) s orbital of decay length
  ``lam``, ``w(r) = sqrt(2/pi) / lam exp(-r/lam)``; ``S(d) = (d/lam)² K_2(d/lam) / 2``
  (``K_2`` the modified Bessel function; ``S(0) = 1``), from the Hankel transform
  ``w(q) = 2 pi c lam² (1 + q² lam²)^(-3/2)``.
- :class:`ImageOrbital`: a user-given amplitude image on a square grid of pitch ``h`` Å
  (centred on the site, normalised here), bicubic between samples, zero outside; its
  overlap from the image's autocorrelation (FFT).

``cutoff`` is the radius (Å) beyond which an orbital is dropped (its amplitude below
~1e-7 and ~1e-6 of its peak for the Gaussian and Slater forms).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage, special

__all__ = ["Orbital", "GaussianOrbital", "SlaterOrbital", "ImageOrbital", "ORBITALS",
           "make_orbital"]

#: Gaussian amplitudes are dropped beyond this many widths (``exp(-16) ~ 1e-7``).
GAUSSIAN_CUTOFF = 8.0
#: Slater amplitudes are dropped beyond this many decay lengths (``exp(-14) ~ 1e-6``).
SLATER_CUTOFF = 14.0


class Orbital(ABC):
    """The amplitude ``w(r)`` of one orbital about its site (normalised to 1)."""

    name: str = ""
    #: radius (Å) beyond which ``w`` is taken as zero
    cutoff: float = 0.0
    #: ``w(x, y) = factor(x) factor(y)`` (:meth:`factor`), which the fast tables use
    separable: bool = False

    @abstractmethod
    def amplitude(self, dx, dy) -> np.ndarray:
        """``w`` at offsets ``(dx, dy)`` (Å) from the site (zero beyond :attr:`cutoff`)."""

    def density(self, dx, dy) -> np.ndarray:
        """``|w|²`` at offsets ``(dx, dy)`` (Å)."""
        return self.amplitude(dx, dy) ** 2

    @abstractmethod
    def overlap(self, dx, dy) -> np.ndarray:
        """``S(d) = ∫ w(r) w(r - d) d²r`` for displacements ``d = (dx, dy)`` (Å)."""

    def factor(self, t) -> np.ndarray:
        """The 1D factor of a separable orbital, ``w(x, y) = factor(x) factor(y)``."""
        raise TypeError(f"{self.name} orbitals are not separable")

    @abstractmethod
    def step(self) -> float:
        """A table spacing (Å) that resolves the orbital for cubic interpolation."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """What recreates it (the kernel's ``orbital`` parameters)."""


class GaussianOrbital(Orbital):
    """``w(r) = (2 pi sigma²)^(-1/2) exp(-r²/4 sigma²)``: ``|w|²`` is the normalised
    Gaussian density of width ``sigma`` (Å).

    Examples
    --------
    >>> w = GaussianOrbital(0.8)
    >>> round(float(w.overlap(0.0, 0.0)), 12), round(float(w.overlap(0.8 * np.sqrt(8), 0)), 6)
    (1.0, 0.367879)
    """

    name = "gaussian"
    separable = True

    def __init__(self, sigma: float) -> None:
        if not (np.isfinite(sigma) and sigma > 0):
            raise ValueError(f"orbital width must be > 0 Å, got {sigma!r}")
        self.sigma = float(sigma)
        self.cutoff = GAUSSIAN_CUTOFF * self.sigma

    def factor(self, t) -> np.ndarray:
        t = np.asarray(t, float)
        f = (2 * np.pi * self.sigma ** 2) ** -0.25 * np.exp(-t * t / (4 * self.sigma ** 2))
        return np.where(np.abs(t) <= self.cutoff, f, 0.0)

    def amplitude(self, dx, dy) -> np.ndarray:
        r2 = np.asarray(dx, float) ** 2 + np.asarray(dy, float) ** 2
        w = np.exp(-r2 / (4 * self.sigma ** 2)) / math.sqrt(2 * np.pi * self.sigma ** 2)
        return np.where(r2 <= self.cutoff ** 2, w, 0.0)

    def overlap(self, dx, dy) -> np.ndarray:
        r2 = np.asarray(dx, float) ** 2 + np.asarray(dy, float) ** 2
        return np.exp(-r2 / (8 * self.sigma ** 2))

    def step(self) -> float:
        return self.sigma / 6

    def params(self) -> dict[str, Any]:
        return {"orbital": "gaussian"}


class SlaterOrbital(Orbital):
    """Exponential s orbital ``w(r) = sqrt(2/pi) / lam exp(-r/lam)`` (decay length
    ``lam`` Å).

    Examples
    --------
    >>> w = SlaterOrbital(0.5)
    >>> round(float(w.overlap(0.0, 0.0)), 9)
    1.0
    """

    name = "slater"

    def __init__(self, decay: float) -> None:
        if not (np.isfinite(decay) and decay > 0):
            raise ValueError(f"orbital decay length must be > 0 Å, got {decay!r}")
        self.decay = float(decay)
        self.cutoff = SLATER_CUTOFF * self.decay

    def amplitude(self, dx, dy) -> np.ndarray:
        r = np.hypot(np.asarray(dx, float), np.asarray(dy, float))
        w = math.sqrt(2 / np.pi) / self.decay * np.exp(-r / self.decay)
        return np.where(r <= self.cutoff, w, 0.0)

    def overlap(self, dx, dy) -> np.ndarray:
        x = np.hypot(np.asarray(dx, float), np.asarray(dy, float)) / self.decay
        safe = np.where(x > 0, x, 1.0)
        return np.where(x > 0, 0.5 * safe * safe * special.kn(2, safe), 1.0)

    def step(self) -> float:
        return self.decay / 6

    def params(self) -> dict[str, Any]:
        return {"orbital": "slater"}


class ImageOrbital(Orbital):
    """An amplitude given as an image ``(n, n)`` indexed ``[iy, ix]`` on a square grid of
    pitch ``pitch`` Å centred on the site (``n`` odd puts a sample on the site); normalised
    here to ``∫ |w|² = 1``; bicubic between samples, zero outside the image.

    ``source`` (a ``.npy`` path) is what :meth:`params` records.
    """

    name = "image"

    def __init__(self, image, pitch: float, source: str | None = None) -> None:
        w = np.asarray(image, float)
        if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] < 3:
            raise ValueError(f"an orbital image must be square, at least 3 x 3, got shape "
                             f"{w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError("the orbital image has NaN or infinite values")
        if not (np.isfinite(pitch) and pitch > 0):
            raise ValueError(f"orbital_pitch must be > 0 Å, got {pitch!r}")
        norm = float(np.sum(w * w)) * pitch * pitch
        if not norm > 0:
            raise ValueError("the orbital image is all zeros")
        self.pitch = float(pitch)
        self.values = w / math.sqrt(norm)
        self.source = source
        n = w.shape[0]
        self.half = (n - 1) / 2 * self.pitch
        self.cutoff = math.sqrt(2.0) * (self.half + self.pitch)
        self._coeffs = ndimage.spline_filter(self.values, order=3, mode="constant")
        # autocorrelation S(d) on the image's own grid, d up to the image's width
        pad = np.zeros((2 * n, 2 * n))
        pad[:n, :n] = self.values
        f = np.fft.rfft2(pad)
        auto = np.fft.fftshift(np.fft.irfft2(f * np.conj(f), s=pad.shape)) * self.pitch ** 2
        self._auto = auto  # sample [n, n] is d = 0
        self._auto_coeffs = ndimage.spline_filter(auto, order=3, mode="constant")

    @classmethod
    def from_file(cls, path, pitch: float) -> "ImageOrbital":
        try:
            image = np.load(Path(path), allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read the orbital image ({exc})") from None
        return cls(image, pitch, str(path))

    def _sample(self, coeffs, dx, dy, centre: float) -> np.ndarray:
        dx, dy = np.broadcast_arrays(np.asarray(dx, float), np.asarray(dy, float))
        rows = dy / self.pitch + centre
        cols = dx / self.pitch + centre
        out = ndimage.map_coordinates(coeffs, [rows.ravel(), cols.ravel()], order=3,
                                      mode="constant", cval=0.0, prefilter=False)
        return out.reshape(dx.shape)

    def amplitude(self, dx, dy) -> np.ndarray:
        return self._sample(self._coeffs, dx, dy, (self.values.shape[0] - 1) / 2)

    def overlap(self, dx, dy) -> np.ndarray:
        return self._sample(self._auto_coeffs, dx, dy, self._auto.shape[0] / 2)

    def step(self) -> float:
        return self.pitch / 2

    def params(self) -> dict[str, Any]:
        return {"orbital": "image", "orbital_file": self.source, "orbital_pitch": self.pitch}


#: ``orbital=`` names of the lattice models
ORBITALS = ("gaussian", "slater", "image")


def make_orbital(orbital: str, width: float, orbital_file=None,
                 orbital_pitch: float | None = None) -> Orbital:
    """The orbital a lattice kernel's parameters name: ``"gaussian"`` (width ``sigma``),
    ``"slater"`` (decay length), or ``"image"`` (``orbital_file`` a ``.npy`` amplitude image
    of pitch ``orbital_pitch`` Å)."""
    if orbital == "gaussian":
        return GaussianOrbital(width)
    if orbital == "slater":
        return SlaterOrbital(width)
    if orbital == "image":
        if orbital_file is None or orbital_pitch is None:
            raise ValueError('orbital="image" needs orbital_file (a .npy amplitude image) and '
                             "orbital_pitch (its pixel pitch, Å)")
        return ImageOrbital.from_file(orbital_file, float(orbital_pitch))
    raise ValueError(f"unknown orbital {orbital!r}; choose one of {ORBITALS}")
