"""Torch datasets: files (row format, chunked store) and an endless simulated stream.

Every item is a dict of tensors: ``image (R, R)``, ``kernel (R, R)`` (the file's kernel
row as an image), ``positions (max_scatterers, 2)`` in Å padded with NaN, ``count``.
:func:`collate` stacks them; :func:`qpiset.inverse.learned.targets.encode` turns positions
into targets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ...core.dataset import pad_rows
from ...core.grid import Grid
from ...core.recipe import Recipe
from ...forward import Forward, simulate_blocks
from ...forward.noise import White
from ...io import RowIndex, file_format

__all__ = ["RowFileImages", "StoreImages", "SimulatedStream", "open_images", "collate",
           "positions_of"]


def _item(image, kernel, positions, max_scatterers: int) -> dict[str, torch.Tensor]:
    positions = np.asarray(positions, np.float32).reshape(-1, 2)
    pos = pad_rows([positions], max_scatterers, np.nan, dtype=np.float32)[0]
    return {"image": torch.from_numpy(np.ascontiguousarray(image, np.float32)),
            "kernel": torch.from_numpy(np.ascontiguousarray(kernel, np.float32)),
            "positions": torch.from_numpy(pos), "count": torch.tensor(len(positions))}


def collate(items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack items into a batch (a DataLoader ``collate_fn``)."""
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def positions_of(batch: dict[str, torch.Tensor]) -> list[np.ndarray]:
    """The batch's true positions as a list of ``(k_i, 2)`` arrays."""
    pos, counts = batch["positions"].cpu().numpy(), batch["count"].cpu().numpy()
    return [pos[i, : counts[i]].astype(np.float64) for i in range(len(counts))]


class RowFileImages(TorchDataset):
    """A row-format file as a map-style dataset, read lazily through
    :class:`qpiset.io.RowIndex` (one line parsed and checked per item, so a bad line raises
    :class:`~qpiset.core.FormatError` naming file, line and column; file handles are opened
    per process, so DataLoader workers can share the object).

    Examples
    --------
    >>> import tempfile, os, qpiset
    >>> from qpiset.physics import FriedelKernel
    >>> path = os.path.join(tempfile.mkdtemp(), "d.csv")
    >>> qpiset.write(path, qpiset.simulate(FriedelKernel(), Grid(16, 30.0), n=4, max_scatterers=3))
    >>> data = RowFileImages(path)
    >>> len(data), tuple(data[2]["image"].shape)
    (4, (16, 16))
    """

    def __init__(self, path, order: str = "F") -> None:
        self.path = os.fspath(path)
        self.rows = RowIndex(self.path, order=order)
        self.grid: Grid = self.rows.grid
        self.max_scatterers = self.rows.max_scatterers
        self.kernel = self.rows.kernel

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image, positions = self.rows.item(i)
        return _item(image, self.kernel, positions, self.max_scatterers)


class StoreImages(TorchDataset):
    """A chunked store (``.zarr``) as a map-style dataset; chunks are read on demand and
    each process opens the store itself."""

    def __init__(self, path) -> None:
        from ...io.store import read_store

        self.path = os.fspath(path)
        ds = read_store(self.path)
        self.grid, self.kernel = ds.grid, ds.kernel
        self.max_scatterers, self._n = ds.max_scatterers, ds.n_images
        self._ds: tuple[int, Any] | None = (os.getpid(), ds)

    def _store(self):
        from ...io.store import read_store

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
    if file_format(path) == "zarr":
        return StoreImages(path)
    return RowFileImages(path, order=order)


@dataclass
class SimulatedStream(IterableDataset):
    """An endless stream of simulated batches (dicts as from :func:`collate`).

    Batch ``b`` draws its kernel (from ``kernels``), noise level and strengths from
    ``SeedSequence(seed, spawn_key=(b,))`` and its images from
    :func:`qpiset.forward.simulate_blocks` — the generator of ``qpiset generate`` — so the
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
        As in :class:`qpiset.core.Recipe`; with ``varied_strength`` > 0 that fraction
        of batches draws strengths from ``(0.5, 1.5)`` instead.
    start : int
        First batch number (to resume a training run where it stopped).
    weights : sequence of float, optional
        Relative frequency of each kernel (default: equal).
    device : str, optional
        Render on this torch device (``"cpu"``, ``"cuda"``, ``"auto"``, ...); default none:
        the numba renderer, batches on the CPU.
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
    device: Any = None
    _ops: dict = field(default_factory=dict, repr=False)
    _rows: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        IterableDataset.__init__(self)
        if not len(self.kernels):
            raise ValueError("SimulatedStream needs at least one kernel")
        w = np.ones(len(self.kernels)) if self.weights is None else np.asarray(self.weights, float)
        if w.shape != (len(self.kernels),) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("weights: one non-negative number per kernel, not all zero")
        self._cdf = np.cumsum(w) / w.sum()
        if self.device is not None:
            from ...forward.device import resolve_device

            self.device = resolve_device(self.device)

    def _op(self, j: int) -> Forward:
        if j not in self._ops:
            self._ops[j] = Forward(self.kernels[j], self.grid)
        return self._ops[j]

    def kernel_row(self, j: int) -> np.ndarray:
        """The kernel row of kernel ``j`` on the stream's grid."""
        return self._op(j).kernel_row

    def batch(self, b: int) -> dict[str, torch.Tensor]:
        """Batch number ``b`` (a pure function of ``seed`` and ``b``)."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(int(b),)))
        j = min(int(np.searchsorted(self._cdf, rng.random(), side="right")),
                len(self.kernels) - 1)
        level = float(rng.uniform(*self.noise))
        strength = (0.5, 1.5) if rng.random() < self.varied_strength else self.strength
        recipe = Recipe(n=self.batch_size, seed=int(rng.integers(2**63)),
                        min_scatterers=self.min_scatterers, max_scatterers=self.max_scatterers,
                        strength=strength, noise=White(level) if level > 0 else None)
        if self.device is not None:
            return self._device_batch(j, recipe)
        _, images, positions, _ = next(simulate_blocks(self.kernels[j], self.grid, recipe,
                                                       threads=1, op=self._op(j)))
        row = self.kernel_row(j)
        return collate([_item(img, row, p, self.max_scatterers)
                        for img, p in zip(images, positions)])

    def _device_batch(self, j: int, recipe: Recipe) -> dict[str, torch.Tensor]:
        """The batch of :meth:`batch` rendered and noised on the stream's device."""
        _, images, positions, _ = next(simulate_blocks(self.kernels[j], self.grid, recipe,
                                                       op=self._op(j), device=self.device))
        if j not in self._rows:
            self._rows[j] = torch.as_tensor(np.asarray(self.kernel_row(j), np.float32),
                                            device=self.device)
        pos = pad_rows([np.asarray(p, np.float32) for p in positions], self.max_scatterers,
                       np.nan, dtype=np.float32)
        return {"image": images.to(torch.float32),
                "kernel": self._rows[j].expand(len(positions), -1, -1),
                "positions": torch.from_numpy(pos).to(self.device, non_blocking=True),
                "count": torch.tensor([len(p) for p in positions]).to(self.device)}

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
