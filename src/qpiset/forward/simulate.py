"""Simulated datasets: a kernel, a grid and a :class:`~qpiset.core.Recipe` in, images out.

``image(r) = sum_i s_i K(r - r_i)`` on the pixel grid (:mod:`.operator`; or every
multiple-scattering path, :mod:`.scattering`), plus optional noise and instrument effects
(:mod:`.noise`), drawn block by block from reproducible seeds (:mod:`.seeding`).
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np

from ..core.dataset import Dataset
from ..core.grid import Grid
from ..core.recipe import Recipe
from .noise import as_noise
from .operator import Forward
from .scattering import image_renderer
from .seeding import BLOCK, block_generators, draw_scatterers

__all__ = ["simulate", "simulate_blocks", "as_recipe", "placement_half_width",
           "with_default_placement"]


def as_recipe(recipe: Recipe | int | None = None, **fields) -> Recipe:
    """``recipe`` (default :class:`Recipe()`; a number is the number of images) with
    ``fields`` changed; a ``noise`` given as a number or a spec becomes a model
    (:func:`~.noise.as_noise`)."""
    if isinstance(recipe, (int, np.integer)) and not isinstance(recipe, bool):
        fields.setdefault("n", int(recipe))
        recipe = None
    if recipe is not None and not isinstance(recipe, Recipe):
        raise TypeError(f"expected a Recipe (or the number of images), got {recipe!r}")
    if "noise" in fields and not isinstance(fields["noise"], dict):
        fields["noise"] = as_noise(fields["noise"])
    return (recipe or Recipe()).replace(**fields) if fields else (recipe or Recipe())


def placement_half_width(recipe: Recipe, grid: Grid) -> float:
    """Half-width (Å) of the square ``[-h, h)²`` in which ``recipe`` places scatterers on
    ``grid``: ``fov / 2`` by default, ``placement / 2`` when given. Refused beyond the
    row format's sanity bound on coordinates (±fov: ``placement`` up to ``2 fov``).

    Examples
    --------
    >>> placement_half_width(Recipe(placement=200.0), Grid(64, 400.0))
    100.0
    """
    if recipe.placement is None:
        return grid.fov / 2
    if recipe.placement > 2 * grid.fov:
        raise ValueError(f"placement {recipe.placement:g} Å is wider than twice the field of "
                         f"view ({2 * grid.fov:g} Å): files hold coordinates within ±fov")
    return recipe.placement / 2


def with_default_placement(recipe: Recipe, grid: Grid) -> Recipe:
    """``recipe`` with a ``placement`` equal to the field of view made the default
    (``None``): the same draws, and the metadata of a run without one."""
    if recipe.placement is not None and recipe.placement == grid.fov:
        return recipe.replace(placement=None)
    return recipe


def simulate_blocks(kernel, grid: Grid, recipe: Recipe, *, threads: int | None = None,
                    blocks: Sequence[int] | None = None, op: Forward | None = None,
                    on_images: Callable[[int], object] | None = None, device=None
                    ) -> Iterator[tuple[int, np.ndarray, list[np.ndarray], list[np.ndarray]]]:
    """Yield ``(start, images, positions, strengths)`` for consecutive blocks of images.

    Each block is independent (its own seed, :mod:`.seeding`), so blocks can be made in
    any order or on any worker; ``blocks`` selects which block numbers to make (default:
    all, in order). ``op`` reuses a forward operator of ``kernel`` on ``grid``.
    ``on_images(k)`` is called as ``k`` more images are rendered: per block for Born
    scattering, per image for ``"full"`` (a progress bar that moves every few seconds).

    Examples
    --------
    >>> from qpiset.physics import FriedelKernel
    >>> r = Recipe(n=300, seed=1, max_scatterers=4)
    >>> [(start, len(images)) for start, images, _, _ in
    ...  simulate_blocks(FriedelKernel(), Grid(8, 20.0), r)]
    [(0, 256), (256, 44)]
    """
    op = op or Forward(kernel, grid)
    noise = as_noise(recipe.noise)
    if device is None:
        render_images = image_renderer(op, recipe.scattering, threads)
    else:
        from .torch_simulate import device_renderer

        render_images, noise = device_renderer(op, recipe.scattering, noise, device)
    n = recipe.n
    half = placement_half_width(recipe, grid)
    for b in range(-(-n // BLOCK)) if blocks is None else blocks:
        start, stop = b * BLOCK, min(n, (b + 1) * BLOCK)
        rng, noise_seed = block_generators(recipe.seed, b)
        positions, strengths = draw_scatterers(rng, stop - start, recipe, half, kernel.lattice)
        images = render_images(positions, strengths, on_images)
        if noise is not None:
            images = noise(images, np.random.default_rng(noise_seed), grid=grid)
        yield start, images, positions, strengths


def simulate(kernel, grid: Grid | None = None, recipe: Recipe | None = None, *,
             threads: int | None = None, on_images: Callable[[int], object] | None = None,
             device=None, **fields) -> Dataset:
    """Simulate a dataset: ``n`` images with uniform scatterer counts and positions.

    Parameters
    ----------
    kernel : Kernel
        Single-scatterer model (e.g. ``FriedelKernel("Cu(111)", energy=0.0)``).
    grid : Grid, optional
        Default ``Grid(64, 100.0)``.
    recipe : Recipe or int, optional
        What to draw (default ``Recipe()``: 1000 images, seed 0, 1-100 scatterers); a
        number is the number of images.
    threads : int, optional
        Threads for rendering; the result does not depend on it.
    on_images : callable, optional
        ``on_images(k)`` as ``k`` more images are rendered (a progress bar).
    device : str, optional
        Render and noise the images on this torch device (:func:`simulate_blocks`); the
        same scatterers, images equal to the CPU's to float32 rounding (not to the bit).
        The kernel row is rendered on the CPU either way.
    **fields
        Recipe fields to change: ``n``, ``seed``, ``min_scatterers``, ``max_scatterers``,
        ``strength``, ``noise`` (a model, or a number: white noise of that fraction of
        each clean image's std), ``scattering``, ``placement`` (full width in Å of the
        centred square the scatterers are placed in; default the field of view).

    Examples
    --------
    >>> from qpiset.physics import FriedelKernel
    >>> ds = simulate(FriedelKernel(), Grid(32, 50.0), n=3, seed=1, max_scatterers=5)
    >>> ds.images.shape, ds.max_scatterers
    ((3, 32, 32), 5)
    """
    grid = grid or Grid()
    recipe = with_default_placement(as_recipe(recipe, **fields), grid)
    op = Forward(kernel, grid)
    images = np.empty((recipe.n, grid.resolution, grid.resolution))
    positions: list[np.ndarray] = []
    strengths: list[np.ndarray] = []
    for start, imgs, pos, amp in simulate_blocks(kernel, grid, recipe, threads=threads, op=op,
                                                      on_images=on_images, device=device):
        images[start:start + len(imgs)] = imgs if device is None else imgs.cpu().numpy()
        positions.extend(pos)
        strengths.extend(amp)
    return Dataset(grid, op.kernel_row.copy(), images, positions, recipe.max_scatterers,
                   strengths=strengths, meta=recipe.meta(kernel.params()))
