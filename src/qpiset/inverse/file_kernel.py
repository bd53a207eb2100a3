"""The kernel a file gives: its kernel row, made continuous.

The kernel row covers only ±fov/2 around its scatterer, while scatterers anywhere in the
field reach pixels up to ``sqrt(2) fov`` away. :func:`file_kernel` extends it with the 2D
Friedel asymptotic form fitted to its outer half
(:class:`~qpiset.physics.SampledKernel`; a taper when that form does not fit). A row that
is not isotropic (a lattice, a superconductor: its values spread around its rings by more
than :data:`ANISOTROPY` of the peak) keeps its shape: the isotropic model of its ring means
plus its departure from them (:class:`~qpiset.physics.SampledKernel2D`).
:func:`file_operator` is the forward operator the detectors and the benchmark use for a
file: that kernel (or a named physics model), with the file's own row as the kernel row.
"""

from __future__ import annotations

import numpy as np

from ..core.grid import Grid
from ..forward import Forward
from ..physics import SampledKernel, SampledKernel2D

__all__ = ["file_kernel", "file_operator", "ANISOTROPY"]

#: Relative spread of the kernel row around its rings above which the file's kernel is
#: modelled in 2D (:class:`~qpiset.physics.SampledKernel2D`): an isotropic kernel sampled
#: on a square grid spreads by less than 1e-3 of its peak (the grid's own rounding).
ANISOTROPY = 0.02


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


def file_kernel(kernel_image: np.ndarray, grid: Grid) -> SampledKernel | SampledKernel2D:
    """The continuous kernel model made from a file's kernel row (see module docs).

    Parameters
    ----------
    kernel_image : (R, R) array
        The kernel row as an image ``[iy, ix]``, one scatterer at (0, 0).
    grid : Grid
        Its grid.

    Returns
    -------
    SampledKernel or SampledKernel2D
        Isotropic, unless the row's values spread around its rings by more than
        :data:`ANISOTROPY` of the peak: then the 2D model.
    """
    row = _check_row(kernel_image, grid)
    kernel = SampledKernel.from_image(row, grid)
    if kernel.anisotropy > ANISOTROPY:
        return SampledKernel2D(row, grid.fov)
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
