"""Scatterers and kernel in a map larger than one image: tiles, and the averaged kernel.

A measured map is resampled to the analysis grid's pitch (:func:`~qpiset.io.prepare.resample`)
and cut into overlapping tiles of the grid's size (:func:`tile_origins`); the detectors
run on the tiles with one forward operator, and each tile keeps only what it found in its
own core (the tiles' cores cover the map once), so a scatterer near a tile's edge is found
by the tile that sees its whole pattern (:func:`detect_map`).

The kernel of a measured map is the mean of the windows around its isolated scatterers,
each centred on its scatterer (interpolated to the grid's points around it) and scaled to
one at its centre, with every other feature left out (:func:`average_kernel`); its
azimuthal average is the radial profile (:func:`radial_profile`).

Examples
--------
>>> tile_origins(100, 64, 16)
[0, 36]
>>> tile_origins(64, 64, 16)
[0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.grid import Grid
from .protocols import Detections

__all__ = ["tile_origins", "tiles", "MapDetections", "detect_map", "average_kernel",
           "radial_profile"]


#: Candidate pixels beyond a tile's edge for the deconvolution detectors (~38 Å at the
#: dataset's pitch: two to three surface-state periods).
MARGIN = 24


def tile_origins(n: int, size: int, overlap: int) -> list[int]:
    """First pixels of tiles of ``size`` covering ``n`` pixels, neighbours sharing at least
    ``overlap`` pixels (the last tile ends at the map's end)."""
    if n < size:
        raise ValueError(f"the map ({n} px) is smaller than one tile ({size} px)")
    stride = size - overlap
    count = int(np.ceil((n - size) / stride)) + 1 if n > size else 1
    if count == 1:
        return [0]
    return [int(round(i * (n - size) / (count - 1))) for i in range(count)]


def tiles(z: np.ndarray, size: int, overlap: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The tiles ``(n, size, size)`` of a 2D map and their origins ``(iy0, ix0)``."""
    ys, xs = tile_origins(z.shape[0], size, overlap), tile_origins(z.shape[1], size, overlap)
    origins = [(iy, ix) for iy in ys for ix in xs]
    return np.stack([z[iy:iy + size, ix:ix + size] for iy, ix in origins]), origins


def _core(origins: list[int], size: int, n: int) -> list[tuple[float, float]]:
    """Each tile's own pixel interval along one axis: halfway to its neighbours'."""
    bounds = []
    for i, o in enumerate(origins):
        lo = -np.inf if i == 0 else (origins[i - 1] + size + o) / 2 - 0.5
        hi = np.inf if i == len(origins) - 1 else (o + size + origins[i + 1]) / 2 - 0.5
        bounds.append((lo, hi))
    return bounds


@dataclass
class MapDetections:
    """Scatterers found in a map: ``positions`` ``(k, 2)`` (Å, the map's frame, from its
    first pixel), ``strengths`` and ``confidence`` ``(k,)`` (NaN where the method gives
    none)."""

    positions: np.ndarray
    strengths: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.positions)


def detect_map(z: np.ndarray, op, *, method: str = "sparse", overlap: int = 16,
               exclude: np.ndarray | None = None, **options) -> MapDetections:
    """Scatterers in a map at the pitch of ``op``'s grid, tile by tile.

    Parameters
    ----------
    z : (ny, nx) array
        The map, resampled to ``op.grid.pitch`` and with its slow background removed.
    op : Forward
        The forward operator of the map's kernel on the tile grid.
    method : str
        A detector (:func:`~qpiset.inverse.detect`).
    overlap : int
        Pixels neighbouring tiles share.
    exclude : (ny, nx) bool array, optional
        Pixels where nothing found counts (a step edge: a line scatterer, not points).
    **options
        Options of the detector; ``sparse`` and ``hybrid`` get ``margin=MARGIN`` unless
        given.
    """
    from .registry import detect

    grid = op.grid
    size = grid.resolution
    if method in ("sparse", "hybrid"):
        # a tile of a map sees patterns of scatterers beyond its edge: candidates that far
        # out explain them (with the default 3 px, each one becomes dozens of spurious
        # scatterers inside the tile)
        options.setdefault("margin", MARGIN)
    stack, origins = tiles(np.asarray(z, np.float64), size, overlap)
    found = detect(stack, op, method=method, **options)
    ys = tile_origins(z.shape[0], size, overlap)
    xs = tile_origins(z.shape[1], size, overlap)
    cores = {(o, "y"): c for o, c in zip(ys, _core(ys, size, z.shape[0]))}
    cores.update({(o, "x"): c for o, c in zip(xs, _core(xs, size, z.shape[1]))})
    pos, strength, conf = [], [], []
    for t, (iy0, ix0) in enumerate(origins):
        p = found.positions[t]
        px = ix0 + (p[:, 0] - grid.x[0]) / grid.pitch  # map pixels
        py = iy0 + (p[:, 1] - grid.x[0]) / grid.pitch
        (ylo, yhi), (xlo, xhi) = cores[(iy0, "y")], cores[(ix0, "x")]
        own = (px >= xlo) & (px < xhi) & (py >= ylo) & (py < yhi)
        inside = (px > -0.5) & (px < z.shape[1] - 0.5) & (py > -0.5) & (py < z.shape[0] - 0.5)
        keep = own & inside
        if exclude is not None:
            ix = np.clip(np.round(px).astype(int), 0, z.shape[1] - 1)
            iy = np.clip(np.round(py).astype(int), 0, z.shape[0] - 1)
            keep &= ~exclude[iy, ix]
        pos.append(np.stack([px[keep], py[keep]], axis=1) * grid.pitch)
        strength.append(_values(found, "strengths", t, len(p))[keep])
        conf.append(_values(found, "confidence", t, len(p))[keep])
    return MapDetections(np.concatenate(pos), np.concatenate(strength), np.concatenate(conf))


def _values(found: Detections, name: str, t: int, n: int) -> np.ndarray:
    values = getattr(found, name)
    return np.full(n, np.nan) if values is None else values[t]


def average_kernel(z: np.ndarray, centers: np.ndarray, grid: Grid,
                   labels: np.ndarray | None = None, own: np.ndarray | None = None,
                   scales=None) -> tuple[np.ndarray, np.ndarray]:
    """The mean window ``(R, R)`` around the scatterers at ``centers``.

    Parameters
    ----------
    z : (ny, nx) array
        The map at ``grid.pitch``, its slow background removed.
    centers : (k, 2) array
        Scatterers' ``(x, y)`` in map pixels (sub-pixel).
    grid : Grid
        The kernel's grid: window points at ``center + grid.x`` (the kernel row's layout,
        one scatterer at the origin).
    labels : (ny, nx) int array, optional
        The map's features (0 outside any): each window leaves out every feature but
        its own, ``own[i]`` for the ``i``-th centre.
    scales : (k,) array, optional
        What each window is divided by (default: its value at the centre), e.g. its
        scatterer's extreme value when the centre is on a node of the pattern.

    Returns
    -------
    kernel : (R, R) array
        Each window scaled to one at its centre (or by ``scales``); points no window covers
        are zero.
    count : (R, R) array
        How many windows covered each point.
    """
    from scipy.ndimage import map_coordinates

    z = np.asarray(z, np.float64)
    offsets = grid.x / grid.pitch
    total = np.zeros(grid.shape)
    count = np.zeros(grid.shape)
    centers = np.asarray(centers, np.float64).reshape(-1, 2)
    own = np.zeros(len(centers), int) if own is None else np.asarray(own, int)
    scales = [None] * len(centers) if scales is None else list(scales)
    for (cx, cy), mine, scale in zip(centers, own, scales):
        iy, ix = np.meshgrid(cy + offsets, cx + offsets, indexing="ij")
        inside = (ix >= 0) & (ix <= z.shape[1] - 1) & (iy >= 0) & (iy <= z.shape[0] - 1)
        window = map_coordinates(z, [iy, ix], order=1, mode="nearest")
        centre = (float(map_coordinates(z, [[cy], [cx]], order=1)[0]) if scale is None
                  else float(scale))
        if centre == 0:
            continue
        use = inside.copy()
        if labels is not None:
            near = map_coordinates(labels, [iy, ix], order=0, mode="nearest")
            use &= (near == 0) | (near == mine)
        total[use] += window[use] / centre
        count[use] += 1
    if not count.any():
        raise ValueError("no scatterer window to average")
    return np.where(count > 0, total / np.maximum(count, 1), 0.0), count


def radial_profile(kernel: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """The azimuthal mean of a kernel image in rings one pitch wide: ``(r, value)``
    (Å from the scatterer at the origin)."""
    r = np.hypot(*np.meshgrid(grid.x, grid.x))
    bins = np.round(r / grid.pitch).astype(int)
    n = np.bincount(bins.ravel())
    total = np.bincount(bins.ravel(), np.asarray(kernel, np.float64).ravel())
    rings = np.flatnonzero(n)
    rings = rings[rings * grid.pitch <= grid.fov / 2]
    return rings * grid.pitch, total[rings] / n[rings]
