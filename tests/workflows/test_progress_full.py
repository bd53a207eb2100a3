"""Issue 13, item 6: a progress bar moves per image when each image takes seconds.

Full multiple scattering costs seconds an image, so ``generate --scattering full`` reports
every image; Born scattering (milliseconds an image) reports per block. The counts add up
to the number of images and the files do not depend on how progress is reported.
"""

import numpy as np
import pytest

import qpiset
from qpiset.core import Grid, Recipe
from qpiset.physics import make_kernel
from qpiset.workflows import generate_file

GRID = Grid(16, 40.0)


@pytest.fixture(scope="module")
def kernel():
    return make_kernel("friedel", material="Cu(111)", energy=0.1)


@pytest.mark.parametrize("suffix", ["csv", "npz", "zarr"])
def test_full_scattering_reports_every_image(tmp_path, kernel, suffix):
    recipe = Recipe(n=3, seed=5, max_scatterers=3, scattering="full")
    seen: list[int] = []
    out = tmp_path / f"a.{suffix}"
    generate_file(out, kernel, GRID, recipe, on_block=seen.append)
    assert seen[-3:] == [1, 1, 1] and sum(seen) == 3
    quiet = tmp_path / f"b.{suffix}"
    generate_file(quiet, kernel, GRID, recipe)
    a, b = qpiset.read(out), qpiset.read(quiet)
    np.testing.assert_array_equal(a.images, b.images)


def test_born_reports_per_block(tmp_path, kernel):
    seen: list[int] = []
    generate_file(tmp_path / "a.csv", kernel, GRID, Recipe(n=5, seed=5, max_scatterers=3),
                  on_block=seen.append)
    assert seen == [5]
