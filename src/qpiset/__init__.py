"""qpiset: simulate, store, invert, benchmark and visualise QPI scatterer datasets.

The public contract (DESIGN.md)::

    ds = qpiset.read("train.csv")     # order="F" (default) | "C" | "auto"
    ds.grid.x, ds.kernel, ds.images, ds.positions, ds.max_scatterers
    qpiset.write("copy.csv", ds)      # layout="padded" (default) | "ragged"
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

from .dataset import SENTINEL, Dataset
from .grid import Grid
from .io import FormatError, read, write

__all__ = ["Dataset", "Grid", "FormatError", "SENTINEL", "read", "write", "simulate",
           "__version__"]

_LAZY = {"simulate": ("qpiset.synth", "simulate")}  # numba loads only when simulating


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'qpiset' has no attribute {name!r}")
