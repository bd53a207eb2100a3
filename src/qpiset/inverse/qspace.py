"""A measured map in reciprocal space: its power spectrum, Bragg peaks and QPI ring.

The spectrum is ``|FFT(w z)|²`` of the map with its mean removed and a Hann window ``w``
(zero-padded to a power of two), on wave vectors ``q = 2 pi f`` (1/Å), the convention of
the rest of qpiset. Bragg peaks are the sharp maxima far out (beyond the QPI rings, at
``|q| >= q_min``) that come in ``+q, -q`` pairs; a lattice constant follows from the
shortest pair as ``2 pi / |q|`` (a square lattice, like the Se layer of FeSe). The ring
radius is where the azimuthal mean of the spectrum, divided by its smooth fall, peaks.
:func:`remove_peaks` takes the Bragg peaks out of a map (Gaussian notches), so the
lattice does not look like scatterers to the detectors.

Examples
--------
>>> import numpy as np
>>> yy, xx = np.mgrid[0:128, 0:128] * 0.5
>>> z = np.cos(2 * np.pi * xx / 3.77) + np.cos(2 * np.pi * yy / 3.77)
>>> z += np.random.default_rng(0).normal(0, 0.5, z.shape)
>>> peaks = lattice_peaks(bragg_peaks(z, 0.5))
>>> round(lattice_constant(peaks), 2)
3.77
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .features import subpixel

__all__ = ["Spectrum", "power_spectrum", "BraggPeak", "bragg_peaks", "lattice_peaks",
           "lattice_constant", "remove_peaks", "ring_radius"]


@dataclass
class Spectrum:
    """``power`` ``(n, n)`` (``fftshift``-ed, ``[iqy, iqx]``) on the axis ``q`` (1/Å,
    ascending, 0 at index ``n // 2``)."""

    power: np.ndarray
    q: np.ndarray

    @property
    def dq(self) -> float:
        return float(self.q[1] - self.q[0])


def power_spectrum(z: np.ndarray, pitch: float, pad: int = 2) -> Spectrum:
    """The Hann-windowed power spectrum of a map, zero-padded to at least ``pad`` times
    its larger side (a power of two), ``fftshift``-ed."""
    z = np.asarray(z, np.float64)
    w = np.outer(np.hanning(z.shape[0]), np.hanning(z.shape[1]))
    n = 1 << int(np.ceil(np.log2(pad * max(z.shape))))
    f = np.fft.fftshift(np.abs(np.fft.fft2((z - z.mean()) * w, s=(n, n))) ** 2)
    q = np.fft.fftshift(np.fft.fftfreq(n, d=pitch)) * 2 * np.pi
    return Spectrum(f, q)


@dataclass(frozen=True)
class BraggPeak:
    """A Bragg peak at ``(qx, qy)`` (1/Å); ``q`` its length, ``strength`` its height over
    the spectrum's median at that radius (a ratio)."""

    qx: float
    qy: float
    q: float
    strength: float


def bragg_peaks(z: np.ndarray, pitch: float, *, q_min: float = 1.0, ratio: float = 50.0,
                count: int = 8) -> list[BraggPeak]:
    """The Bragg peaks of a map: local maxima of the spectrum at ``|q| >= q_min`` (1/Å)
    higher than ``ratio`` times the spectrum's median at their radius, whose ``-q``
    partner is also one; at most ``count``, strongest first, one of each pair (``qy >= 0``).
    """
    from scipy import ndimage as ndi

    s = power_spectrum(z, pitch)
    qx, qy = np.meshgrid(s.q, s.q)
    qr = np.hypot(qx, qy)
    rings = np.round(qr / s.dq).astype(int)
    median = ndi.median(s.power, rings, index=np.arange(rings.max() + 1))
    level = s.power / (np.asarray(median)[rings] + 1e-300)
    size = max(5, int(round(0.3 / s.dq)) | 1)  # peaks at least ~0.3/Å apart
    top = (s.power == ndi.maximum_filter(s.power, size=size)) & (level > ratio) & (qr >= q_min)
    iy, ix = np.nonzero(top)
    n = len(s.q)
    found = {(int(a), int(b)) for a, b in zip(iy, ix)}
    peaks = []
    for a, b in sorted(zip(iy, ix), key=lambda t: -level[t]):
        partner = (n - a) % n, (n - b) % n  # -q on the shifted axes (n even)
        if not any((partner[0] + da, partner[1] + db) in found
                   for da in (-1, 0, 1) for db in (-1, 0, 1)):
            continue
        if s.q[a] < 0 or (s.q[a] == 0 and s.q[b] < 0):
            continue  # keep one of each pair
        fy, fx = subpixel(np.log(s.power + 1e-300), int(a), int(b))
        x, y = s.q[0] + fx * s.dq, s.q[0] + fy * s.dq
        peaks.append(BraggPeak(float(x), float(y), float(np.hypot(x, y)), float(level[a, b])))
    return peaks[:count]


def lattice_peaks(peaks: list[BraggPeak], tolerance: float = 0.1) -> list[BraggPeak]:
    """The peaks that make a lattice: the two shortest of about equal length (within
    ``tolerance``) at an angle between 30 and 150 degrees (the basis, first), then every
    other peak within ``tolerance`` of the basis' length of an integer combination of it
    (``|i|, |j| <= 2``). Empty when no such basis exists: sharp peaks that do not make a
    lattice (line noise, a step's streak) are not Bragg peaks.
    """
    order = sorted(peaks, key=lambda p: p.q)
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            if b.q > a.q * (1 + tolerance):
                break
            cos = (a.qx * b.qx + a.qy * b.qy) / (a.q * b.q)
            if abs(cos) < np.cos(np.radians(30)):
                rest = [p for p in order if p is not a and p is not b and _on_lattice(
                    p, a, b, tolerance * a.q)]
                return [a, b] + rest
    return []


def _on_lattice(p: BraggPeak, a: BraggPeak, b: BraggPeak, tol: float) -> bool:
    return any(np.hypot(p.qx - i * a.qx - j * b.qx, p.qy - i * a.qy - j * b.qy) < tol
               for i in range(-2, 3) for j in range(-2, 3))


def lattice_constant(peaks: list[BraggPeak], tolerance: float = 0.1) -> float:
    """``2 pi / |q|`` (Å) of the shortest Bragg peaks (those within ``tolerance`` of the
    shortest's length, averaged): the lattice constant of a square lattice."""
    if not peaks:
        raise ValueError("no Bragg peak")
    q = np.array([p.q for p in peaks])
    first = q[q <= q.min() * (1 + tolerance)]
    return float(2 * np.pi / first.mean())


def remove_peaks(z: np.ndarray, pitch: float, peaks: list[BraggPeak],
                 width: float = 0.08) -> np.ndarray:
    """``z`` without its Bragg peaks: the spectrum multiplied by Gaussian notches of
    ``width`` (1/Å) at each peak, its partner, and their sums up to the map's Nyquist
    (the harmonics)."""
    z = np.asarray(z, np.float64)
    ny, nx = z.shape
    qx = np.fft.fftfreq(nx, d=pitch)[None, :] * 2 * np.pi
    qy = np.fft.fftfreq(ny, d=pitch)[:, None] * 2 * np.pi
    base = [(p.qx, p.qy) for p in peaks]
    centres = set()
    for i in range(-2, 3):
        for j in range(-2, 3):
            if len(base) >= 2:
                centres.add((i * base[0][0] + j * base[1][0], i * base[0][1] + j * base[1][1]))
            elif base and j == 0:
                centres.add((i * base[0][0], i * base[0][1]))
    centres.discard((0.0, 0.0))
    mask = np.ones(z.shape)
    for cx, cy in centres:
        # the notch wraps with the FFT's periodicity
        dx = (qx - cx + np.pi / pitch) % (2 * np.pi / pitch) - np.pi / pitch
        dy = (qy - cy + np.pi / pitch) % (2 * np.pi / pitch) - np.pi / pitch
        mask *= 1 - np.exp(-(dx**2 + dy**2) / (2 * width**2))
    mean = z.mean()
    return np.real(np.fft.ifft2(np.fft.fft2(z - mean) * mask)) + mean


def ring_radius(z: np.ndarray, pitch: float, *, q_range: tuple[float, float] = (0.1, 1.0),
                mask: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """The QPI ring's radius ``q`` (1/Å) of a map: the maximum, within ``q_range``, of its
    azimuthally averaged spectrum divided by a power-law fit of it (the smooth fall).

    ``mask`` (pixels set to the map's median first: its scatterers' cores, which would
    otherwise dominate). Returns ``(q, q_axis, flattened_profile)``.
    """
    z = np.asarray(z, np.float64).copy()
    if mask is not None:
        z[mask] = np.median(z[~mask]) if (~mask).any() else 0.0
    s = power_spectrum(z, pitch)
    qx, qy = np.meshgrid(s.q, s.q)
    bins = np.round(np.hypot(qx, qy) / s.dq).astype(int)
    radial = np.bincount(bins.ravel(), s.power.ravel()) / np.maximum(np.bincount(bins.ravel()), 1)
    q = np.arange(len(radial)) * s.dq
    use = (q >= q_range[0]) & (q <= min(q_range[1], np.pi / pitch)) & (radial > 0)
    if use.sum() < 5:
        raise ValueError("the map is too small for its ring's range of wave vectors")
    fit = np.polyfit(np.log(q[use]), np.log(radial[use]), 2)
    flat = radial[use] / np.exp(np.polyval(fit, np.log(q[use])))
    i = int(np.argmax(flat))
    qs = q[use]
    if 0 < i < len(flat) - 1:
        m, c, p = np.log(flat[i - 1:i + 2])
        d = m - 2 * c + p
        shift = 0.5 * (m - p) / d if d < 0 else 0.0
        return float(qs[i] + shift * s.dq), qs, flat
    return float(qs[i]), qs, flat
