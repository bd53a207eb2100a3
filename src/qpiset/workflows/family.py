"""Writing a kernel family: one dataset file per kernel and ``index.json`` (kernel id ->
file, model and parameters, seed, train/test split), all from one seed
(:mod:`qpiset.forward.families` draws the kernels, their image seeds and the split)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..core.grid import Grid
from ..core.recipe import Recipe
from ..forward import family_file_seed, family_split, sample_family
from ..io import write_json
from ..io.records import FAMILY_FORMAT
from ..physics import make_kernel
from .generate import generate_file

__all__ = ["generate_family"]


def generate_family(outdir, n_kernels: int = 100, recipe: Recipe | None = None, *,
                    seed: int = 0, grid: Grid | None = None, models=None,
                    test_fraction: float = 0.2, suffix: str = ".csv",
                    on_images: Callable[[int], object] | None = None) -> dict[str, Any]:
    """Write one dataset file per kernel into ``outdir`` and ``index.json``; returns the
    index.

    ``recipe`` is each file's (default: 500 images, 1-20 scatterers, no noise); its seed
    is replaced by the file's own, drawn from the family ``seed``. ``grid`` defaults to
    64 px over 400 Å. The test split holds ``round(test_fraction * n_kernels)`` kernels,
    chosen by the seed."""
    recipe = recipe or Recipe(n=500, max_scatterers=20)
    test = family_split(seed, n_kernels, test_fraction)
    grid = grid or Grid(64, 400.0)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    family = sample_family(n_kernels, seed, models, fov=grid.fov)
    entries = []
    for i, params in enumerate(family):
        file_seed = family_file_seed(seed, i)
        name = f"kernel_{i:03d}{suffix}"
        kernel = make_kernel(**params)
        generate_file(outdir / name, kernel, grid, recipe.replace(seed=file_seed),
                      on_block=on_images)
        entries.append({"id": i, "file": name, "split": "test" if i in test else "train",
                        "seed": file_seed, "kernel": kernel.params()})
    index = {
        "format": FAMILY_FORMAT, "seed": seed, "n_kernels": n_kernels,
        "images_per_kernel": recipe.n, "resolution": grid.resolution, "fov": grid.fov,
        "min_scatterers": recipe.min_scatterers, "max_scatterers": recipe.max_scatterers,
        "noise": recipe.noise_params(),
        "split": {"train": [e["id"] for e in entries if e["split"] == "train"],
                  "test": [e["id"] for e in entries if e["split"] == "test"]},
        "kernels": entries,
    }
    write_json(outdir / "index.json", index)
    return index
