"""Reading dataset files: :func:`read` (whole, or a lazy store) and :func:`stream`
(chunks, bounded memory), for the row format, ``.npz`` and ``.zarr``.

The row format's pixel order is not in the file. A file without qpiset's metadata sidecar
(made elsewhere) is checked when read: its first images with scatterers are compared with
the kernel row rendered at their positions under both orders (:mod:`.order`); when the
other order fits clearly better, a one-line :class:`~qpiset.io.order.OrderWarning` names
the file and the fix (``validate`` refuses the file instead).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..core.dataset import SENTINEL, Dataset
from ..core.errors import FormatError
from ..core.sources import register_kernel_image_source
from .formats import file_format, read_sidecar
from .measured import is_measurement, read_measurement
from .npz import read_npz
from .order import OrderWarning, auto_order, order_mismatch, resolve_order
from .rows import Header, check_values, file_header, images_from_rows, open_rows, read_all_fast

__all__ = ["read", "stream", "check_order", "ORDER_CHECKS", "CHECK_ROWS"]

#: What a reader does when the images fit the other pixel order clearly better.
ORDER_CHECKS = ("warn", "error", "off")
#: The image rows (from the first) whose images with scatterers the order check uses.
CHECK_ROWS = 256


def check_order(header: Header, pixels: np.ndarray, coords: np.ndarray, order: str,
                meta: dict, how: str = "warn") -> None:
    """The order check of a row-format file read with ``order`` ("F" or "C"), from its
    first image rows ``pixels``/``coords`` (file order): only when the file's provenance
    is unknown (no qpiset metadata ``meta``); ``how``: "warn" (an
    :class:`~qpiset.io.order.OrderWarning`), "error" (a FormatError) or "off"."""
    if how not in ORDER_CHECKS:
        raise ValueError(f"order_check must be one of {ORDER_CHECKS}, got {how!r}")
    if how == "off" or meta:
        return
    reason = order_mismatch(header.kernel_pixels, pixels[:CHECK_ROWS], coords[:CHECK_ROWS],
                            header.grid.x, order)
    if reason is None:
        return
    if how == "error":
        raise FormatError(header.path, None, None, reason)
    warnings.warn(OrderWarning(f"{header.path}: {reason}"), stacklevel=4)


def _order_of(header: Header, pixels, coords, order: str, meta: dict, how: str) -> str:
    """The order to read with: ``auto`` decided (and reported), else ``order`` checked."""
    if order == "AUTO":
        return auto_order(header.kernel_pixels, pixels[:CHECK_ROWS], coords[:CHECK_ROWS],
                          header.grid.x, header.path)
    check_order(header, pixels, coords, order, meta, how)
    return order


def stream(path, order: str = "F", chunk_rows: int = 256,
           block_bytes: int = 64 << 20, *, order_check: str = "warn",
           on_progress: Callable[[int, int, str], None] | None = None) -> Iterator[Dataset]:
    """Read a file in chunks of at most ``chunk_rows`` images (bounded memory).

    Each chunk is a :class:`Dataset` with the file's grid and kernel;
    ``meta["first_image"]`` gives the index of its first image.

    ``order_check``: what to do when a row-format file without qpiset's metadata fits
    the other pixel order clearly better: ``"warn"`` (default), ``"error"`` (a
    FormatError naming the fix) or ``"off"``. ``on_progress(done, total, unit)`` is
    called after each chunk: bytes of the file read (``unit="B"``, compressed bytes for
    gzip) or images (``"img"``, ``.npz`` and ``.zarr``).

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
    if order_check not in ORDER_CHECKS:
        raise ValueError(f"order_check must be one of {ORDER_CHECKS}, got {order_check!r}")
    report = on_progress or (lambda done, total, unit: None)
    if kind == "zarr":
        from .store import open_store, stream_store

        total = int(open_store(path, mode="r").attrs.get("n_images", 0))
        for part in stream_store(path, chunk_rows):
            yield part
            report(part.meta["first_image"] + part.n_images, total, "img")
        return
    if kind == "npz":
        ds = read_npz(path)
        for s in range(0, max(ds.n_images, 1), chunk_rows):
            part = Dataset(ds.grid, ds.kernel, ds.images[s:s + chunk_rows],
                           ds.positions[s:s + chunk_rows], ds.max_scatterers,
                           None if ds.strengths is None else ds.strengths[s:s + chunk_rows],
                           dict(ds.meta, first_image=s))
            yield part
            report(s + part.n_images, ds.n_images, "img")
        return
    header, chunks = open_rows(path, chunk_rows, block_bytes)
    with contextlib.closing(chunks):
        meta = read_sidecar(path)
        size = os.path.getsize(path)
        done = 0
        emitted = False
        for chunk in chunks:
            if not emitted:
                order = _order_of(header, chunk.pixels, chunk.coords, order, meta, order_check)
            yield _dataset(header, chunk.pixels, chunk.coords, order, dict(meta, first_image=done))
            done += len(chunk.pixels)
            emitted = True
            report(min(chunk.position, size), size, "B")
    if not emitted:
        r2 = header.grid.resolution ** 2
        report(size, size, "B")
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


def read(path, order: str = "F", channel: str | None = None):
    """Read a dataset file (row format ``.csv``/``.csv.gz``/any text, ``.npz``, or a
    ``.zarr`` store, which is opened lazily: a :class:`~qpiset.io.store.StoreDataset`), or
    a measured STM file (``.sxm``, ``.3ds``, ``.dat``, ``.gwy``): a
    :class:`~qpiset.core.Measurement` of one channel (:func:`~qpiset.io.read_measurement`).

    Parameters
    ----------
    path : str or Path
    order : {"F", "C", "auto"}
        Pixel order of the row format: ``"F"`` (default, the published column-major
        order, ``y`` fastest), ``"C"`` (``x`` fastest) or ``"auto"`` (decided by which
        makes the images consistent with the kernel row and positions; the choice is
        reported by an :class:`~qpiset.io.order.OrderWarning` and is ``ds.meta["order"]``).
        A row-format file without qpiset's metadata that fits the other order clearly
        better gets an :class:`~qpiset.io.order.OrderWarning` naming the fix.
    channel : str, optional
        The channel of a measured file (default: its lock-in channel, else its first).

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
    if is_measurement(path):
        return read_measurement(path, channel)
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
    meta = read_sidecar(path)
    order = _order_of(header, pixels, coords, order, meta, "warn")
    return _dataset(header, pixels, coords, order, meta)


def _kernel_row(path: Path) -> tuple[np.ndarray, float]:
    """``(kernel row, fov)`` of a dataset file: what an image kernel takes from one (the
    images are not read)."""
    from .lazy import open_dataset

    ds = open_dataset(path, order_check="off")
    try:
        return ds.kernel, ds.grid.fov
    finally:
        getattr(ds, "close", lambda: None)()


# image kernels may take their image from any dataset file this module reads
register_kernel_image_source(lambda path: True, _kernel_row)
