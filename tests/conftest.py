import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "qpiset", deadline=None, max_examples=int(os.environ.get("QPISET_HYPOTHESIS_EXAMPLES", 40)),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("qpiset")


@pytest.fixture()
def run():
    """Invoke the qpiset command in-process: ``run(*args, code=0)`` checks the exit code."""
    from click.testing import CliRunner

    from qpiset.cli import cli

    runner = CliRunner()

    def invoke(*args, code=0):
        result = runner.invoke(cli, [str(a) for a in args])
        assert result.exit_code == code, result.output + repr(result.exception)
        return result

    return invoke


@pytest.fixture(scope="session")
def cu():
    from qpiset.physics import FriedelKernel

    return FriedelKernel("Cu(111)", energy=0.0)


@pytest.fixture(scope="session")
def small_ds(cu):
    """A small simulated dataset: 12 images, 24 px over 40 Å, up to 6 scatterers."""
    from qpiset.grid import Grid
    from qpiset.synth import simulate

    return simulate(cu, Grid(24, 40.0), n=12, seed=3, max_scatterers=6, noise=0.1)


def same_bits(a, b) -> bool:
    """Equal to the last bit (distinguishes -0.0 from 0.0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))


def assert_same_dataset(a, b):
    assert a.grid == b.grid
    assert same_bits(a.grid.x, b.grid.x)
    assert a.max_scatterers == b.max_scatterers
    assert same_bits(a.kernel, b.kernel)
    assert same_bits(a.images, b.images)
    assert len(a.positions) == len(b.positions)
    for p, q in zip(a.positions, b.positions):
        assert same_bits(p, q)
