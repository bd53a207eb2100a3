"""Torch datasets: files (row format, chunked store) and an endless simulated stream.

Every item is a dict of tensors: ``image (R, R)``, ``kernel (R, R)`` (the file's kernel
row as an image), ``positions (max_scatterers, 2)`` in Å padded with NaN, ``count``.
:func:`collate` stacks them; :func:`qpiset.ml.targets.encode` turns positions into targets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..grid import Grid
from ..io.errors import FormatError
from ..io.rowformat import (Header, _fields, _parse_row_exact, _read_header, _Source,
                            check_values, images_from_rows)
from ..dataset import SENTINEL
from ..noise import White
from ..synth import kernel_image, simulate_blocks

__all__ = ["RowFileImages", "StoreImages", "SimulatedStream", "open_images", "collate"]


def _item(image, kernel, positions, max_scatterers: int) -> dict[str, torch.Tensor]:
    pos = np.full((max_scatterers, 2), np.nan, np.float32)
    positions = np.asarray(positions, np.float32).reshape(-1, 2)
    pos[: len(positions)] = positions
    return {"image": torch.from_numpy(np.ascontiguousarray(image, np.float32)),
            "kernel": torch.from_numpy(np.ascontiguousarray(kernel, np.float32)),
            "positions": torch.from_numpy(pos), "count": torch.tensor(len(positions))}


def collate(items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack items into a batch (a DataLoader ``collate_fn``)."""
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def positions_of(batch: dict[str, torch.Tensor]) -> list[np.ndarray]:
    """The batch's true positions as a list of ``(k_i, 2)`` arrays."""
    pos, counts = batch["positions"].numpy(), batch["count"].numpy()
    return [pos[i, : counts[i]].astype(np.float64) for i in range(len(counts))]


def _parse_line(line: bytes, delimiter, width: int) -> np.ndarray | None:
    """One line by numpy (fork-safe, unlike a thread-pooled parser in a DataLoader worker);
    ``None`` when anything is off."""
    fields = _fields(line, delimiter)
    if len(fields) != width:
        return None
    try:
        return np.asarray(fields, dtype=np.float64)[None]
    except ValueError:
        return None


class RowFileImages(TorchDataset):
    """A row-format file as a map-style dataset, read lazily.

    Opening scans the file once for line offsets (uncompressed files; a ``.gz`` file is
    read whole, as by :func:`qpiset.read`); an item parses and validates one line, so a bad
    line raises :class:`~qpiset.io.errors.FormatError` naming file, line and column. File
    handles are opened per process, so DataLoader workers can share the object.

    Examples
    --------
    >>> import tempfile, os, qpiset
    >>> from qpiset.physics import FriedelKernel
    >>> from qpiset.synth import simulate
    >>> path = os.path.join(tempfile.mkdtemp(), "d.csv")
    >>> qpiset.write(path, simulate(FriedelKernel(), Grid(16, 30.0), n=4, max_scatterers=3))
    >>> data = RowFileImages(path)
    >>> len(data), tuple(data[2]["image"].shape)
    (4, (16, 16))
    """

    def __init__(self, path, order: str = "F") -> None:
        self.path = os.fspath(path)
        self.order = order
        src = _Source(self.path)
        try:
            self.header: Header = _read_header(self.path, src)
        finally:
            src.close()
        self.grid: Grid = self.header.grid
        self.max_scatterers = self.header.max_scatterers
        R = self.grid.resolution
        self.kernel = images_from_rows(self.header.kernel_pixels[None], R, order)[0]
        if self.path.endswith(".gz"):
            from .. import io as qio

            ds = qio.read(self.path, order=order)
            self._memory = ds
            self.offsets = np.arange(ds.n_images + 1)
        else:
            self._memory = None
            self.offsets = self._scan()
        self._handle: tuple[int, Any] | None = None

    def _scan(self) -> np.ndarray:
        """Byte offsets of the image lines (line 4 on) and of the end."""
        starts = []
        with open(self.path, "rb") as f:
            pos = 0
            while True:
                block = f.read(1 << 24)
                if not block:
                    break
                nl = np.flatnonzero(np.frombuffer(block, np.uint8) == 10) + pos + 1
                starts.append(nl)
                pos += len(block)
        ends = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        if len(ends) < 3:
            return np.zeros(1, np.int64)
        offsets = ends[2:]  # line 4 starts after the third newline
        if offsets[-1] < pos:  # no newline after the last line
            offsets = np.append(offsets, pos + 1)
        # blank lines at the end are not images (as for qpiset.read)
        with open(self.path, "rb") as f:
            while len(offsets) > 1:
                f.seek(int(offsets[-2]))
                if f.read(int(offsets[-1] - offsets[-2])).strip():
                    break
                offsets = offsets[:-1]
        return offsets.astype(np.int64)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _file(self):
        pid = os.getpid()
        if self._handle is None or self._handle[0] != pid:
            self._handle = (pid, open(self.path, "rb"))
        return self._handle[1]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"image {i} of {n}")
        i %= n
        if self._memory is not None:
            ds = self._memory
            return _item(ds.images[i], self.kernel, ds.positions[i], self.max_scatterers)
        f = self._file()
        f.seek(int(self.offsets[i]))
        line = f.read(int(self.offsets[i + 1] - self.offsets[i])).rstrip(b"\r\n")
        lineno = i + 4
        h = self.header
        if not line.strip():
            raise FormatError(self.path, lineno, None, "empty line inside the data")
        values = _parse_line(line, h.delimiter, h.width)
        if values is None:  # the exact parser finds and names the bad field
            values = _parse_row_exact(self.path, lineno, line, h.delimiter, h.width)[None]
        check_values(h, lineno, values)
        R = self.grid.resolution
        image = images_from_rows(values[:, : R * R], R, self.order)[0]
        xy = values[0, R * R:].reshape(-1, 2)
        xy = xy[~np.all(xy == SENTINEL, axis=1)]
        return _item(image, self.kernel, xy, self.max_scatterers)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_handle"] = None  # each process opens its own
        return state


class StoreImages(TorchDataset):
    """A chunked store (``.zarr``) as a map-style dataset; chunks are read on demand and
    each process opens the store itself."""

    def __init__(self, path) -> None:
        from ..io.store import read_store

        self.path = os.fspath(path)
        ds = read_store(self.path)
        self.grid, self.kernel = ds.grid, ds.kernel
        self.max_scatterers, self._n = ds.max_scatterers, ds.n_images
        self._ds: tuple[int, Any] | None = (os.getpid(), ds)

    def _store(self):
        from ..io.store import read_store

        if self._ds is None or self._ds[0] != os.getpid():
            self._ds = (os.getpid(), read_store(self.path))
        return self._ds[1]

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -self._n <= i < self._n:
            raise IndexError(f"image {i} of {self._n}")
        i %= self._n
        ds = self._store()
        return _item(np.asarray(ds.images[i]), self.kernel, ds.positions[i], self.max_scatterers)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_ds"] = None
        return state


def open_images(path, order: str = "F") -> TorchDataset:
    """:class:`StoreImages` for a ``.zarr`` path, :class:`RowFileImages` otherwise."""
    if os.fspath(path).rstrip("/").endswith(".zarr"):
        return StoreImages(path)
    return RowFileImages(path, order=order)


@dataclass
class SimulatedStream(IterableDataset):
    """An endless stream of simulated batches (dicts as from :func:`collate`).

    Batch ``b`` draws its kernel (from ``kernels``), noise level and strengths from
    ``SeedSequence(seed, spawn_key=(b,))`` and its images from
    :func:`qpiset.synth.simulate_blocks` — the generator of ``qpiset generate`` — so the
    stream is a pure function of ``seed``. DataLoader workers take batches ``b = w, w + W,
    ...``; the loader hands them out in order, so the stream is the same for any number of
    workers (:meth:`loader` makes such a DataLoader).

    Parameters
    ----------
    kernels : sequence of Kernel
        Kernel models drawn uniformly per batch.
    grid : Grid
    batch_size : int
    seed : int
    noise : (lo, hi)
        White-noise level (fraction of the clean image's std) drawn uniformly per batch.
    min_scatterers, max_scatterers : int
    strength : float or (lo, hi)
        As in :func:`qpiset.synth.simulate`; with ``varied_strength`` > 0 that fraction
        of batches draws strengths from ``(0.5, 1.5)`` instead.
    start : int
        First batch number (to resume a training run where it stopped).
    weights : sequence of float, optional
        Relative frequency of each kernel (default: equal).
    """

    kernels: Sequence[Any]
    grid: Grid = field(default_factory=Grid)
    batch_size: int = 32
    seed: int = 0
    noise: tuple[float, float] = (0.0, 1.2)
    min_scatterers: int = 1
    max_scatterers: int = 100
    strength: float | tuple[float, float] = 1.0
    varied_strength: float = 0.0
    start: int = 0
    weights: Sequence[float] | None = None
    _rows: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        IterableDataset.__init__(self)
        if not len(self.kernels):
            raise ValueError("SimulatedStream needs at least one kernel")
        w = np.ones(len(self.kernels)) if self.weights is None else np.asarray(self.weights, float)
        if w.shape != (len(self.kernels),) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("weights: one non-negative number per kernel, not all zero")
        self._cdf = np.cumsum(w) / w.sum()

    def kernel_row(self, j: int) -> np.ndarray:
        if j not in self._rows:
            self._rows[j] = kernel_image(self.kernels[j], self.grid)
        return self._rows[j]

    def batch(self, b: int) -> dict[str, torch.Tensor]:
        """Batch number ``b`` (a pure function of ``seed`` and ``b``)."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(int(b),)))
        j = min(int(np.searchsorted(self._cdf, rng.random(), side="right")),
                len(self.kernels) - 1)
        level = float(rng.uniform(*self.noise))
        strength = (0.5, 1.5) if rng.random() < self.varied_strength else self.strength
        image_seed = int(rng.integers(2**63))
        _, images, positions, _ = next(simulate_blocks(
            self.kernels[j], self.grid, self.batch_size, seed=image_seed,
            min_scatterers=self.min_scatterers, max_scatterers=self.max_scatterers,
            strength=strength, noise=White(level) if level > 0 else None, threads=1))
        row = self.kernel_row(j)
        return collate([_item(img, row, p, self.max_scatterers)
                        for img, p in zip(images, positions)])

    def loader(self, num_workers: int = 0, **options) -> DataLoader:
        """A DataLoader over the stream. Workers are *spawned*: the renderer's compiled
        loops use OpenMP, which a forked process must not touch."""
        if num_workers:
            options.setdefault("multiprocessing_context", "spawn")
        return DataLoader(self, batch_size=None, num_workers=num_workers, **options)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        w, W = (0, 1) if info is None else (info.id, info.num_workers)
        b = self.start + w
        while True:
            yield self.batch(b)
            b += W
