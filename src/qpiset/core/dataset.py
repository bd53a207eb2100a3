"""The in-memory dataset shared by every stage (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .grid import Grid

__all__ = ["Dataset", "Sample", "SENTINEL", "pad_rows", "image_index"]

#: Coordinate value marking an unused scatterer slot (both x and y).
SENTINEL = 1000.0


def pad_rows(rows, width: int, fill: float = SENTINEL, tail: tuple[int, ...] = (2,),
             dtype=np.float64) -> np.ndarray:
    """Ragged per-image rows (positions ``(k_i, 2)``, strengths ``(k_i,)``, ...) as one
    array ``(N, width) + tail``, unused slots set to ``fill``.

    Examples
    --------
    >>> pad_rows([np.ones((1, 2)), np.zeros((0, 2))], 2).tolist()
    [[[1.0, 1.0], [1000.0, 1000.0]], [[1000.0, 1000.0], [1000.0, 1000.0]]]
    >>> pad_rows([np.array([0.5])], 3, np.nan, tail=()).tolist()
    [[0.5, nan, nan]]
    """
    out = np.full((len(rows), int(width)) + tuple(tail), fill, dtype=dtype)
    for i, row in enumerate(rows):
        row = np.asarray(row, dtype=dtype).reshape((-1,) + tuple(tail))
        if len(row) > width:
            raise ValueError(f"row {i} has {len(row)} entries, more than the {width} slots")
        out[i, : len(row)] = row
    return out


def image_index(index, n: int) -> int:
    """``index`` as an image number in ``0..n-1`` (negative counts from the end), or an
    ``IndexError`` saying how many images there are.

    Examples
    --------
    >>> image_index(-1, 5)
    4
    """
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"image index must be an integer, got {index!r}")
    if not -n <= index < n:
        raise IndexError(f"image index {index} out of range: the dataset has {n} images"
                         + (f" (0..{n - 1}, or -{n}..-1 from the end)" if n else ""))
    return int(index) % n


class Sample(NamedTuple):
    """One image of a :class:`Dataset` with its scatterers (``ds[i]``)."""

    image: np.ndarray  # (R, R) [iy, ix]
    positions: np.ndarray  # (k, 2) Å
    strengths: np.ndarray | None  # (k,) when known


@dataclass
class Dataset:
    """QPI images with their kernel, scatterer positions and grid.

    Attributes
    ----------
    grid : Grid
        Pixel grid (``grid.x`` in Å).
    kernel : ndarray, shape (R, R)
        Single scatterer at (0, 0), indexed ``[iy, ix]``.
    images : ndarray, shape (N, R, R)
        Indexed ``[n, iy, ix]``.
    positions : list of N arrays of shape (k_n, 2)
        Scatterer ``(x, y)`` in Å of each image.
    max_scatterers : int
        Coordinate slots per row (the file's column count is ``R² + 2 max_scatterers``).
    strengths : list of N arrays, optional
        Scatterer strengths when known (simulated data; the row format does not store them).
    meta : dict
        How the data was made (kernel model and parameters, seed, ...), when known.

    Examples
    --------
    >>> g = Grid(4, 3.0)
    >>> ds = Dataset(g, np.zeros((4, 4)), np.zeros((2, 4, 4)), [np.zeros((0, 2)), np.ones((1, 2))], 3)
    >>> ds.counts.tolist()
    [0, 1]
    >>> ds[-1].positions.tolist(), len(ds[0:1])
    ([[1.0, 1.0]], 1)
    """

    grid: Grid
    kernel: np.ndarray
    images: np.ndarray
    positions: list[np.ndarray]
    max_scatterers: int
    strengths: list[np.ndarray] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        r = self.grid.resolution
        self.kernel = np.asarray(self.kernel, dtype=np.float64)
        self.images = np.asarray(self.images, dtype=np.float64)
        if self.kernel.shape != (r, r):
            raise ValueError(f"kernel has shape {self.kernel.shape}, expected {(r, r)}")
        if self.images.ndim != 3 or self.images.shape[1:] != (r, r):
            raise ValueError(f"images have shape {self.images.shape}, expected (N, {r}, {r})")
        self.positions = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in self.positions]
        if len(self.positions) != len(self.images):
            raise ValueError(f"{len(self.positions)} position sets for {len(self.images)} images")
        self.max_scatterers = int(self.max_scatterers)
        if self.max_scatterers < 1:
            raise ValueError("max_scatterers must be >= 1")
        worst = max((len(p) for p in self.positions), default=0)
        if worst > self.max_scatterers:
            raise ValueError(f"an image has {worst} scatterers > max_scatterers {self.max_scatterers}")
        for p in self.positions:
            if np.any(p == SENTINEL):
                raise ValueError("positions must not contain the sentinel 1000 (drop unused slots)")

    @property
    def n_images(self) -> int:
        return int(self.images.shape[0])

    @property
    def counts(self) -> np.ndarray:
        """Number of scatterers in each image."""
        return np.array([len(p) for p in self.positions], dtype=np.int64)

    def positions_padded(self) -> np.ndarray:
        """Positions as ``(N, max_scatterers, 2)`` with :data:`SENTINEL` in unused slots."""
        return pad_rows(self.positions, self.max_scatterers)

    def __getitem__(self, index):
        """``ds[i]``: image ``i`` (negative counts from the end) as a :class:`Sample`;
        ``ds[a:b]``: those images as a Dataset."""
        if isinstance(index, slice):
            take = range(*index.indices(self.n_images))
            return Dataset(self.grid, self.kernel, self.images[index],
                           [self.positions[i] for i in take], self.max_scatterers,
                           None if self.strengths is None else
                           [self.strengths[i] for i in take], dict(self.meta))
        i = image_index(index, self.n_images)
        return Sample(self.images[i], self.positions[i],
                      None if self.strengths is None else self.strengths[i])

    def __iter__(self):
        return (self[i] for i in range(self.n_images))

    def plot(self, index: int = 0, *, predictions=None, tol: float = 1.5,
             contributions: bool = False, kernel_model=None):
        """The figure ``qpiset show`` draws for image ``index``.

        Parameters
        ----------
        index : int
            The image (negative counts from the end).
        predictions : (k, 2) array, optional
            Detected positions (Å): found, missed and extra scatterers are marked.
        tol : float
            Matching tolerance (Å) for ``predictions``.
        contributions : bool
            Draw each scatterer's term, their sum and what is left instead.
        kernel_model : Kernel, optional
            The physics model, when known (the profile's line, the ``2 k_F`` ring).

        Returns
        -------
        matplotlib.figure.Figure
            Shown inline by notebooks; ``fig.savefig(path)`` writes it (:mod:`qpiset.viz`).
        """
        from ..viz import figure_contributions, figure_show  # the one door upward (as xarray.plot)

        index = image_index(index, self.n_images)

        if contributions:
            return figure_contributions(self, index, kernel_model=kernel_model)
        return figure_show(self, index, predictions=predictions, tol=tol,
                           kernel_model=kernel_model)

    def to_xarray(self):
        """An ``xarray.Dataset`` with coordinates in Å and the metadata as attributes.

        Variables: ``images (image, y, x)``, ``kernel (y, x)``, ``positions (image, slot,
        xy)`` (NaN in unused slots), ``counts (image)`` and, when known, ``strengths
        (image, slot)``. ``attrs["qpiset_meta"]`` is the metadata as JSON (attributes must be plain
        values to be written to netCDF or zarr).

        Examples
        --------
        >>> ds = Dataset(Grid(4, 3.0), np.zeros((4, 4)), np.zeros((2, 4, 4)),
        ...              [np.zeros((0, 2)), np.ones((1, 2))], 3)
        >>> xd = ds.to_xarray()
        >>> xd["images"].sel(x=1.5, y=-1.5).shape
        (2,)
        """
        import json

        try:
            import xarray as xr
        except ImportError:  # pragma: no cover - depends on the installation
            raise ImportError("Dataset.to_xarray needs xarray: pip install 'qpiset[xarray]'") from None
        x = self.grid.x
        pos = self.positions_padded()
        pos[pos == SENTINEL] = np.nan
        axis = {"units": "Å"}
        data = {
            "images": (("image", "y", "x"), self.images,
                      {"long_name": "LDOS change δρ/ρ₀", "units": "1"}),
            "kernel": (("y", "x"), self.kernel,
                       {"long_name": "single scatterer at (0, 0)", "units": "1"}),
            "positions": (("image", "slot", "xy"), pos,
                          {"long_name": "scatterer position", "units": "Å"}),
            "counts": (("image",), self.counts, {"long_name": "scatterers in the image"}),
        }
        if self.strengths is not None:
            st = pad_rows(self.strengths, self.max_scatterers, np.nan, tail=())
            data["strengths"] = (("image", "slot"), st, {"long_name": "scatterer strength"})
        coords = {"x": ("x", x, {**axis, "long_name": "x"}),
                  "y": ("y", x.copy(), {**axis, "long_name": "y"}),
                  "image": np.arange(self.n_images), "slot": np.arange(self.max_scatterers),
                  "xy": ["x", "y"]}
        attrs = {"resolution": self.grid.resolution, "fov": self.grid.fov, "fov_units": "Å",
                 "pitch": self.grid.pitch, "max_scatterers": self.max_scatterers,
                 "qpiset_meta": json.dumps(self.meta, default=str)}
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def __len__(self) -> int:
        return self.n_images

    def __repr__(self) -> str:
        g = self.grid
        return (f"Dataset(n_images={self.n_images}, resolution={g.resolution}, "
                f"fov={g.fov:g} Å, max_scatterers={self.max_scatterers})")
