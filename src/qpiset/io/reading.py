"""Reading dataset files: :func:`read` (whole, or a lazy store) and :func:`stream`
(chunks, bounded memory), for the row format, ``.npz`` and ``.zarr``."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from ..core.dataset import SENTINEL, Dataset
from ..core.sources import register_kernel_image_source
from .formats import file_format, read_sidecar
from .npz import read_npz
from .order import detect_order, resolve_order
from .rows import Header, check_values, file_header, images_from_rows, open_rows, read_all_fast

__all__ = ["read", "stream"]


def stream(path, order: str = "F", chunk_rows: int = 256,
           block_bytes: int = 64 << 20) -> Iterator[Dataset]:
    """Read a file in chunks of at most ``chunk_rows`` images (bounded memory).

    Each chunk is a :class:`Dataset` with the file's grid and kernel;
    ``meta["first_image"]`` gives the index of its first image.

    Examples
    --------
    >>> import qpiset, tempfile, os
    >>> from qpiset.physics import FriedelKernel
    >>> ds = qpiset.simulate(FriedelKernel(), qpiset.Grid(16, 25.0), n=5, max_scatterers=3)
    >>> path = os.path.join(tempfile.mkdtemp(), "d.csv"); qpiset.write(path, ds)
    >>> [len(c) for c in qpiset.io.stream(path, chunk_rows=2)]
    [2, 2, 1]
    """
    path = os.fspath(path)
    kind = file_format(path)
    order = resolve_order(order)
    if kind == "zarr":
        from .store import stream_store

        yield from stream_store(path, chunk_rows)
        return
    if kind == "npz":
        ds = read_npz(path)
        for s in range(0, max(ds.n_images, 1), chunk_rows):
            part = Dataset(ds.grid, ds.kernel, ds.images[s:s + chunk_rows],
                           ds.positions[s:s + chunk_rows], ds.max_scatterers,
                           None if ds.strengths is None else ds.strengths[s:s + chunk_rows],
                           dict(ds.meta, first_image=s))
            yield part
        return
    header, chunks = open_rows(path, chunk_rows, block_bytes)
    meta = read_sidecar(path)
    done = 0
    emitted = False
    with contextlib.closing(chunks):
        for chunk in chunks:
            if order == "AUTO":
                order = detect_order(header.kernel_pixels, chunk.pixels, chunk.coords,
                                     header.grid.x, path)
            yield _dataset(header, chunk.pixels, chunk.coords, order, dict(meta, first_image=done))
            done += len(chunk.pixels)
            emitted = True
    if not emitted:
        r2 = header.grid.resolution ** 2
        yield _dataset(header, np.empty((0, r2)), np.empty((0, 2 * header.max_scatterers)),
                       "F" if order == "AUTO" else order, dict(meta, first_image=0))


def _dataset(header: Header, pixels, coords, order: str, meta: dict) -> Dataset:
    r = header.grid.resolution
    xy = coords.reshape(len(coords), coords.shape[1] // 2, 2)
    positions = [p[p[:, 0] != SENTINEL] for p in xy]
    kernel = images_from_rows(header.kernel_pixels[None], r, order)[0]
    images = images_from_rows(pixels, r, order)
    meta = dict(meta, order=order, layout=header.layout)
    return Dataset(header.grid, kernel, images, positions, header.max_scatterers, meta=meta)


def read(path, order: str = "F") -> Dataset:
    """Read a dataset file (row format ``.csv``/``.csv.gz``/any text, ``.npz``, or a
    ``.zarr`` store, which is opened lazily: a :class:`~qpiset.io.store.StoreDataset`).

    Parameters
    ----------
    path : str or Path
    order : {"F", "C", "auto"}
        Pixel order of the row format: ``"F"`` (default, the published column-major
        order, ``y`` fastest), ``"C"`` (``x`` fastest) or ``"auto"`` (decided by which
        makes the images consistent with the kernel row and positions).

    Raises
    ------
    FormatError
        ``PATH:LINE:COLUMN: reason`` for anything malformed.

    Examples
    --------
    >>> import qpiset, tempfile, os
    >>> from qpiset.physics import FriedelKernel
    >>> ds = qpiset.simulate(FriedelKernel(), qpiset.Grid(16, 25.0), n=2, max_scatterers=3)
    >>> path = os.path.join(tempfile.mkdtemp(), "d.csv"); qpiset.write(path, ds)
    >>> back = qpiset.read(path)
    >>> bool((back.images == ds.images).all())
    True
    """
    path = os.fspath(path)
    order = resolve_order(order)
    if file_format(path) == "npz":
        return read_npz(path)
    if file_format(path) == "zarr":
        from .store import read_store

        return read_store(path)
    header = file_header(path)
    values = read_all_fast(header)
    if values is None:  # the streaming reader validates line by line and says what is wrong
        _, every = open_rows(path, chunk_rows=1 << 30, block_bytes=256 << 20)
        parts = [np.concatenate([c.pixels, c.coords], axis=1) for c in every]
        values = np.concatenate(parts) if parts else np.empty((0, header.width))
    else:
        check_values(header, 4, values)
    r2 = header.grid.resolution ** 2
    pixels, coords = values[:, :r2], values[:, r2:]
    if order == "AUTO":
        order = detect_order(header.kernel_pixels, pixels, coords, header.grid.x, path)
    return _dataset(header, pixels, coords, order, read_sidecar(path))


def _kernel_row(path: Path) -> tuple[np.ndarray, float]:
    """``(kernel row, fov)`` of a dataset file: what an image kernel takes from one."""
    ds = read(path)
    return ds.kernel, ds.grid.fov


# image kernels may take their image from any dataset file this module reads
register_kernel_image_source(lambda path: True, _kernel_row)
