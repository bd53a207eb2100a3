"""Simulating straight into a file: the row format while the blocks are made (bounded
memory, atomic), ``.npz`` in memory, a ``.zarr`` store block by block (on a dask cluster
when asked, :mod:`.distributed`)."""

from __future__ import annotations

from typing import Callable

from ..core.grid import Grid
from ..core.recipe import Recipe
from ..forward import Forward, simulate, simulate_blocks
from ..forward.simulate import placement_half_width, with_default_placement
from ..io import file_format, write, write_stream

__all__ = ["generate_file"]


def generate_file(path, kernel, grid: Grid, recipe: Recipe, *, threads: int | None = None,
                  layout: str = "padded", on_block: Callable[[int], object] | None = None,
                  workers: int | None = None, scheduler: str | None = None,
                  device=None) -> None:
    """Simulate ``recipe.n`` images of ``kernel`` on ``grid`` and write them to ``path``
    (format by suffix).

    The row format is written while blocks are simulated (bounded memory, atomic). A
    ``.zarr`` store is made block by block, on a dask cluster when ``workers`` > 1 or a
    ``scheduler`` is given, and resumed if it holds the same, unfinished run
    (:mod:`qpiset.workflows.distributed`). With a ``scheduler`` the row format's blocks are
    made on the cluster too and written in order by this process. ``on_block(k)`` is
    called as ``k`` more images are done (a progress bar): as each block is written for
    Born scattering and on a cluster, as each image is rendered for ``scattering="full"``
    in this process (seconds an image).

    ``device`` (``"auto"``, ``"cuda"``, ``"mps"``; default none, the CPU) renders and noises
    the images on a torch device (:func:`qpiset.forward.simulate_blocks`) and writes them
    on the CPU, for the row format and ``.npz``. The scatterers are the same, the kernel
    row is the CPU's, but the images differ from the CPU's at float32 rounding, so the file
    is not byte-identical to one made without a device. A device that resolves to the CPU
    uses the CPU renderer (the same bytes).
    """
    recipe = with_default_placement(recipe, grid)
    placement_half_width(recipe, grid)  # refuse a window the file cannot hold, before work
    kind = file_format(path)
    device = _render_device(device)
    if device is not None and (kind == "zarr" or scheduler):
        raise ValueError("a device renders the row format and .npz in this process; a .zarr "
                         "store and a --scheduler cluster render on their workers' CPUs")
    if kind == "zarr":
        from .distributed import generate_store

        generate_store(path, kernel, grid, recipe, workers=workers, scheduler=scheduler,
                       on_block=on_block)
        return
    if kind == "npz":
        ds = simulate(kernel, grid, recipe, threads=threads, on_images=on_block, device=device)
        write(path, ds)
        return
    op = Forward(kernel, grid)
    row = op.kernel_row  # first: the kernel row is the one scatterer's own table

    def chunks():
        if scheduler:
            from .distributed import cluster_blocks

            for images, positions in cluster_blocks(kernel, grid, recipe, scheduler=scheduler):
                yield images, positions
                if on_block:
                    on_block(len(images))
            return
        per_image = recipe.scattering == "full"  # seconds an image: report each one
        for _, images, positions, _ in simulate_blocks(
                kernel, grid, recipe, threads=threads, op=op,
                on_images=on_block if per_image else None, device=device):
            yield (images if device is None else images.cpu().numpy()), positions
            if on_block and not per_image:  # a block written
                on_block(len(images))

    write_stream(path, grid, row, recipe.max_scatterers, chunks(), recipe.meta(kernel.params()),
                 layout=layout)


def _render_device(device):
    """The torch device to render on, or None for the CPU renderer (no device, or one
    that resolves to the CPU: the same bytes as without)."""
    if device is None:
        return None
    from ..forward.device import resolve_device

    resolved = resolve_device(device)
    return None if resolved.type == "cpu" else resolved
