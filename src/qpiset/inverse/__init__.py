"""Inverse problems, classical methods: where are the scatterers, and what is the kernel?

Detectors work from what a file gives (the images and the kernel row), or from a physics
model when the user names one:

- ``"matched"``: :class:`MatchedFilter`, cross-correlation with the kernel + peak picking;
- ``"sparse"``: :class:`SparseDeconvolution`, non-negative l1 on a 2x grid, then
  continuous refinement and model selection (the count is estimated).

The kernel row covers only ±fov/2 around its scatterer, while scatterers anywhere in the
field reach pixels up to ``sqrt(2) fov`` away. We extend it with the 2D Friedel asymptotic
form fitted to its outer half (:class:`qpiset.physics.sampled.SampledKernel`; it falls back
to a taper when that form does not fit), or use the named physics model, which covers
every distance.

Kernel estimation: :func:`kernel_from_positions` (linear least squares) and
:func:`blind_kernel` (alternating minimisation).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..grid import Grid
from ..physics import Kernel
from ..physics.sampled import SampledKernel
from .kernel import SplineKernel, blind_kernel, kernel_from_positions, ring_wavevector
from .matched import MatchedFilter
from .model import PixelModel
from .sparse import SparseDeconvolution

__all__ = ["DETECTORS", "KERNEL_METHODS", "MatchedFilter", "SparseDeconvolution", "PixelModel",
           "SplineKernel", "file_kernel", "make_detector", "detect", "kernel_from_positions",
           "blind_kernel", "ring_wavevector", "estimate_kernel"]

DETECTORS: dict[str, type] = {"matched": MatchedFilter, "sparse": SparseDeconvolution}
KERNEL_METHODS = ("lsq", "blind")


#: Relative spread of the kernel row around its rings above which the file's kernel is
#: called anisotropic (a lattice model, say): the isotropic model then misfits it.
ANISOTROPY_WARNING = 0.02


def file_kernel(kernel_image: np.ndarray, grid: Grid) -> Kernel:
    """The continuous kernel model made from a file's kernel row (see module docs).

    It is isotropic; a kernel row whose values spread around its rings by more than
    :data:`ANISOTROPY_WARNING` of the peak gets a warning (the detectors will misfit it).
    """
    kernel = SampledKernel.from_image(kernel_image, grid)
    if kernel.anisotropy > ANISOTROPY_WARNING:
        import warnings

        warnings.warn(f"the kernel row is anisotropic (spread {kernel.anisotropy:.2g} of its "
                      "peak around rings); the detectors model it as isotropic",
                      stacklevel=2)
    return kernel


def make_detector(method: str, kernel: Kernel, grid: Grid, **options) -> Callable:
    """A detector ``f(image) -> positions (k, 2)`` for ``method`` in :data:`DETECTORS`."""
    try:
        cls = DETECTORS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; methods: {', '.join(DETECTORS)}") from None
    return cls(PixelModel(kernel, grid), **options)


def detect(images, kernel: Kernel, grid: Grid, method: str = "sparse", **options) -> list[np.ndarray]:
    """Scatterer positions (Å) for each image ``[iy, ix]``.

    Examples
    --------
    >>> from qpiset.physics import FriedelKernel
    >>> from qpiset.synth import simulate
    >>> ds = simulate(FriedelKernel(), Grid(32, 50.0), n=1, seed=2, min_scatterers=3,
    ...               max_scatterers=3)
    >>> found = detect(ds.images, file_kernel(ds.kernel, ds.grid), ds.grid)
    >>> len(found[0])
    3
    """
    detector = make_detector(method, kernel, grid, **options)
    return [detector(img) for img in np.asarray(images)]


def estimate_kernel(images, grid: Grid, method: str = "lsq", positions=None) -> SplineKernel:
    """Kernel from images: ``"lsq"`` with known ``positions``, or ``"blind"``."""
    if method == "lsq":
        if positions is None:
            raise ValueError("method 'lsq' needs the scatterer positions")
        return kernel_from_positions(images, positions, grid)
    if method == "blind":
        return blind_kernel(images, grid)[0]
    raise ValueError(f"unknown kernel method {method!r}; methods: {', '.join(KERNEL_METHODS)}")
