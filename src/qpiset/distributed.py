"""Generation on a dask cluster: blocks of images made on workers, deterministic, resumable.

Image block ``b`` (``synth.BLOCK`` images) is simulated from its own
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

from .grid import Grid
from .synth import BLOCK, generation_meta, kernel_image, simulate_blocks

__all__ = ["generate_store", "cluster_blocks", "make_block"]


@functools.lru_cache(maxsize=4)
def _kernel(params_json: str):
    """The kernel of these parameters, built once per worker process: its tables (radial,
    2D, lattice Green's function) are then reused by every block the worker makes."""
    from .physics import make_kernel

    return make_kernel(**json.loads(params_json))


def make_block(kernel_params: dict, grid: tuple, n: int, b: int, options: dict, kernel=None):
    """One block: ``(b, images, positions, strengths)``. On a worker everything comes in as
    plain data (the kernel and noise as their recorded parameters); in-process callers may
    pass the ``kernel`` object itself."""
    from .noise import noise_from_params

    if kernel is None:
        kernel = _kernel(json.dumps(kernel_params, sort_keys=True))
    opts = dict(options)
    opts["noise"] = noise_from_params(opts.get("noise"))
    for _, images, positions, strengths in simulate_blocks(
            kernel, Grid(*grid), n, blocks=[b], threads=1, **opts):
        return b, images, positions, strengths
    raise ValueError(f"block {b} is empty")  # pragma: no cover - n > 0 has every block


def _write_block_task(path: str, kernel_params: dict, grid: tuple, n: int, b: int,
                      options: dict, kernel=None) -> int:
    from .io.store import open_store, write_block

    _, images, positions, strengths = make_block(kernel_params, grid, n, b, options, kernel)
    write_block(open_store(path), b, images, positions, strengths)
    return len(images)


def _client(workers: int | None, scheduler: str | None):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(n_workers=int(workers or 1), threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster), cluster


def _options(seed, min_scatterers, max_scatterers, strength, noise, scattering) -> dict:
    return {"seed": int(seed), "min_scatterers": int(min_scatterers),
            "max_scatterers": int(max_scatterers),
            "strength": list(strength) if isinstance(strength, tuple) else float(strength),
            "noise": None if noise is None else noise.params(), "scattering": scattering}


def _as_strength(value):
    return tuple(value) if isinstance(value, list) else value


def generate_store(path, kernel, grid: Grid, n: int, *, seed: int = 0, min_scatterers: int = 1,
                   max_scatterers: int = 100, strength=1.0, noise=None, scattering: str = "born",
                   workers: int | None = None, scheduler: str | None = None,
                   on_block: Callable[[int], object] | None = None) -> int:
    """Simulate ``n`` images into the ``.zarr`` store ``path`` (created, or resumed when it
    holds the same run); returns the number of images made in this call."""
    from .io.store import create_store, pending_blocks

    meta = generation_meta(kernel, n, seed, min_scatterers, max_scatterers, strength, noise,
                           scattering)
    group = create_store(path, grid, kernel_image(kernel, grid), n, max_scatterers, meta,
                         block=BLOCK)
    todo = pending_blocks(group, verify=True)
    if on_block and n:
        on_block(n - sum(min(BLOCK, n - b * BLOCK) for b in todo))  # already there
    opts = _options(seed, min_scatterers, max_scatterers, strength, noise, scattering)
    opts["strength"] = _as_strength(opts["strength"])
    args = (kernel.params(), (grid.resolution, grid.fov), n)
    made = 0
    if not todo:
        return 0
    if not workers or (workers == 1 and not scheduler):
        for b in todo:
            k = _write_block_task(str(path), *args, b, opts, kernel)
            made += k
            if on_block:
                on_block(k)
        return made
    from dask.distributed import as_completed

    client, cluster = _client(workers, scheduler)
    try:
        futures = [client.submit(_write_block_task, str(path), *args, b, opts, pure=False)
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


def cluster_blocks(kernel, grid: Grid, n: int, *, seed: int = 0, min_scatterers: int = 1,
                   max_scatterers: int = 100, strength=1.0, noise=None, scattering="born",
                   workers: int | None = None, scheduler: str | None = None,
                   window: int = 8) -> Iterator[tuple[np.ndarray, list]]:
    """``(images, positions)`` blocks made on a cluster, yielded **in order** (at most
    ``window`` blocks in flight), for one writer of the row format."""
    opts = _options(seed, min_scatterers, max_scatterers, strength, noise, scattering)
    opts["strength"] = _as_strength(opts["strength"])
    args = (kernel.params(), (grid.resolution, grid.fov), n)
    nblocks = -(-n // BLOCK)
    client, cluster = _client(workers, scheduler)
    try:
        in_flight: deque = deque()
        submitted = 0
        for _ in range(nblocks):
            while submitted < nblocks and len(in_flight) < window:
                in_flight.append(client.submit(make_block, *args, submitted, opts, pure=False))
                submitted += 1
            _, images, positions, _ = in_flight.popleft().result()
            yield images, positions
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
