"""Helpers shared by the tests (importable from any test folder: conftest puts this folder
on the path)."""

from __future__ import annotations

import os

import numpy as np
import pytest


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


def require_torch():
    """torch, or skip the calling test module with the reason; where
    ``QPISET_REQUIRE_TORCH=1`` (CI: the extra is installed) a missing torch fails instead."""
    if os.environ.get("QPISET_REQUIRE_TORCH"):
        import torch

        return torch
    return pytest.importorskip("torch", reason="needs the extra 'ml' (torch): "
                                               "pip install 'qpiset[ml]'")


def have_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def one_thread():
    """A fixture body: one thread for torch and numba while a module's tests run (tiny
    tensors gain nothing from more, and on a shared 2-core machine OpenMP threads left
    spinning after a parallel loop slow the next torch step 20-fold); restored after.
    Use as ``_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)``."""
    import numba
    import torch

    threads, loops = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    numba.set_num_threads(loops)
