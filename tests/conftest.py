"""Shared fixtures and the test tiers.

Markers (pyproject.toml): ``slow`` (over ~5 s; ``make test-fast`` leaves them out),
``torch`` (needs the extra 'ml'; skipped with the reason without it, failing instead where
``QPISET_REQUIRE_TORCH=1``), ``browser`` (headless chromium), ``cluster`` (a dask cluster).
Test folders mirror ``src/qpiset``; :mod:`helpers` holds what several tests use.
"""

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))  # `import helpers` from every test folder

settings.register_profile(
    "qpiset", deadline=None, max_examples=int(os.environ.get("QPISET_HYPOTHESIS_EXAMPLES", 40)),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("qpiset")


def pytest_collection_modifyitems(config, items):
    from helpers import have_torch

    if have_torch() or os.environ.get("QPISET_REQUIRE_TORCH"):
        return
    skip = pytest.mark.skip(reason="needs the extra 'ml' (torch): pip install 'qpiset[ml]'")
    for item in items:
        if "torch" in item.keywords:
            item.add_marker(skip)


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
    from qpiset.core import Grid
    from qpiset.forward import simulate

    return simulate(cu, Grid(24, 40.0), n=12, seed=3, max_scatterers=6, noise=0.1)


@pytest.fixture(scope="session")
def row_file(tmp_path_factory, cu):
    """A small row-format file: 10 images, 16 px over 30 Å, up to 5 scatterers, noise 0.2."""
    import qpiset
    from qpiset.core import Grid
    from qpiset.forward import simulate

    path = tmp_path_factory.mktemp("rows") / "d.csv"
    qpiset.write(path, simulate(cu, Grid(16, 30.0), n=10, seed=2, max_scatterers=5,
                                noise=0.2))
    return path
