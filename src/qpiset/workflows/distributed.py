"""Generation on a dask cluster: blocks of images made on workers, deterministic, resumable.

Image block ``b`` (``qpiset.forward.BLOCK`` images) is simulated from its own
``SeedSequence(seed, spawn_key=(b,))`` whichever worker makes it, so the output is the same
bytes for any number of workers. Into a ``.zarr`` store each worker writes its blocks
directly (distinct chunks) and marks them done; a rerun of the same command resumes: done
blocks are verified by their hash and kept, the rest are made. Row-format output is written
in order by the client, one writer, streaming, as blocks arrive.

``workers`` starts a local cluster of that many single-threaded worker processes (dask's
``LocalCluster``); ``scheduler`` connects to an existing one (``tcp://host:port``) instead.
"""

from __future__ import annotations

import functools
import json
from collections import deque
from typing import Callable, Iterator

import numpy as np

from ..core.grid import Grid
from ..core.recipe import Recipe
from ..forward import BLOCK, Forward, simulate_blocks
from ..io.store import create_store, open_store, pending_blocks, write_block
from ..physics import make_kernel

__all__ = ["generate_store", "cluster_blocks", "make_block"]


@functools.lru_cache(maxsize=4)
def _kernel(params_json: str):
    """The kernel of these parameters, built once per worker process: its tables (radial,
    2D, lattice Green's function) are then reused by every block the worker makes."""
    return make_kernel(**json.loads(params_json))


def make_block(kernel_params: dict, grid: tuple, recipe: dict, b: int, kernel=None,
               on_images: Callable[[int], object] | None = None):
    """One block: ``(b, images, positions, strengths)``. On a worker everything comes in as
    plain data (the kernel as its recorded parameters, the recipe as
    :meth:`~qpiset.core.Recipe.to_dict`); in-process callers may pass the ``kernel``
    object itself, and ``on_images(k)`` to hear of each image done (progress)."""
    if kernel is None:
        kernel = _kernel(json.dumps(kernel_params, sort_keys=True))
    for _, images, positions, strengths in simulate_blocks(
            kernel, Grid(*grid), Recipe(**recipe), blocks=[b], threads=1,
            on_images=on_images):
        return b, images, positions, strengths
    raise ValueError(f"block {b} is empty")  # pragma: no cover - n > 0 has every block


def _write_block_task(path: str, kernel_params: dict, grid: tuple, recipe: dict, b: int,
                      kernel=None, on_images: Callable[[int], object] | None = None) -> int:
    _, images, positions, strengths = make_block(kernel_params, grid, recipe, b, kernel,
                                                 on_images)
    write_block(open_store(path), b, images, positions, strengths)
    return len(images)


def _client(workers: int | None, scheduler: str | None):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(n_workers=int(workers or 1), threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster), cluster


def generate_store(path, kernel, grid: Grid, recipe: Recipe, *, workers: int | None = None,
                   scheduler: str | None = None,
                   on_block: Callable[[int], object] | None = None) -> int:
    """Simulate ``recipe.n`` images into the ``.zarr`` store ``path`` (created, or resumed
    when it holds the same run); returns the number of images made in this call."""
    n = recipe.n
    group = create_store(path, grid, Forward(kernel, grid).kernel_row, n,
                         recipe.max_scatterers, recipe.meta(kernel.params()), block=BLOCK)
    todo = pending_blocks(group, verify=True)
    if on_block and n:
        on_block(n - sum(min(BLOCK, n - b * BLOCK) for b in todo))  # already there
    args = (kernel.params(), (grid.resolution, grid.fov), recipe.to_dict())
    made = 0
    if not todo:
        return 0
    if not scheduler and (workers or 1) <= 1:  # in this process
        per_image = recipe.scattering == "full"  # seconds an image: report each one
        for b in todo:
            k = _write_block_task(str(path), *args, b, kernel,
                                  on_block if per_image else None)
            made += k
            if on_block and not per_image:  # a block written and marked done
                on_block(k)
        return made
    from dask.distributed import as_completed

    client, cluster = _client(workers, scheduler)
    try:
        futures = [client.submit(_write_block_task, str(path), *args, b, pure=False)
                   for b in todo]
        for fut in as_completed(futures):
            k = fut.result()
            made += k
            if on_block:
                on_block(k)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return made


def cluster_blocks(kernel, grid: Grid, recipe: Recipe, *, workers: int | None = None,
                   scheduler: str | None = None,
                   window: int = 8) -> Iterator[tuple[np.ndarray, list]]:
    """``(images, positions)`` blocks made on a cluster, yielded **in order** (at most
    ``window`` blocks in flight), for one writer of the row format."""
    args = (kernel.params(), (grid.resolution, grid.fov), recipe.to_dict())
    nblocks = -(-recipe.n // BLOCK)
    client, cluster = _client(workers, scheduler)
    try:
        in_flight: deque = deque()
        submitted = 0
        for _ in range(nblocks):
            while submitted < nblocks and len(in_flight) < window:
                in_flight.append(client.submit(make_block, *args, submitted, pure=False))
                submitted += 1
            _, images, positions, _ = in_flight.popleft().result()
            yield images, positions
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
