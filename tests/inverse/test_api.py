"""The inverse layer's public functions check what they are given: one image or a batch,
a forward operator (not a bare kernel row), a kernel model (not an array)."""

import numpy as np
import pytest

from qpiset.core import Grid
from qpiset.forward import Forward, simulate
from qpiset.inverse import detect, estimate_kernel, file_operator
from qpiset.physics import FriedelKernel


@pytest.fixture(scope="module")
def ds():
    return simulate(FriedelKernel(), Grid(32, 50.0), n=2, seed=2, min_scatterers=3,
                    max_scatterers=3)


def test_one_image_is_a_batch_of_one(ds):
    op = file_operator(ds.kernel, ds.grid)
    one = detect(ds.images[0], op)  # (R, R): one image, not R images of one row each
    assert len(one) == 1 and len(one.positions[0]) == 3
    assert len(detect(ds.images, op)) == 2


def test_a_kernel_row_where_a_model_or_operator_belongs(ds):
    with pytest.raises(TypeError, match="file_operator"):
        detect(ds.images, ds.kernel)  # the bare row instead of an operator
    with pytest.raises(TypeError, match="ImageKernel"):
        Forward(ds.kernel, ds.grid)
    with pytest.raises(TypeError, match="Grid"):
        Forward(FriedelKernel(), (32, 50.0))
    with pytest.raises(ValueError, match="not constant"):
        file_operator(np.zeros((32, 32)), ds.grid)
    with pytest.raises(ValueError, match="shape"):
        file_operator(ds.kernel[:16], ds.grid)
    with pytest.raises(ValueError, match="px per side"):
        detect(np.zeros((16, 16)), file_operator(ds.kernel, ds.grid))


def test_kernel_estimation_of_one_image(ds):
    kernel = estimate_kernel(ds.images[0], ds.grid, "lsq", positions=ds.positions[0])
    assert kernel.sample(ds.grid).shape == (32, 32)
