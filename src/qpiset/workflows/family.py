"""Writing a kernel family: one dataset file per kernel and ``index.json`` (kernel id ->
file, model and parameters, seed, train/test split), all from one seed
(:mod:`qpiset.forward.families` draws the kernels, their image seeds and the split).

Two namings of the files: qpiset's (``kernel_000.csv``, ``kernel_001.csv``, ...) and the
published 100-kernel dataset's (Ji et al. 2025), which its authors' preprocessing and
training scripts parse: ``Kernel number1.csv``, ``Kernel number2.csv``, ... numbered from 1
(the scripts keep the first two words of the name, ``Kernel number{i}``, and read ``i``
after ``number``), with ``n_fold_noise.npy``, an integer array whose entry ``i - 1`` is the
n-fold rotational symmetry label of kernel ``i`` (:func:`~qpiset.forward.families.n_fold_label`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..core.grid import Grid
from ..core.recipe import Recipe
from ..forward import family_file_seed, family_split, sample_family
from ..forward.families import n_fold_label, symmetry_record
from ..forward.simulate import placement_half_width, with_default_placement
from ..io import atomic_output, write_json
from ..io.records import FAMILY_FORMAT
from ..physics import make_kernel
from .generate import generate_file

__all__ = ["generate_family", "published_name", "NAMINGS", "N_FOLD_FILE"]

#: File namings of :func:`generate_family`.
NAMINGS = ("qpiset", "published")
#: The n-fold label array of the published naming (the name the authors' stage-1 and
#: stage-2 training scripts load).
N_FOLD_FILE = "n_fold_noise.npy"
#: What the authors' scripts assume of the 400 Å dataset: 64 px (``[:4096]``, 64 x 64),
#: 20 coordinate pairs (the last 40 columns) and a ±200 Å field (the activation map bins).
_PUBLISHED_SHAPE = {"resolution": 64, "max_scatterers": 20, "fov": 400.0}


def published_name(i: int, suffix: str = ".csv") -> str:
    """The published dataset's name of kernel ``i`` (0-based id; numbered from 1).

    Examples
    --------
    >>> published_name(0)
    'Kernel number1.csv'
    """
    return f"Kernel number{i + 1}{suffix}"


def generate_family(outdir, n_kernels: int = 100, recipe: Recipe | None = None, *,
                    seed: int = 0, grid: Grid | None = None, models=None,
                    test_fraction: float = 0.2, suffix: str = ".csv",
                    on_images: Callable[[int], object] | None = None,
                    naming: str = "qpiset") -> dict[str, Any]:
    """Write one dataset file per kernel into ``outdir`` and ``index.json``; returns the
    index.

    ``recipe`` is each file's (default: 500 images, 1-20 scatterers, no noise); its seed
    is replaced by the file's own, drawn from the family ``seed``. ``grid`` defaults to
    64 px over 400 Å. The test split holds ``round(test_fraction * n_kernels)`` kernels,
    chosen by the seed.

    ``naming="published"`` names the files as the published dataset does
    (:func:`published_name`, ``.csv`` only), writes :data:`N_FOLD_FILE` (the n-fold
    labels in the form the authors' stage-1 code reads) and records each kernel's
    ``number`` (from 1). Either naming records per kernel its ``rotational_symmetry``
    (:func:`~qpiset.forward.families.symmetry_record`) and ``n_fold`` label. A recipe
    ``placement`` is recorded in the index when given.
    """
    if naming not in NAMINGS:
        raise ValueError(f"naming must be one of {NAMINGS}, got {naming!r}")
    if naming == "published" and suffix != ".csv":
        raise ValueError(f"the published naming writes .csv (the authors' scripts read only "
                         f".csv), not {suffix}")
    recipe = recipe or Recipe(n=500, max_scatterers=20)
    test = family_split(seed, n_kernels, test_fraction)
    grid = grid or Grid(64, 400.0)
    recipe = with_default_placement(recipe, grid)
    placement_half_width(recipe, grid)  # refuse a window the files cannot hold, before work
    published = naming == "published"
    if published:
        shape = {"resolution": grid.resolution, "max_scatterers": recipe.max_scatterers,
                 "fov": grid.fov}
        differ = [f"{k} {shape[k]:g} (theirs {v:g})" for k, v in _PUBLISHED_SHAPE.items()
                  if shape[k] != v]
        if differ:
            warnings.warn("the published dataset's scripts assume 64 px, 20 scatterer slots and "
                          f"a 400 Å field; this family has {', '.join(differ)}", stacklevel=2)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    family = sample_family(n_kernels, seed, models, fov=grid.fov)
    entries = []
    for i, params in enumerate(family):
        file_seed = family_file_seed(seed, i)
        name = published_name(i, suffix) if published else f"kernel_{i:03d}{suffix}"
        kernel = make_kernel(**params)
        generate_file(outdir / name, kernel, grid, recipe.replace(seed=file_seed),
                      on_block=on_images)
        symmetry = symmetry_record(kernel.rotational_symmetry)
        entry = {"id": i, "file": name, "split": "test" if i in test else "train",
                 "seed": file_seed, "kernel": kernel.params(),
                 "rotational_symmetry": symmetry, "n_fold": n_fold_label(symmetry)}
        if published:
            entry["number"] = i + 1
        entries.append(entry)
    index = {
        "format": FAMILY_FORMAT, "seed": seed, "n_kernels": n_kernels,
        "images_per_kernel": recipe.n, "resolution": grid.resolution, "fov": grid.fov,
        "min_scatterers": recipe.min_scatterers, "max_scatterers": recipe.max_scatterers,
        "noise": recipe.noise_params(),
        "split": {"train": [e["id"] for e in entries if e["split"] == "train"],
                  "test": [e["id"] for e in entries if e["split"] == "test"]},
        "kernels": entries,
    }
    if recipe.placement is not None:
        index["placement"] = recipe.placement
    if published:
        index.update(naming="published", n_fold_file=N_FOLD_FILE)
        with atomic_output(outdir / N_FOLD_FILE) as f:
            np.save(f, np.array([e["n_fold"] for e in entries], dtype=np.int64))
    write_json(outdir / "index.json", index)
    return index
