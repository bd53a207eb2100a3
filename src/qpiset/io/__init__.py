"""Reading, validating, writing and converting dataset files.

Formats by suffix: ``.csv`` (and any other text name) and ``.csv.gz`` are the row format;
``.npz`` is the binary container (:mod:`qpiset.io.npz`); ``.zarr`` is the chunked store
(:mod:`qpiset.io.store`, read lazily). A row-format file may have a
sidecar ``<name>.json`` with how the data were made (kernel model, seed, ...).
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..dataset import Dataset
from .errors import FormatError
from .npz import read_npz, write_npz
from .rowformat import (Header, atomic_output, check_values, images_from_rows, open_rows,
                        read_all_fast, write_rows)

__all__ = [
    "FormatError", "read", "write", "stream", "validate", "summarize", "Summary",
    "detect_order", "sidecar_path", "file_format", "convert", "write_stream", "write_store",
]


def file_format(path) -> str:
    """``"npz"``, ``"zarr"`` or ``"rows"`` (the row format, plain or gzipped) by suffix."""
    name = os.fspath(path).lower().rstrip("/")
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".zarr"):
        return "zarr"
    return "rows"


def sidecar_path(path) -> Path:
    """Where the metadata of a row-format file lives: ``<file name>.json`` beside it."""
    p = Path(path)
    return p.with_name(p.name + ".json")


def _read_sidecar(path) -> dict:
    side = sidecar_path(path)
    if not side.exists():
        return {}
    text = side.read_text(encoding="utf-8")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(side, exc.lineno, exc.colno, f"sidecar metadata is not JSON: {exc.msg}") from None
    size = record.get("data_bytes")
    if size is not None and size != os.path.getsize(path):
        warnings.warn(f"{side}: written for a file of {size} bytes, {path} has "
                      f"{os.path.getsize(path)}; ignoring the stale metadata", stacklevel=3)
        return {}
    return record.get("meta", {})


# ----------------------------------------------------------------------------- order


def detect_order(kernel_pixels: np.ndarray, pixels: np.ndarray, coords: np.ndarray,
                 x: np.ndarray, path: str = "<data>") -> str:
    """Decide ``"F"`` or ``"C"`` pixel order from how well each explains the images.

    Under each hypothesis, re-synthesise images from the kernel row (bilinear
    interpolation, zero beyond its ±fov/2 extent) at the file's positions and correlate
    with the images; the order with the clearly higher mean correlation wins.
    """
    from scipy.ndimage import map_coordinates

    r = x.size
    pitch = (x[-1] - x[0]) / (r - 1)
    scores = {}
    usable = [i for i in range(len(pixels)) if np.any(coords[i] != 1000.0)][:16]
    if not usable:
        raise FormatError(path, None, None, "cannot decide the pixel order: no image has "
                                            "scatterers; pass order='F' or order='C'")
    for order in ("F", "C"):
        kernel = images_from_rows(kernel_pixels[None], r, order)[0]
        images = images_from_rows(pixels[usable], r, order)
        total = 0.0
        for img, c in zip(images, coords[usable]):
            xy = c.reshape(-1, 2)
            xy = xy[xy[:, 0] != 1000.0]
            gx = (x[None, None, :] - xy[:, 0, None, None]) / pitch + (r - 1) / 2
            gy = (x[None, :, None] - xy[:, 1, None, None]) / pitch + (r - 1) / 2
            gx, gy = np.broadcast_arrays(gx, gy)
            model = map_coordinates(kernel, [gy.ravel(), gx.ravel()], order=1, mode="constant",
                                    cval=0.0).reshape(len(xy), r, r).sum(axis=0)
            a, b = img - img.mean(), model - model.mean()
            denom = np.sqrt((a * a).sum() * (b * b).sum())
            total += float((a * b).sum() / denom) if denom > 0 else 0.0
        scores[order] = total / len(usable)
    best, other = ("F", "C") if scores["F"] >= scores["C"] else ("C", "F")
    if scores[best] - scores[other] < 0.05 or scores[best] < 0.2:
        raise FormatError(path, None, None,
                          f"cannot decide the pixel order (correlation F {scores['F']:.3f}, "
                          f"C {scores['C']:.3f}); pass order='F' or order='C'")
    return best


def _resolve_order(order: str) -> str:
    order = order.upper() if isinstance(order, str) else order
    if order not in ("F", "C", "AUTO"):
        raise ValueError(f"order must be 'F', 'C' or 'auto', got {order!r}")
    return order


# ----------------------------------------------------------------------------- reading


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
    order = _resolve_order(order)
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
    meta = _read_sidecar(path)
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
    positions = [p[p[:, 0] != 1000.0] for p in xy]
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
    order = _resolve_order(order)
    if file_format(path) == "npz":
        return read_npz(path)
    if file_format(path) == "zarr":
        from .store import read_store

        return read_store(path)
    header, chunks = open_rows(path)
    chunks.close()
    values = read_all_fast(header)
    if values is None:  # the streaming reader validates line by line and says what is wrong
        parts = [(c.pixels, c.coords) for c in _chunks(path)]
        values = np.concatenate([np.concatenate(p, axis=1) for p in parts]) if parts else \
            np.empty((0, header.width))
    else:
        check_values(header, 4, values)
    r2 = header.grid.resolution ** 2
    pixels, coords = values[:, :r2], values[:, r2:]
    if order == "AUTO":
        order = detect_order(header.kernel_pixels, pixels, coords, header.grid.x, path)
    return _dataset(header, pixels, coords, order, _read_sidecar(path))


def _chunks(path):
    _, chunks = open_rows(path, chunk_rows=1 << 30, block_bytes=256 << 20)
    yield from chunks


# ----------------------------------------------------------------------------- writing


def write(path, ds: Dataset, layout: str = "padded") -> None:
    """Write ``ds`` atomically; the format follows the suffix (``.csv``, ``.csv.gz``, ``.npz``).

    Row format: comma-separated, padded with zeros to a rectangle (``layout="padded"``,
    default) or with short lines 1-2 (``"ragged"``), shortest round-trip float text (a
    write-read round trip is bit-exact), pixels in the published column-major order.
    The metadata ``ds.meta`` goes to a sidecar ``<name>.json``.
    """
    path = os.fspath(path)
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


def write_stream(path, grid, kernel, max_scatterers, chunks, meta=None, layout="padded") -> int:
    """Write the row format from an iterable of ``(images, positions)`` chunks; atomic."""
    with atomic_output(path) as f:
        n = write_rows(f, grid, kernel, max_scatterers, chunks, layout=layout)
    meta = {k: v for k, v in (meta or {}).items() if k not in ("first_image", "order", "layout")}
    side = sidecar_path(path)
    if meta:
        record = {"format": "qpiset-rows/1", "data_bytes": os.path.getsize(path),
                  "n_images": n, "meta": meta}
        with atomic_output(side, compress=False) as f:
            f.write((json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    elif side.exists():
        side.unlink()  # a sidecar from an earlier file of that name would be stale
    return n


def write_store(path, grid, kernel, max_scatterers, n, chunks, meta=None, block=256) -> int:
    """Write a new ``.zarr`` store from ``(images, positions[, strengths])`` chunks of any
    size, re-blocked into the store's blocks (bounded memory); returns the image count."""
    from .store import create_store, write_block

    meta = {k: v for k, v in (meta or {}).items() if k not in ("first_image", "order", "layout")}
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


# ----------------------------------------------------------------------------- checks


@dataclass
class Summary:
    """What ``qpiset info`` reports about a file."""

    path: str
    format: str
    resolution: int
    fov: float
    pitch: float
    max_scatterers: int
    n_images: int
    counts: dict
    intensity: dict
    layout: str | None
    meta: dict

    def line(self) -> str:
        c = self.counts
        return (f"{self.path}: ok: {self.n_images} images, {self.resolution}x{self.resolution} px, "
                f"fov {self.fov:g} Å, max_scatterers {self.max_scatterers}, "
                f"scatterers per image {c['min']}-{c['max']} (mean {c['mean']:.1f})")

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def summarize(path, order: str = "F") -> Summary:
    """Validate a whole file (streaming) and gather its statistics.

    Raises :class:`FormatError` at the first problem.
    """
    path = os.fspath(path)
    if file_format(path) == "zarr":
        from .store import check_store

        check_store(path)
    counts: list[np.ndarray] = []
    n = 0
    total = total2 = 0.0
    lo, hi = np.inf, -np.inf
    first = None
    for part in stream(path, order=order):
        first = first or part
        counts.append(part.counts)
        if part.n_images:
            n += part.n_images
            total += float(part.images.sum())
            total2 += float(np.square(part.images).sum())
            lo, hi = min(lo, float(part.images.min())), max(hi, float(part.images.max()))
    c = np.concatenate(counts)
    npx = max(n, 1) * first.grid.resolution ** 2
    mean = total / npx
    stats_counts = {
        "min": int(c.min()) if c.size else 0, "max": int(c.max()) if c.size else 0,
        "mean": float(c.mean()) if c.size else 0.0, "median": float(np.median(c)) if c.size else 0.0,
        "total": int(c.sum()),
    }
    intensity = {"min": lo if n else 0.0, "max": hi if n else 0.0, "mean": mean,
                 "std": float(np.sqrt(max(total2 / npx - mean * mean, 0.0)))}
    meta = {k: v for k, v in first.meta.items() if k not in ("first_image", "layout", "order")}
    fmt = file_format(path)
    return Summary(path, fmt if fmt in ("npz", "zarr") else "rows", first.grid.resolution,
                   first.grid.fov, first.grid.pitch, first.max_scatterers, n, stats_counts,
                   intensity, first.meta.get("layout"), meta)


def validate(path, order: str = "F") -> Summary:
    """Check every line of a file; return its :class:`Summary` or raise :class:`FormatError`."""
    return summarize(path, order=order)


def convert(src, dst, layout: str = "padded", order: str = "F") -> int:
    """Convert between the row format, ``.npz`` and ``.zarr``; returns the number of images.

    Row-format and store output are streamed (bounded memory); ``.npz`` output is built in
    memory.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    if os.path.abspath(src) == os.path.abspath(dst):
        raise FormatError(dst, None, None, "output is the input file")
    if file_format(dst) == "npz":
        ds = read(src, order=order)
        write(dst, ds)
        return ds.n_images
    parts = stream(src, order=order)
    first = next(parts)
    meta = {k: v for k, v in first.meta.items() if k not in ("first_image", "order", "layout")}

    def chunks():
        yield first.images, first.positions, first.strengths
        for part in parts:
            yield part.images, part.positions, part.strengths

    if file_format(dst) == "zarr":
        n = summarize(src, order=order).n_images if file_format(src) != "zarr" else \
            read(src).n_images
        return write_store(dst, first.grid, first.kernel, first.max_scatterers, n, chunks(),
                           meta)
    return write_stream(dst, first.grid, first.kernel, first.max_scatterers,
                        (c[:2] for c in chunks()), meta,
                        layout=layout)
