"""Preparing a measured map for analysis: levelling, cropping, spoiled rows, resampling.

Every step takes a :class:`~qpiset.core.Measurement` and returns a new one (the input is
left alone), works on each energy slice of a grid alike, and is deterministic. ``x``/``y``
stay in the map's frame (Å from the first pixel of the file), so positions found in a
prepared map are positions in the measured one.

Examples
--------
>>> import numpy as np
>>> from qpiset.core import Measurement
>>> yy, xx = np.mgrid[0:32, 0:32] * 2.0
>>> m = Measurement(0.3 * xx - 0.1 * yy + 5.0, np.arange(32) * 2.0, np.arange(32) * 2.0, "Z", "m")
>>> float(np.abs(level_plane(m).data).max()) < 1e-9
True
>>> crop(m, x=(10, 20), y=(0, 8), unit="px").shape
(8, 10)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..core.measurement import Measurement

__all__ = ["level_plane", "level_lines", "crop", "spoiled_rows", "keep_good_rows", "resample"]


def _slices(m: Measurement) -> np.ndarray:
    """The data as ``(n, ny, nx)`` (a scan is one slice)."""
    return m.data if m.is_grid else m.data[None]


def _with(m: Measurement, data: np.ndarray, **changes) -> Measurement:
    return dataclasses.replace(m, data=data if m.is_grid else data[0], **changes)


def level_plane(m: Measurement) -> Measurement:
    """Subtract the least-squares plane ``a + b x + c y`` from each slice."""
    ny, nx = m.data.shape[-2:]
    yy, xx = np.mgrid[0:ny, 0:nx]
    A = np.stack([np.ones(nx * ny), xx.ravel(), yy.ravel()], axis=1)  # a + b x + c y
    stack = _slices(m).reshape(-1, ny * nx).T  # (pixels, slices)
    coef, *_ = np.linalg.lstsq(A, stack, rcond=None)
    return _with(m, (stack - A @ coef).T.reshape(-1, ny, nx))


def level_lines(m: Measurement, order: int = 0) -> Measurement:
    """Line-by-line levelling: subtract from each scan line its median (``order=0``) or its
    least-squares straight line (``order=1``): the offsets a tip or a slow drift puts
    between lines. Scatterers cover a minority of a line, so the median barely sees them."""
    data = _slices(m).astype(np.float64, copy=True)
    if order == 0:
        data -= np.median(data, axis=-1, keepdims=True)
    elif order == 1:
        nx = data.shape[-1]
        t = np.arange(nx) - (nx - 1) / 2
        data -= data.mean(axis=-1, keepdims=True)
        slope = (data @ t) / (t @ t)
        data -= slope[..., None] * t
    else:
        raise ValueError(f"order must be 0 or 1, got {order}")
    return _with(m, data)


def crop(m: Measurement, x: tuple[float, float] | None = None,
         y: tuple[float, float] | None = None, unit: str = "nm") -> Measurement:
    """The part of the map within ``x = (x0, x1)`` and ``y = (y0, y1)``, in ``unit``:
    ``"nm"`` or ``"A"`` (the map's frame, as ``m.x``/``m.y``: a pixel is kept when its
    position lies in ``[x0, x1)``) or ``"px"`` (pixel indices, ``x1`` excluded)."""
    scale = {"nm": 10.0, "A": 1.0, "Å": 1.0}

    def pick(coord: np.ndarray, bounds) -> slice:
        if bounds is None:
            return slice(None)
        lo, hi = bounds
        if unit == "px":
            sel = slice(int(lo), int(hi))
        elif unit in scale:
            inside = np.flatnonzero((coord >= lo * scale[unit]) & (coord < hi * scale[unit]))
            sel = slice(int(inside[0]), int(inside[-1]) + 1) if inside.size else slice(0, 0)
        else:
            raise ValueError(f"unit must be 'nm', 'A' or 'px', got {unit!r}")
        if len(coord[sel]) == 0:
            raise ValueError(f"the crop {bounds} {unit} holds no pixel of the map "
                             f"({coord[0]:.1f}-{coord[-1]:.1f} Å)")
        return sel

    sx, sy = pick(m.x, x), pick(m.y, y)
    return dataclasses.replace(m, data=m.data[..., sy, sx], x=m.x[sx], y=m.y[sy])


def spoiled_rows(m: Measurement, threshold: float = 6.0, window: int = 15) -> np.ndarray:
    """Rows spoiled by a tip change or a jump: ``(ny,)`` bool.

    After plane levelling, each row's median is compared with the running median of the
    rows around it (``window`` rows): a row is spoiled when that step exceeds
    ``threshold`` times the map's typical row-to-row step (the median absolute
    difference of consecutive row medians), or when its own noise (the median absolute
    difference of neighbouring pixels) exceeds ``threshold`` times the typical row's.
    """
    from scipy.ndimage import median_filter

    data = _slices(level_plane(m))
    med = np.median(data, axis=-1).mean(axis=0)  # (ny,)
    step = np.median(np.abs(np.diff(med))) + 1e-300
    jump = np.abs(med - median_filter(med, size=window, mode="nearest")) > threshold * step
    rough = np.median(np.abs(np.diff(data, axis=-1)), axis=-1).mean(axis=0)
    noisy = rough > threshold * np.median(rough)
    return jump | noisy


def keep_good_rows(m: Measurement, bad: np.ndarray | None = None) -> Measurement:
    """The longest run of consecutive rows that are not ``bad`` (default
    :func:`spoiled_rows`); ``cropped`` records the rows kept (in the file's rows)."""
    bad = spoiled_rows(m) if bad is None else np.asarray(bad, bool)
    good = np.concatenate([[False], ~bad, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(good))
    starts, stops = edges[::2], edges[1::2]
    if starts.size == 0:
        raise ValueError(f"{m.path or 'the map'}: every row is spoiled")
    k = int(np.argmax(stops - starts))
    first, stop = int(starts[k]), int(stops[k])
    offset = m.cropped[0] if m.cropped else 0
    return dataclasses.replace(m, data=m.data[..., first:stop, :], y=m.y[first:stop],
                               cropped=(offset + first, offset + stop))


def resample(m: Measurement, pitch: float, order: int = 3,
             antialias: bool = False) -> Measurement:
    """The map on a grid of ``pitch`` Å (both axes), by spline interpolation of ``order``
    (``scipy.ndimage.map_coordinates``) over the same extent from the same first pixel.

    With ``antialias``, a map made coarser is first smoothed by a Gaussian of
    ``(s - 1) / 2`` of its pixels along each axis (``s`` the ratio of the pitches, the
    rule scikit-image uses), so what the new grid cannot hold (an atomic lattice finer
    than its Nyquist) is not folded onto it."""
    from scipy.ndimage import gaussian_filter, map_coordinates

    if pitch <= 0:
        raise ValueError(f"pitch must be positive, got {pitch}")
    px, py = m.pitch
    nx = int(np.floor((len(m.x) - 1) * px / pitch)) + 1
    ny = int(np.floor((len(m.y) - 1) * py / pitch)) + 1
    iy, ix = np.meshgrid(np.arange(ny) * pitch / py, np.arange(nx) * pitch / px,
                         indexing="ij")
    sigma = (max((pitch / py - 1) / 2, 0.0), max((pitch / px - 1) / 2, 0.0))
    slices = _slices(m)
    if antialias and max(sigma) > 0:
        slices = [gaussian_filter(np.asarray(s, np.float64), sigma) for s in slices]
    out = np.stack([map_coordinates(s, [iy, ix], order=order, mode="nearest")
                    for s in slices])
    return _with(m, out, x=m.x[0] + np.arange(nx) * pitch, y=m.y[0] + np.arange(ny) * pitch)
