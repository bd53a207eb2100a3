"""Features of a measured map: point scatterers (adsorbates, defects) and line scatterers
(step edges), found where the map's slope is far above its typical slope.

A scatterer's core changes the height (or dI/dV) much faster than the standing waves
around it, so the Gaussian-smoothed gradient magnitude, compared with its median over the
map, separates the two without knowing the scatterer's sign or shape. Connected regions
of steep slope are features; one that runs across most of the map is a line (a step),
the others are points. A point is *isolated* when no other feature is near it and it does
not touch the map's edge: those are the ones whose surroundings show one scatterer's
pattern (the standing-wave period, the kernel).

:func:`background` removes what varies slower than the standing waves (terraces, tilt,
drift) by a Gaussian smoothing that leaves the features out (normalised convolution), so a
scatterer's own height does not leak into its surroundings.

Examples
--------
>>> import numpy as np
>>> yy, xx = np.mgrid[0:96, 0:96] * 1.0
>>> z = 5.0 * np.exp(-((xx - 40) ** 2 + (yy - 50) ** 2) / 8.0) + 0.01 * np.sin(xx)
>>> f = find_features(z, pitch=1.0)
>>> len(f.points), len(f.lines)
(1, 0)
>>> [round(v) for v in f.points[0].center]
[40, 50]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["PointFeature", "LineFeature", "Features", "find_features", "background",
           "line_distance", "subpixel"]


@dataclass(frozen=True)
class PointFeature:
    """One point scatterer: ``center`` ``(x, y)`` in Å from the map's first pixel (the
    centroid of its deviation from the map's median), ``extremum`` ``(x, y)`` in Å (its
    largest deviation, refined to sub-pixel), ``area`` of its steep region (Å²),
    ``peak`` (its largest deviation in robust standard deviations of the map, signed),
    ``radius`` (Å, of the disc of the same area), ``isolated`` (see the module)."""

    center: tuple[float, float]
    extremum: tuple[float, float]
    area: float
    peak: float
    radius: float
    isolated: bool
    label: int


@dataclass(frozen=True)
class LineFeature:
    """One line scatterer (a step edge): a polynomial centre line ``coef`` of the
    coordinate across the line as a function of the one along it (``along`` is ``"y"`` when
    the line runs mostly along the map's y axis), in pixels, and its ``halfwidth`` (Å)."""

    coef: tuple[float, ...]
    along: str
    halfwidth: float
    label: int


@dataclass
class Features:
    """The features of one map: ``labels`` ``(ny, nx)`` (0 outside any feature, the
    feature's ``label`` inside), ``points``, ``lines``, the map's ``pitch`` (Å) and the
    ``artefacts`` (steep pixels along the map's edge: a half-spoiled first or last line)."""

    labels: np.ndarray = field(repr=False)
    points: list[PointFeature]
    lines: list[LineFeature]
    pitch: float
    artefacts: np.ndarray | None = field(default=None, repr=False)

    @property
    def mask(self) -> np.ndarray:
        """Pixels inside any feature."""
        return self.labels > 0

    @property
    def isolated(self) -> list[PointFeature]:
        return [p for p in self.points if p.isolated]

    def line_mask(self) -> np.ndarray:
        """Pixels inside a line feature."""
        return np.isin(self.labels, [ln.label for ln in self.lines])


def find_features(z: np.ndarray, pitch: float, *, threshold: float = 8.0,
                  smoothing: float = 1.0, isolation: float = 30.0,
                  min_area: float = 30.0, edge: int = 4) -> Features:
    """Point and line features of a levelled map.

    Parameters
    ----------
    z : (ny, nx) array
        The map, levelled (:mod:`qpiset.io.prepare`).
    pitch : float
        Pixel spacing (Å).
    threshold : float
        A pixel is steep when its gradient magnitude exceeds ``threshold`` times the map's
        median gradient magnitude.
    smoothing : float
        Width (Å) of the Gaussian derivative.
    isolation : float
        A point is isolated when the nearest other feature is farther than this (Å) from
        its centre, it has at least ``min_area`` Å², and it does not touch the edge.
    edge : int
        Regions lying entirely within this many pixels of the map's edge are edge
        artefacts (a first or last line half spoiled), not features.
    """
    from scipy import ndimage as ndi

    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or min(z.shape) < 8:
        raise ValueError(f"a map of at least 8x8 pixels is needed, got {z.shape}")
    ny, nx = z.shape
    grad = ndi.gaussian_gradient_magnitude(z, smoothing / pitch)
    steep = grad > threshold * (np.median(grad) + 1e-300)
    labels, n = ndi.label(ndi.binary_dilation(steep, iterations=2))
    border = np.zeros(z.shape, bool)
    border[:edge], border[-edge:], border[:, :edge], border[:, -edge:] = True, True, True, True
    inner = ~ndi.binary_dilation(border, iterations=2 * edge)
    med = np.median(z)
    sigma = 1.4826 * np.median(np.abs(z - med)) + 1e-300
    kept, lines, points = np.zeros_like(labels), [], []
    artefacts = np.zeros(z.shape, bool)
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        region = labels == index
        if not (region & ~border).any():
            artefacts |= region
            continue
        kept[region] = index
        tall, wide = box[0].stop - box[0].start, box[1].stop - box[1].start
        if (tall > ny / 2 or wide > nx / 2) and (region & inner).sum() > region.sum() / 2:
            lines.append(_line(region, index, pitch))
    others_of = _distances_to_others(kept, pitch)
    for index in np.unique(kept[kept > 0]):
        if index in {ln.label for ln in lines}:
            continue
        region = kept == index
        weight = np.abs(z - med) * region
        cy, cx = ndi.center_of_mass(weight)
        area = float(region.sum() * pitch**2)
        deviation = (z - med)[region]
        top = int(np.argmax(np.abs(deviation)))
        peak = float(deviation[top] / sigma)
        ey, ex = subpixel(z, *(int(v[top]) for v in np.nonzero(region)))
        touches = bool(region[0].any() or region[-1].any() or region[:, 0].any()
                       or region[:, -1].any())
        near = others_of(index)[min(int(round(cy)), ny - 1), min(int(round(cx)), nx - 1)]
        isolated = not touches and area >= min_area and near > isolation
        points.append(PointFeature((float(cx * pitch), float(cy * pitch)),
                                   (float(ex * pitch), float(ey * pitch)), area, peak,
                                   float(np.sqrt(area / np.pi)), bool(isolated), int(index)))
    return Features(kept, points, lines, float(pitch), artefacts)


def subpixel(z: np.ndarray, iy: int, ix: int) -> tuple[float, float]:
    """The vertex ``(y, x)`` (pixels) of the parabolas through pixel ``(iy, ix)`` and its
    neighbours along each axis, within half a pixel of it (a maximum or a minimum)."""
    def off(m, c, p):
        d = m - 2 * c + p
        return float(np.clip(0.5 * (m - p) / d, -0.5, 0.5)) if d != 0 else 0.0

    ny, nx = z.shape
    dy = off(z[iy - 1, ix], z[iy, ix], z[iy + 1, ix]) if 0 < iy < ny - 1 else 0.0
    dx = off(z[iy, ix - 1], z[iy, ix], z[iy, ix + 1]) if 0 < ix < nx - 1 else 0.0
    return iy + dy, ix + dx


def _distances_to_others(labels: np.ndarray, pitch: float):
    """``f(index)``: the distance (Å) of every pixel to the nearest feature other than
    ``index``."""
    from scipy import ndimage as ndi

    def of(index: int) -> np.ndarray:
        others = (labels > 0) & (labels != index)
        if not others.any():
            return np.full(labels.shape, np.inf)
        return ndi.distance_transform_edt(~others) * pitch

    return of


def _line(region: np.ndarray, index: int, pitch: float, degree: int = 2) -> LineFeature:
    """A line feature's centre line: the mean cross coordinate of each line (row or column)
    it crosses, fitted by a polynomial of ``degree`` in the along coordinate."""
    tall = np.ptp(np.nonzero(region)[0]) >= np.ptp(np.nonzero(region)[1])
    r = region if tall else region.T  # rows along the line
    along = np.flatnonzero(r.any(axis=1))
    across = np.array([np.flatnonzero(r[i]).mean() for i in along])
    widths = np.array([r[i].sum() for i in along])
    coef = np.polyfit(along, across, degree)
    return LineFeature(tuple(float(c) for c in coef), "y" if tall else "x",
                       float(np.median(widths) * pitch / 2), int(index))


def line_distance(line: LineFeature, shape: tuple[int, int], pitch: float) -> np.ndarray:
    """Signed distance (Å) of every pixel from a line's centre line, measured across it
    (negative on the side of smaller cross coordinate)."""
    ny, nx = shape
    n_along, n_across = (ny, nx) if line.along == "y" else (nx, ny)
    t = np.arange(n_along, dtype=np.float64)
    centre = np.polyval(line.coef, t)
    slope = np.polyval(np.polyder(np.asarray(line.coef)), t)
    d = (np.arange(n_across)[None, :] - centre[:, None]) / np.sqrt(1 + slope[:, None] ** 2)
    return (d if line.along == "y" else d.T) * pitch


def background(z: np.ndarray, mask: np.ndarray, width: float, pitch: float) -> np.ndarray:
    """What varies slower than ``width`` (Å) in ``z``, ignoring the pixels in ``mask``:
    the Gaussian-weighted mean of the unmasked neighbours (normalised convolution)."""
    from scipy import ndimage as ndi

    keep = (~np.asarray(mask, bool)).astype(np.float64)
    s = width / pitch
    num = ndi.gaussian_filter(np.asarray(z, np.float64) * keep, s, mode="nearest")
    den = ndi.gaussian_filter(keep, s, mode="nearest")
    return num / np.maximum(den, 1e-9)
