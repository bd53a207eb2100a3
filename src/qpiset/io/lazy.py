"""Datasets opened lazily: what the commands that look at part of a file use, so that
their time and memory do not grow with the file.

:func:`open_dataset` gives, for the row format, a :class:`RowDataset` (lines read,
parsed and checked when asked for, a chunk at a time, through :class:`~qpiset.io.RowIndex`);
for a ``.zarr`` store its :class:`~qpiset.io.store.StoreDataset` (already lazy); for
``.npz`` the in-memory :class:`~qpiset.core.Dataset`. All have the attributes of a
Dataset (``grid``, ``kernel``, ``max_scatterers``, ``meta``, ``strengths``, ``n_images``,
``images[i]``, ``positions[i]``, ``load(n)``); :func:`head` limits any of them to its
first ``n`` images without reading further, and :func:`count` counts at most ``n``.
"""

from __future__ import annotations

import os

import numpy as np

from ..core.dataset import SENTINEL, Dataset
from ..core.errors import FormatError
from .formats import file_format, read_sidecar
from .npz import read_npz
from .order import resolve_order
from .reading import CHECK_ROWS, ORDER_CHECKS, _order_of
from .rows import RowIndex, block_values, check_values, images_from_rows

__all__ = ["open_dataset", "RowDataset", "head", "count", "CHUNK_BYTES"]

#: Parsed values held per chunk (the rows read and kept together; at most 64 rows).
CHUNK_BYTES = 8 << 20
_ORDER_IMAGES = 16  # images with scatterers the order check wants


def open_dataset(path, order: str = "F", order_check: str = "warn"):
    """Open a dataset file without reading its images: a :class:`RowDataset` (row
    format), a :class:`~qpiset.io.store.StoreDataset` (``.zarr``) or, for ``.npz``, the
    in-memory Dataset. ``order`` and ``order_check`` as for :func:`qpiset.io.stream`.

    Examples
    --------
    >>> import qpiset, tempfile, os
    >>> from qpiset.physics import FriedelKernel
    >>> ds = qpiset.simulate(FriedelKernel(), qpiset.Grid(16, 25.0), n=5, max_scatterers=3)
    >>> path = os.path.join(tempfile.mkdtemp(), "d.csv"); qpiset.write(path, ds)
    >>> with qpiset.io.open_dataset(path) as lazy:
    ...     bool((lazy.images[3] == ds.images[3]).all()), lazy.n_images
    (True, 5)
    """
    path = os.fspath(path)
    resolve_order(order)
    if order_check not in ORDER_CHECKS:
        raise ValueError(f"order_check must be one of {ORDER_CHECKS}, got {order_check!r}")
    kind = file_format(path)
    if kind == "zarr":
        from .store import read_store

        return read_store(path)
    if kind == "npz":
        return read_npz(path)
    return RowDataset(path, order=order, order_check=order_check)


def head(ds, n: int | None):
    """The first ``n`` images of ``ds`` (all when ``n`` is None, or fewer when the file
    has fewer) as a dataset of the same kind; a lazy one stays lazy and reads nothing
    beyond image ``n``."""
    if n is None:
        return ds
    n = int(n)
    if n < 0:
        raise ValueError(f"head: n must be >= 0, got {n}")
    if isinstance(ds, RowDataset):
        return ds.head(n)
    if isinstance(ds, Dataset):
        return Dataset(ds.grid, ds.kernel, ds.images[:n], ds.positions[:n], ds.max_scatterers,
                       None if ds.strengths is None else ds.strengths[:n], dict(ds.meta))
    return _Head(ds, n)


def count(ds, limit: int | None = None) -> int:
    """``ds.n_images``, or ``min(limit, ds.n_images)`` without reading past image
    ``limit`` of a lazily read file."""
    if limit is None:
        return ds.n_images
    return head(ds, limit).n_images


class _Images:
    """``ds.images`` of a lazy dataset: ``images[i]`` one image ``(R, R)``, ``images[a:b]``
    an array ``(k, R, R)``; ``np.asarray(images)`` reads them all."""

    def __init__(self, ds) -> None:
        self._ds = ds

    @property
    def shape(self) -> tuple[int, int, int]:
        r = self._ds.grid.resolution
        return (self._ds.n_images, r, r)

    ndim = 3
    dtype = np.dtype(np.float64)

    def __len__(self) -> int:
        return self._ds.n_images

    #: which part of an item (image, positions) this view gives
    _part = 0

    def _picked(self, index: slice) -> range:
        """The images a slice names, counting the file no further than its stop."""
        if index.step in (None, 1) and (index.start or 0) >= 0 and \
                index.stop is not None and index.stop >= 0:
            start, stop = index.start or 0, self._ds._count(index.stop)
            return range(start, max(start, stop))
        return range(*index.indices(self._ds.n_images))

    def __getitem__(self, index):
        if isinstance(index, slice):
            picked = self._picked(index)
            r = self._ds.grid.resolution
            out = np.empty((len(picked), r, r))
            for k, i in enumerate(picked):
                out[k] = self._ds._item(i)[0]
            return out
        return self._ds._item(index)[self._part]

    def __iter__(self):
        i = 0
        while True:
            try:
                yield self._ds._item(i)[self._part]
            except IndexError:
                return
            i += 1

    def __array__(self, dtype=None, copy=None):
        out = self[0:self._ds.n_images]
        return out if dtype is None else out.astype(dtype)


class _Positions(_Images):
    """``ds.positions`` of a lazy dataset: ``positions[i]`` the scatterers ``(k, 2)`` (Å)
    of image ``i``, ``positions[a:b]`` a list."""

    _part = 1

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._ds._item(i)[1] for i in self._picked(index)]
        return self._ds._item(index)[1]

    def __array__(self, dtype=None, copy=None):  # pragma: no cover - ragged
        raise TypeError("positions are ragged (one (k, 2) array per image): index them")


class RowDataset:
    """A row-format file opened lazily (:func:`open_dataset`): the attributes of a
    :class:`~qpiset.core.Dataset`, with ``images`` and ``positions`` read a chunk of
    lines at a time when indexed (bounded memory, nothing read beyond what is asked
    for); ``n_images`` scans the file's line ends once. :meth:`load` gives an in-memory
    Dataset, :meth:`head` the first ``n`` images, still lazy.

    Bad lines raise :class:`~qpiset.core.FormatError` (``PATH:LINE:COLUMN: reason``) when
    read. Opening reads lines 1-3 and, unless the file's provenance is known (qpiset's
    metadata sidecar), checks the pixel order on the first images with scatterers, as
    :func:`qpiset.read` does.
    """

    strengths = None  # the row format does not store them

    def __init__(self, path, order: str = "F", order_check: str = "warn") -> None:
        self.path = os.fspath(path)
        order = resolve_order(order)
        self._rows = RowIndex(self.path, order="F")
        self.header = self._rows.header
        self.grid = self.header.grid
        self.max_scatterers = self.header.max_scatterers
        width = self.header.width
        self._chunk = max(1, min(64, CHUNK_BYTES // (8 * width)))
        self._limit: int | None = None
        self._cache: tuple[int, np.ndarray] | None = None
        meta = read_sidecar(self.path)
        try:
            if order == "AUTO" or (order_check != "off" and not meta):
                first = self._first_rows()
                r2 = self.grid.resolution ** 2
                order = _order_of(self.header, first[:, :r2], first[:, r2:], order, meta,
                                  order_check)
        except BaseException:
            self.close()
            raise
        self._rows.order = order
        self.meta = dict(meta, order=order, layout=self.header.layout)
        self.images = _Images(self)
        self.positions = _Positions(self)

    def _first_rows(self) -> np.ndarray:
        """The first rows, until :data:`_ORDER_IMAGES` of them have scatterers (at most
        CHECK_ROWS): what the pixel-order check looks at."""
        parts, usable, start = [], 0, 0
        while start < CHECK_ROWS:
            try:
                first, values = self._chunk_of(start)
            except IndexError:
                break
            parts.append(values)
            r2 = self.grid.resolution ** 2
            usable += int(np.any(values[:, r2:] != SENTINEL, axis=1).sum())
            start = first + len(values)
            if usable >= _ORDER_IMAGES or len(values) < self._chunk:
                break
        if not parts:
            return np.empty((0, self.header.width))
        return np.concatenate(parts)[:CHECK_ROWS]

    # -- reading -----------------------------------------------------------------------
    def _count(self, limit: int | None) -> int:
        """Images available up to ``limit`` (this view's own limit included)."""
        if self._limit is not None:
            limit = self._limit if limit is None else min(limit, self._limit)
        return self._rows.count(limit)

    def _chunk_of(self, i: int) -> tuple[int, np.ndarray]:
        """``(first image, values)`` of the chunk of lines holding image ``i`` (>= 0)."""
        if self._cache is not None:
            first, values = self._cache
            if first <= i < first + len(values):
                return self._cache
        first = (i // self._chunk) * self._chunk
        stop = self._rows.count(first + self._chunk)
        if i >= stop:
            raise IndexError(f"image {i} of {stop}")
        text = self._rows.span(first, stop)
        if text.endswith(b"\n"):
            text = text[:-1]
        if b"\r" in text:
            text = text.replace(b"\r\n", b"\n")
            if text.endswith(b"\r"):
                text = text[:-1]
        if text.count(b"\n") != stop - first - 1:  # cannot be: the lines were counted
            raise FormatError(self.path, first + 4, None, "lines changed while reading")
        values = block_values(self.header, first + 4, text)
        check_values(self.header, first + 4, values)
        self._cache = (first, values)
        return self._cache

    def _item(self, index) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"image index must be an integer, got {index!r}")
        i = int(index)
        if i < 0:
            n = self.n_images
            if i < -n:
                raise IndexError(f"image index {i} out of range: the file has {n} images")
            i += n
        if self._limit is not None and i >= self._limit:
            raise IndexError(f"image index {i} out of range: the first {self._limit} images")
        try:
            first, values = self._chunk_of(i)
        except IndexError:
            n = self.n_images
            raise IndexError(f"image index {i} out of range: the file has {n} images"
                             + (f" (0..{n - 1})" if n else "")) from None
        row = values[i - first]
        r = self.grid.resolution
        xy = row[r * r:].reshape(-1, 2)
        image = images_from_rows(row[None, : r * r], r, self._rows.order)[0]
        return image, xy[xy[:, 0] != SENTINEL].copy()

    # -- what a Dataset has --------------------------------------------------------------
    @property
    def kernel(self) -> np.ndarray:
        return self._rows.kernel

    @property
    def order(self) -> str:
        return self._rows.order

    @property
    def n_images(self) -> int:
        """The number of images (scans the file's line ends once; a :meth:`head` view
        only as far as its limit)."""
        return self._count(None)

    def __len__(self) -> int:
        return self.n_images

    @property
    def counts(self) -> np.ndarray:
        """Scatterers per image (reads every line)."""
        return np.array([len(p) for p in self.positions], dtype=np.int64)

    def head(self, n: int) -> "RowDataset":
        """The first ``n`` images (fewer if the file has fewer), still lazy; counting
        them reads no further than image ``n``."""
        view = object.__new__(RowDataset)
        view.__dict__.update(self.__dict__)
        view._limit = int(n) if self._limit is None else min(int(n), self._limit)
        view.images = _Images(view)
        view.positions = _Positions(view)
        return view

    def load(self, n: int | None = None) -> Dataset:
        """The first ``n`` images (default all) in memory, as a Dataset."""
        n = self._count(n)
        r = self.grid.resolution
        images = np.empty((n, r, r))
        positions = []
        for i in range(n):
            images[i], p = self._item(i)
            positions.append(p)
        return Dataset(self.grid, self.kernel, images, positions, self.max_scatterers,
                       meta=dict(self.meta))

    plot = Dataset.plot  # the same figures; they read one image at a time

    def close(self) -> None:
        """Close the file (a later read opens it again)."""
        self._rows.close()
        self._cache = None

    def __enter__(self) -> "RowDataset":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        n = "?" if self._limit is None and not self._rows._complete else self.n_images
        return (f"RowDataset({self.path!r}, n_images={n}, resolution={self.grid.resolution}, "
                f"fov={self.grid.fov:g} Å, order={self.order!r})")


class _Head:
    """The first ``n`` images of a lazy store (:func:`head`)."""

    def __init__(self, ds, n: int) -> None:
        self._ds, self._n = ds, n
        self.path = getattr(ds, "path", None)
        self.grid, self.kernel = ds.grid, ds.kernel
        self.max_scatterers, self.meta = ds.max_scatterers, ds.meta
        self.strengths = None if ds.strengths is None else _Window(ds.strengths, self)
        self.images = _Window(ds.images, self)
        self.positions = _Window(ds.positions, self)

    @property
    def n_images(self) -> int:
        return min(self._n, self._ds.n_images)

    def __len__(self) -> int:
        return self.n_images

    @property
    def counts(self) -> np.ndarray:
        return np.asarray(self._ds.counts)[: self.n_images]

    def head(self, n: int) -> "_Head":
        return _Head(self._ds, min(n, self._n))

    def load(self, n: int | None = None) -> Dataset:
        n = self.n_images if n is None else min(int(n), self.n_images)
        return self._ds.load(n)

    plot = Dataset.plot


class _Window:
    """A sequence of a store limited to a :class:`_Head`'s images."""

    def __init__(self, seq, owner: _Head) -> None:
        self._seq, self._owner = seq, owner

    def __len__(self) -> int:
        return self._owner.n_images

    @property
    def shape(self):
        return (self._owner.n_images,) + tuple(getattr(self._seq, "shape", (0,))[1:])

    def __getitem__(self, index):
        n = self._owner.n_images
        if isinstance(index, slice):
            return self._seq[slice(*index.indices(n))]
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"image index {i} out of range: the first {n} images")
        return self._seq[i % n]

    def __iter__(self):
        return (self[i] for i in range(len(self)))
