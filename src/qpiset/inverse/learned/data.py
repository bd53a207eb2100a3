"""Torch datasets: files (row format, chunked store) and an endless simulated stream.

Every item is a dict of tensors: ``image (R, R)``, ``kernel (R, R)`` (the file's kernel
row as an image), ``positions (max_scatterers, 2)`` in Å padded with NaN, ``count``.
:func:`collate` stacks them; :func:`qpiset.inverse.learned.targets.encode` turns positions
into targets.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from dataclasses import dataclass, field, replace
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
        the numba renderer, batches on the CPU. The scatterers (counts, positions,
        strengths) and the noise seeds are drawn on the CPU exactly as without a device
        (the block seed sequences of :func:`qpiset.forward.simulate_blocks`), padded to
        ``max_scatterers`` (one shape for every batch: one table, one compilation) and
        copied to the device in one go (pinned memory, without waiting for the device).
    device_noise : bool, optional
        Draw the white noise's variates on the device (``torch.randn`` from a generator
        seeded by each block's noise seed) instead of numpy's on the CPU and copying them
        there (4 MB a batch of 256). The same distribution, the same noise level, and
        reproducible for a seed on one kind of device, but another *realisation* than the
        CPU's (and CUDA's differs from the CPU's). Default: on for a GPU, off on the CPU
        (whose batches then equal the numba stream's to float32 rounding).
    prefetch : int
        Batches drawn ahead when rendering on a device (0: none), so that the CPU's draws
        overlap the device's work (a training step); the stream stays the same. Not used
        in DataLoader workers.
    draw_workers : int, optional
        Where the draws ahead are made: 0 a thread of this process, ``n > 0`` spawned
        worker processes taking batches in turn (a DataLoader with pinned memory: no
        contention for this process's GIL, which a thread drawing 256 images' scatterers
        in small numpy calls causes, slowing the training loop that launches the device's
        work). Default: 2 on CUDA, else 0. The batches do not depend on it.
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
    device_noise: bool | None = None
    prefetch: int = 2
    draw_workers: int | None = None
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
            if self.device_noise is None:
                self.device_noise = self.device.type != "cpu"
            if self.draw_workers is None:
                self.draw_workers = 2 * int(self.device.type == "cuda")
        self._generator = None

    def _op(self, j: int) -> Forward:
        if j not in self._ops:
            self._ops[j] = Forward(self.kernels[j], self.grid)
        return self._ops[j]

    def kernel_row(self, j: int) -> np.ndarray:
        """The kernel row of kernel ``j`` on the stream's grid."""
        return self._op(j).kernel_row

    def _recipe(self, b: int) -> tuple[int, Recipe]:
        """Kernel number and recipe of batch ``b``."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(int(b),)))
        j = min(int(np.searchsorted(self._cdf, rng.random(), side="right")),
                len(self.kernels) - 1)
        level = float(rng.uniform(*self.noise))
        strength = (0.5, 1.5) if rng.random() < self.varied_strength else self.strength
        recipe = Recipe(n=self.batch_size, seed=int(rng.integers(2**63)),
                        min_scatterers=self.min_scatterers, max_scatterers=self.max_scatterers,
                        strength=strength, noise=White(level) if level > 0 else None)
        return j, recipe

    def batch(self, b: int) -> dict[str, torch.Tensor]:
        """Batch number ``b`` (a pure function of ``seed`` and ``b``)."""
        j, recipe = self._recipe(b)
        if self.device is not None:
            return self._finish(self._draw(j, recipe, self.device.type == "cuda"))
        row = self.kernel_row(j)
        items = [_item(img, row, p, self.max_scatterers)  # every block (batches over 256)
                 for _, images, positions, _ in simulate_blocks(self.kernels[j], self.grid,
                                                                recipe, threads=1,
                                                                op=self._op(j))
                 for img, p in zip(images, positions)]
        return collate(items)

    def _draw(self, j: int, recipe: Recipe, pin: bool) -> dict[str, Any]:
        """The CPU's part of a device batch: the scatterers of every block of ``recipe``
        (:func:`~qpiset.forward.simulate_blocks`' draws), padded into tensors (pinned:
        ``pin``), and the blocks' noise seeds."""
        from ...forward.seeding import BLOCK, block_generators, draw_scatterers
        from ...forward.simulate import placement_half_width

        lattice = self.kernels[j].lattice
        n, m = recipe.n, self.max_scatterers
        half = placement_half_width(recipe, self.grid)
        positions: list[np.ndarray] = []
        strengths: list[np.ndarray] = []
        seeds = []
        for block in range(-(-n // BLOCK)):
            rng, noise_seed = block_generators(recipe.seed, block)
            p, a = draw_scatterers(rng, min(n, (block + 1) * BLOCK) - block * BLOCK, recipe,
                                   half, lattice)
            positions += p
            strengths += a
            seeds.append(noise_seed)
        counts = np.fromiter(map(len, positions), np.int64, n)
        pos = torch.zeros((n, m, 2), dtype=torch.float64, pin_memory=pin)
        amp = torch.zeros((n, m), dtype=torch.float64, pin_memory=pin)
        count = torch.from_numpy(counts).pin_memory() if pin else torch.from_numpy(counts)
        far = 0.0
        if n and counts.sum():
            mask = np.arange(m) < counts[:, None]
            flat = np.concatenate(positions)
            pos.numpy()[mask] = flat
            amp.numpy()[mask] = np.concatenate(strengths)
            far = float(np.abs(flat).max())
        return {"j": j, "pos": pos, "amp": amp, "count": count, "far": far,
                "noise": recipe.noise, "seeds": seeds}

    def _finish(self, host: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The device's part of a batch: copy, render, noise (nothing waits for the
        device)."""
        from ...forward.seeding import BLOCK
        from ...forward.torch_noise import apply_noise
        from ...forward.torch_simulate import renderer_of

        dev, j = self.device, host["j"]
        copy = {"non_blocking": dev.type == "cuda"}
        pos, amp = host["pos"].to(dev, **copy), host["amp"].to(dev, **copy)
        count = host["count"].to(dev, **copy)
        op = self._op(j)
        renderer = renderer_of(op, dev)
        images = renderer.render(pos, amp, host["far"])
        noise = host["noise"]
        if noise is not None:
            blocks = [images[s:s + BLOCK] for s in range(0, len(images), BLOCK)]
            if self.device_noise and type(noise) is White:
                noisy = [self._white(noise, x, seed) for x, seed in zip(blocks, host["seeds"])]
            else:  # numpy's variates, as the CPU
                noisy = [apply_noise(noise, x.to(renderer.dtype), np.random.default_rng(seed),
                                     self.grid, check=False)
                         for x, seed in zip(blocks, host["seeds"])]
            images = noisy[0] if len(noisy) == 1 else torch.cat(noisy)
        if j not in self._rows:
            self._rows[j] = torch.as_tensor(np.asarray(op.kernel_row, np.float32),
                                            device=dev)
        m = pos.shape[1]
        valid = torch.arange(m, device=dev) < count[:, None]
        positions = torch.where(valid[..., None], pos, float("nan")).to(torch.float32)
        return {"image": images.to(torch.float32),
                "kernel": self._rows[j].expand(len(images), -1, -1),
                "positions": positions, "count": count}

    def _white(self, model: White, images, seed: np.random.SeedSequence):
        """``model`` (white noise) on a block of images on the device, its variates drawn
        there by a generator seeded from the block's noise seed (``device_noise``)."""
        if self._generator is None:
            self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(int(seed.generate_state(1, np.uint64)[0]) >> 1)
        z = torch.randn(images.shape, generator=self._generator, device=self.device,
                        dtype=images.dtype)
        std = images.flatten(1).std(dim=1, correction=0)
        return images + (model.fraction * std)[:, None, None] * z

    def loader(self, num_workers: int = 0, **options) -> DataLoader:
        """A DataLoader over the stream. Workers are *spawned*: the renderer's compiled
        loops use OpenMP, which a forked process must not touch."""
        if num_workers:
            options.setdefault("multiprocessing_context", "spawn")
        return DataLoader(self, batch_size=None, num_workers=num_workers, **options)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        w, W = (0, 1) if info is None else (info.id, info.num_workers)
        numbers = itertools.count(self.start + w, W)
        if self.device is None or info is not None or self.prefetch <= 0:
            for b in numbers:
                yield self.batch(b)
            return
        if self.draw_workers:
            hosts = self._from_worker(self.start + w)
        else:
            hosts = self._prefetched(numbers)
        for host in hosts:
            yield self._finish(host)

    def _from_worker(self, start: int) -> Iterator[dict[str, Any]]:
        """The CPU's part of batches, drawn ahead by spawned worker processes (pinned by
        the DataLoader's thread)."""
        lean = replace(self, device=None, prefetch=0, draw_workers=0, _ops={}, _rows={})
        # a DataLoader takes its workers' items in turn: batches stay in order
        loader = DataLoader(_Draws(lean, start), batch_size=None,
                            num_workers=self.draw_workers, multiprocessing_context="spawn",
                            prefetch_factor=max(2, self.prefetch),
                            pin_memory=self.device.type == "cuda")
        yield from loader

    def _prefetched(self, numbers) -> Iterator[dict[str, Any]]:
        """The CPU's part of batches, drawn ``prefetch`` batches ahead by a thread
        (numpy's generators release the GIL little, but the consumer mostly waits for
        the device, so the two overlap)."""
        pin = self.device.type == "cuda"
        yield from _ahead((self._draw(*self._recipe(b), pin) for b in numbers),
                          self.prefetch, "qpiset-stream")


def _ahead(items: Iterator, depth: int, name: str) -> Iterator:
    """``items``, made up to ``depth`` ahead by a daemon thread (its exceptions raised
    here, in order); the thread stops when the consumer does."""
    ready: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ready.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            ready.put((None, exc))

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item, exc = ready.get()
            if exc is not None:
                raise exc
            yield item
    finally:
        stop.set()


class _Draws(IterableDataset):
    """The CPU's part of a device stream's batches ``start, start + 1, ...`` (made in a
    worker process by :meth:`SimulatedStream._from_worker`)."""

    def __init__(self, stream: SimulatedStream, start: int) -> None:
        super().__init__()
        self.stream, self.start = stream, start

    def __iter__(self):
        info = get_worker_info()  # W workers: worker w draws start + w, start + w + W, ...
        w, W = (0, 1) if info is None else (info.id, info.num_workers)
        for b in itertools.count(self.start + w, W):
            yield self.stream._draw(*self.stream._recipe(b), False)
