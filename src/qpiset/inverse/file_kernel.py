"""The kernel a file gives: its kernel row, made continuous.

The kernel row covers only ±fov/2 around its scatterer, while scatterers anywhere in the
field reach pixels up to ``sqrt(2) fov`` away. :func:`file_kernel` extends it with the 2D
Friedel asymptotic form fitted to its outer half
(:class:`~qpiset.physics.SampledKernel`; a taper when that form does not fit).
:func:`file_operator` is the forward operator the detectors and the benchmark use for a
file: that kernel (or a named physics model), with the file's own row as the kernel row.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..core.grid import Grid
from ..forward import Forward
from ..physics import SampledKernel

__all__ = ["file_kernel", "file_operator", "ANISOTROPY_WARNING"]

#: Relative spread of the kernel row around its rings above which the file's kernel is
#: called anisotropic (a lattice model, say): the isotropic model then misfits it.
ANISOTROPY_WARNING = 0.02


def _check_row(kernel_image, grid: Grid) -> np.ndarray:
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a qpiset.Grid, got {type(grid).__name__}")
    if not isinstance(kernel_image, (np.ndarray, list, tuple)):
        raise TypeError(f"the kernel row must be an image (R, R), got "
                        f"{type(kernel_image).__name__}")
    row = np.asarray(kernel_image, dtype=float)
    if row.shape != grid.shape:
        raise ValueError(f"the kernel row has shape {row.shape}, the grid {grid.shape}")
    if not np.all(np.isfinite(row)) or not np.ptp(row) > 0:
        raise ValueError("the kernel row must be finite and not constant")
    return row


def file_kernel(kernel_image: np.ndarray, grid: Grid) -> SampledKernel:
    """The continuous kernel model made from a file's kernel row (see module docs).

    Parameters
    ----------
    kernel_image : (R, R) array
        The kernel row as an image ``[iy, ix]``, one scatterer at (0, 0).
    grid : Grid
        Its grid.

    Returns
    -------
    SampledKernel
        Isotropic; a kernel row whose values spread around its rings by more than
        :data:`ANISOTROPY_WARNING` of the peak gets a warning (the detectors will misfit
        it).
    """
    kernel = SampledKernel.from_image(_check_row(kernel_image, grid), grid)
    if kernel.anisotropy > ANISOTROPY_WARNING:
        warnings.warn(f"the kernel row is anisotropic (spread {kernel.anisotropy:.2g} of its "
                      "peak around rings); the detectors model it as isotropic",
                      stacklevel=2)
    return kernel


def file_operator(kernel_image: np.ndarray, grid: Grid, kernel=None) -> Forward:
    """The forward operator of a file: the continuous model of its kernel row
    (:func:`file_kernel`) with the row itself as ``kernel_row``, or the physics model
    ``kernel`` (its own rendered row) when given.

    Examples
    --------
    >>> from qpiset.physics import FriedelKernel
    >>> g = Grid(32, 50.0)
    >>> row = Forward(FriedelKernel(), g).kernel_row
    >>> op = file_operator(row, g)
    >>> op.kernel.name, bool((op.kernel_row == row).all())
    ('sampled', True)
    """
    if kernel is not None:
        return Forward(kernel, grid)
    row = _check_row(kernel_image, grid)
    return Forward(file_kernel(row, grid), grid, row=row)
