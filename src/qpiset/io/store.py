"""The chunked store: a zarr (v3) group, one chunk of images per seeding block.

Layout (``qpiset-zarr/1``), every array with its dimension names so that
``xarray.open_zarr(path)`` gives labelled variables:

==============  ===========================  ==============================================
array           shape, dims                  contents
==============  ===========================  ==============================================
``images``      (N, R, R) image, y, x        float64, ``[n, iy, ix]``, chunks of ``block``
``positions``   (N, M, 2) image, slot, xy    Å, unused slots ``1000`` (the sentinel)
``counts``      (N,) image                   scatterers per image
``strengths``   (N, M) image, slot           NaN in unused slots
``kernel``      (R, R) y, x                  one scatterer at (0, 0)
``x``, ``y``    (R,)                         pixel centres, Å
``block_done``  (B,) block                   1 once block ``b`` is completely written
``block_hash``  (B,) block                   BLAKE2b-64 of the block's images and positions
==============  ===========================  ==============================================

Group attributes: ``format``, ``resolution``, ``fov``, ``max_scatterers``, ``n_images``,
``block`` and ``meta`` (how the data were made). A block is marked done only after its
chunks are written, and a done block's hash is checked when a run resumes or the store is
validated: a block interrupted half-way is never taken as written.
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterator

import numpy as np

from ..core.dataset import SENTINEL, Dataset, pad_rows
from ..core.errors import FormatError
from ..core.grid import Grid

__all__ = ["STORE_FORMAT", "StoreDataset", "create_store", "open_store", "write_block",
           "block_hash", "pending_blocks", "read_store", "stream_store", "check_store"]

STORE_FORMAT = "qpiset-zarr/1"


def _zarr():
    try:
        import zarr
    except ImportError:  # pragma: no cover - depends on the installation
        raise FormatError("zarr", None, None, "the chunked store needs zarr: "
                                              "pip install 'qpiset[store]'") from None
    return zarr


def block_hash(images: np.ndarray, positions: np.ndarray) -> int:
    """BLAKE2b-64 of a block's float64 images and padded positions (as stored)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(np.ascontiguousarray(images, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(positions, dtype=np.float64).tobytes())
    return int.from_bytes(h.digest(), "little")


def create_store(path, grid: Grid, kernel: np.ndarray, n: int, max_scatterers: int,
                 meta: dict | None = None, block: int = 256, resume: bool = True):
    """Create the store (or reopen it to resume: same parameters required); returns the
    zarr group."""
    zarr = _zarr()
    path = os.fspath(path)
    r = grid.resolution
    attrs = {"format": STORE_FORMAT, "resolution": r, "fov": grid.fov,
             "max_scatterers": int(max_scatterers), "n_images": int(n), "block": int(block),
             "meta": meta or {}}
    if resume and os.path.exists(path):
        group = open_store(path)
        if not _same_run(dict(group.attrs), _jsonable(attrs)):
            raise FormatError(path, None, None, "exists with other parameters; delete it or "
                                                "write elsewhere (it would be resumed otherwise)")
        return group
    group = zarr.open_group(path, mode="w", zarr_format=3)
    nblocks = max(1, -(-n // block))

    def array(name, shape, chunks, dtype, fill, dims):
        return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype,
                                  fill_value=fill, dimension_names=dims)

    array("images", (n, r, r), (block, r, r), "float64", 0.0, ("image", "y", "x"))
    array("positions", (n, max_scatterers, 2), (block, max_scatterers, 2), "float64",
          SENTINEL, ("image", "slot", "xy"))
    array("counts", (n,), (block,), "int32", 0, ("image",))
    array("strengths", (n, max_scatterers), (block, max_scatterers), "float64", np.nan,
          ("image", "slot"))
    array("kernel", (r, r), (r, r), "float64", 0.0, ("y", "x"))[...] = kernel
    array("x", (r,), (r,), "float64", 0.0, ("x",))[...] = grid.x
    array("y", (r,), (r,), "float64", 0.0, ("y",))[...] = grid.x
    array("block_done", (nblocks,), (1,), "uint8", 0, ("block",))
    array("block_hash", (nblocks,), (1,), "uint64", 0, ("block",))
    group.attrs.update(attrs)
    # consolidated metadata (zarr-python's extension to v3; xarray reads it in one go): the
    # arrays' metadata never change after this point
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata")
        zarr.consolidate_metadata(path)
    return zarr.open_group(path, mode="r+")


def _same_run(old: dict, new: dict) -> bool:
    """Whether a store's attributes describe the run ``new`` describes: equal, or equal but
    for kernel parameters recorded under their former names (a store begun by an older
    version resumes)."""
    if old == new:
        return True
    old_kernel = (old.get("meta") or {}).get("kernel")
    new_kernel = (new.get("meta") or {}).get("kernel")
    if not (isinstance(old_kernel, dict) and isinstance(new_kernel, dict)):
        return False
    strip = [{**a, "meta": {k: v for k, v in a["meta"].items() if k != "kernel"}}
             for a in (old, new)]
    if strip[0] != strip[1]:
        return False
    from ..physics import kernel_from_record

    try:
        return kernel_from_record(old_kernel).params() == new_kernel
    except (TypeError, ValueError):
        return False


def _jsonable(value):
    import json

    return json.loads(json.dumps(value))


def open_store(path, mode: str = "r+"):
    """Open a qpiset store; a FormatError names the path if it is not one."""
    zarr = _zarr()
    path = os.fspath(path)
    try:
        group = zarr.open_group(path, mode=mode)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise FormatError(path, None, None, f"not a zarr store ({exc})") from None
    if group.attrs.get("format") != STORE_FORMAT:
        raise FormatError(path, None, None, f"not a qpiset store (format "
                                            f"{group.attrs.get('format')!r})")
    return group


def write_block(group, b: int, images: np.ndarray, positions, strengths=None) -> None:
    """Write block ``b`` (its images ``(k, R, R)`` and position arrays), then mark it done."""
    block = int(group.attrs["block"])
    m = int(group.attrs["max_scatterers"])
    start = b * block
    stop = start + len(images)
    rows = [np.asarray(p, float).reshape(-1, 2) for p in positions]
    padded = pad_rows(rows, m)
    counts = np.array([len(p) for p in rows], np.int32)
    if strengths is None:
        amp = np.full((len(images), m), np.nan)
    else:
        amp = pad_rows([np.broadcast_to(np.asarray(s, float), (len(p),))
                        for s, p in zip(strengths, rows)], m, np.nan, tail=())
    group["images"][start:stop] = images
    group["positions"][start:stop] = padded
    group["counts"][start:stop] = counts
    group["strengths"][start:stop] = amp
    group["block_hash"][b] = block_hash(images, padded)
    group["block_done"][b] = 1  # last: a block is done only once everything is on disk


def _read(group, name: str, sel=slice(None)) -> np.ndarray:
    """``group[name][sel]``; a chunk that cannot be decoded is a FormatError naming it."""
    try:
        return np.asarray(group[name][sel])
    except Exception as exc:  # codecs raise RuntimeError, ValueError, ... on damaged chunks
        where = f"{group.store_path}/{name}"
        raise FormatError(where, None, None, f"unreadable chunk ({type(exc).__name__}: {exc})") \
            from None


def pending_blocks(group, verify: bool = True, on_block=None) -> list[int]:
    """Blocks still to write: not marked done, or (``verify``) whose data no longer match
    their hash. ``on_block(b)`` after each block is looked at."""
    done = np.asarray(group["block_done"][:])
    hashes = np.asarray(group["block_hash"][:])
    block = int(group.attrs["block"])
    todo = []
    for b in range(len(done)):
        if on_block is not None and b:
            on_block(b)
        if not done[b]:
            todo.append(b)
        elif verify:
            s = slice(b * block, (b + 1) * block)
            try:
                stored = block_hash(_read(group, "images", s), _read(group, "positions", s))
            except FormatError:
                stored = None  # damaged: make it again
            if stored != int(hashes[b]):
                todo.append(b)
    return todo


class _Rows:
    """A lazy sequence over a store array: item ``i`` is image ``i``'s used slots."""

    def __init__(self, array, counts: np.ndarray):
        self._array, self._counts = array, counts

    def __len__(self) -> int:
        return len(self._counts)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        return np.asarray(self._array[i])[: int(self._counts[i])]

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class StoreDataset:
    """A store read lazily: the same attributes as :class:`~qpiset.core.Dataset`, with
    ``images`` the zarr array (``images[i]`` reads one chunk) and ``positions`` /
    ``strengths`` lazy sequences. :meth:`load` gives an in-memory Dataset."""

    def __init__(self, path, group):
        self.path = os.fspath(path)
        self.group = group
        self.grid = Grid.from_x(np.asarray(group["x"][:]))
        self.kernel = np.asarray(group["kernel"][:])
        self.images = group["images"]
        self.max_scatterers = int(group.attrs["max_scatterers"])
        self.counts = np.asarray(group["counts"][:], dtype=np.int64)
        self.positions = _Rows(group["positions"], self.counts)
        self.strengths = _Rows(group["strengths"], self.counts)
        self.meta = dict(group.attrs.get("meta") or {})

    @property
    def n_images(self) -> int:
        return int(self.images.shape[0])

    def __len__(self) -> int:
        return self.n_images

    def load(self, n: int | None = None) -> Dataset:
        """The first ``n`` images (default all) in memory, as a
        :class:`~qpiset.core.Dataset`."""
        n = self.n_images if n is None else min(int(n), self.n_images)
        return Dataset(self.grid, self.kernel, np.asarray(self.images[:n]), self.positions[:n],
                       self.max_scatterers, strengths=self.strengths[:n], meta=self.meta)

    plot = Dataset.plot  # the same figures; they read one image at a time

    def to_xarray(self):
        """The store opened by ``xarray.open_zarr`` (lazy, dask-backed)."""
        import xarray as xr

        return xr.open_zarr(self.path)

    def __repr__(self) -> str:
        return (f"StoreDataset({self.path!r}, n_images={self.n_images}, "
                f"resolution={self.grid.resolution}, fov={self.grid.fov:g} Å)")


def read_store(path) -> StoreDataset:
    """Open a store lazily; refuses one with blocks not yet written."""
    group = open_store(path, mode="r")
    missing = np.flatnonzero(np.asarray(group["block_done"][:]) == 0)
    if missing.size:
        raise FormatError(path, None, None, f"incomplete: {missing.size} of "
                                            f"{group['block_done'].shape[0]} blocks not written "
                                            "(resume the run that made it)")
    return StoreDataset(path, group)


def stream_store(path, chunk_rows: int = 256) -> Iterator[Dataset]:
    """The store in :class:`Dataset` chunks (``meta["first_image"]``), bounded memory."""
    ds = read_store(path)
    for s in range(0, max(ds.n_images, 1), chunk_rows):
        stop = min(s + chunk_rows, ds.n_images)
        yield Dataset(ds.grid, ds.kernel, _read(ds.group, "images", slice(s, stop)).reshape(
            -1, ds.grid.resolution, ds.grid.resolution), ds.positions[s:stop],
            ds.max_scatterers, ds.strengths[s:stop], dict(ds.meta, first_image=s))


def check_store(path, on_progress=None) -> None:
    """Integrity of a store: attributes, shapes, every block written and matching its hash,
    sentinel pairs, counts equal to the used slots. Raises FormatError naming what is wrong.
    ``on_progress(done, total, "block")``: two passes over the blocks (hashes, then
    contents)."""
    group = open_store(path, mode="r")
    where = os.fspath(path)
    try:
        n, r = int(group.attrs["n_images"]), int(group.attrs["resolution"])
        m, block = int(group.attrs["max_scatterers"]), int(group.attrs["block"])
    except KeyError as exc:
        raise FormatError(where, None, None, f"attribute {exc} missing") from None
    shapes = {"images": (n, r, r), "positions": (n, m, 2), "counts": (n,),
              "kernel": (r, r), "x": (r,), "y": (r,)}
    for name, shape in shapes.items():
        if name not in group or tuple(group[name].shape) != shape:
            got = tuple(group[name].shape) if name in group else "missing"
            raise FormatError(f"{where}/{name}", None, None, f"shape {got}, expected {shape}")
    nblocks = max(1, -(-n // block))
    report = on_progress or (lambda done, total, unit: None)
    bad = pending_blocks(group, verify=True, on_block=lambda b: report(b, 2 * nblocks, "block"))
    report(nblocks, 2 * nblocks, "block")
    if bad:
        raise FormatError(where, None, None, f"blocks {bad[:5]}{'...' if len(bad) > 5 else ''} "
                                             "missing or not matching their hash")
    for s in range(0, n, block):
        pos = _read(group, "positions", slice(s, s + block))
        counts = _read(group, "counts", slice(s, s + block))
        used = pos[..., 0] != SENTINEL
        if np.any(used != (pos[..., 1] != SENTINEL)):
            raise FormatError(f"{where}/positions", None, None, "a coordinate pair with one "
                                                                "sentinel")
        if np.any(used.sum(axis=1) != counts):
            i = s + int(np.flatnonzero(used.sum(axis=1) != counts)[0])
            raise FormatError(f"{where}/counts", None, None, f"image {i}: count disagrees with "
                                                             "its positions")
        if not np.all(np.isfinite(_read(group, "images", slice(s, s + block)))):
            raise FormatError(f"{where}/images", None, None, "non-finite pixels")
        report(nblocks + s // block + 1, 2 * nblocks, "block")
