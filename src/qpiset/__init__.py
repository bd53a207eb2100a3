"""qpiset: simulate, store, invert, benchmark and visualise QPI scatterer datasets.

The public contract (README, "Quickstart")::

    ds = qpiset.read("train.csv")     # order="F" (default) | "C" | "auto"
    ds.grid.x, ds.kernel, ds.images, ds.positions, ds.max_scatterers
    qpiset.write("copy.csv", ds)      # layout="padded" (default) | "ragged"

The package is layered, each layer importing only from those below it:
core < physics < forward < io < inverse < bench < workflows < viz < cli
(README, "Architecture").
"""

from .core import SENTINEL, Dataset, FormatError, Grid, Recipe, __version__
from .io import read, write

__all__ = ["Dataset", "Grid", "Recipe", "FormatError", "SENTINEL", "read", "write",
           "simulate", "__version__"]


def __getattr__(name: str):
    if name == "simulate":  # numba loads only when simulating
        from .forward import simulate

        return simulate
    raise AttributeError(f"module 'qpiset' has no attribute {name!r}")
