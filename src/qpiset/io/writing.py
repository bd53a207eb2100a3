"""Writing dataset files, atomically: :func:`write` (a Dataset; the format follows the
suffix), :func:`write_stream` (the row format from chunks, bounded memory) and
:func:`write_store` (a new chunked store from chunks of any size)."""

from __future__ import annotations

import os

import numpy as np

from ..core.dataset import Dataset
from ..core.errors import FormatError
from .atomic import atomic_output
from .formats import PRIVATE_META, file_format, write_sidecar
from .npz import write_npz
from .rows import check_kernel_row, write_rows

__all__ = ["write", "write_stream", "write_store"]


def write(path, ds: Dataset, layout: str = "padded") -> None:
    """Write ``ds`` atomically; the format follows the suffix (``.csv``, ``.csv.gz``,
    ``.npz``, ``.zarr``).

    Row format: comma-separated, padded with zeros to a rectangle (``layout="padded"``,
    default) or with short lines 1-2 (``"ragged"``), shortest round-trip float text (a
    write-read round trip is bit-exact), pixels in the published column-major order.
    The metadata ``ds.meta`` goes to a sidecar ``<name>.json``.
    """
    path = os.fspath(path)
    _check_kernel(path, ds.kernel)
    kind = file_format(path)
    if kind == "zarr":
        write_store(path, ds.grid, ds.kernel, ds.max_scatterers, ds.n_images,
                    [(ds.images, ds.positions, ds.strengths)], ds.meta)
        return
    if kind == "npz":
        write_npz(path, ds)
        return
    write_stream(path, ds.grid, ds.kernel, ds.max_scatterers,
                 [(ds.images, ds.positions)], ds.meta, layout=layout)


def _check_kernel(path, kernel) -> None:
    """Refuse, before writing, a kernel the reader would refuse (all zeros, constant, or
    too large or small to square): a file qpiset writes is a file qpiset reads."""
    check_kernel_row(os.fspath(path), kernel, line=None, what="the kernel to write")


def write_stream(path, grid, kernel, max_scatterers, chunks, meta=None, layout="padded") -> int:
    """Write the row format from an iterable of ``(images, positions)`` chunks; atomic.
    Returns the number of images. A kernel the reader would refuse (all zeros, constant,
    too large or small to square) is refused here, before anything is written."""
    _check_kernel(path, kernel)
    with atomic_output(path) as f:
        n = write_rows(f, grid, kernel, max_scatterers, chunks, layout=layout)
    write_sidecar(path, meta, n)
    return n


def write_store(path, grid, kernel, max_scatterers, n, chunks, meta=None, block=256) -> int:
    """Write a new ``.zarr`` store from ``(images, positions[, strengths])`` chunks of any
    size, re-blocked into the store's blocks (bounded memory); returns the image count."""
    from .store import create_store, write_block

    _check_kernel(path, kernel)
    meta = {k: v for k, v in (meta or {}).items() if k not in PRIVATE_META}
    group = create_store(path, grid, kernel, n, max_scatterers, meta, block=block, resume=False)
    images = np.empty((0, grid.resolution, grid.resolution))
    positions: list = []
    strengths: list = []
    written = 0

    def flush(count: int) -> None:
        nonlocal images, positions, strengths, written
        write_block(group, written // block, images[:count], positions[:count],
                    strengths[:count])
        images, positions, strengths = images[count:], positions[count:], strengths[count:]
        written += count

    for chunk in chunks:
        part_strengths = chunk[2] if len(chunk) > 2 and chunk[2] is not None else [
            np.full(len(p), np.nan) for p in chunk[1]]
        images = np.concatenate([images, np.asarray(chunk[0], float)])
        positions = positions + list(chunk[1])
        strengths = strengths + list(part_strengths)
        while len(images) >= block:
            flush(block)
    if len(images):
        flush(len(images))
    if written != n:
        raise FormatError(path, None, None, f"{written} images written, {n} expected")
    return n
