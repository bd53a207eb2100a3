"""The forward model the inverse methods fit: ``image = b + sum_i s_i K(|r - r_i|)``.

``PixelModel`` wraps an isotropic kernel (a physics model, or a :class:`SampledKernel`
made from the file's kernel row) as radial tables of ``K`` and ``dK/dr`` and evaluates
images and Jacobians with respect to ``(x_i, y_i, s_i)`` in a compiled loop.
Images are flattened in memory order ``p = iy * R + ix``. :meth:`PixelModel.window` gives
the same model restricted to a rectangle of pixels (local fits touch only nearby pixels).
"""

from __future__ import annotations

import numba
import numpy as np

from ..grid import Grid
from ..physics import Kernel

__all__ = ["PixelModel"]


@numba.njit(cache=True, fastmath=True, boundscheck=False)
def _model_jacobian(xs, ys, pos, s, table, dtable, inv_step, img, jac, with_jac):  # pragma: no cover
    nx = xs.shape[0]
    last = table.shape[0] - 2
    for j in range(pos.shape[0]):
        px, py, sj = pos[j, 0], pos[j, 1], s[j]
        for iy in range(ys.shape[0]):
            dy = ys[iy] - py
            for ix in range(nx):
                dx = xs[ix] - px
                r = np.sqrt(dx * dx + dy * dy)
                t = r * inv_step
                i = min(int(t), last)
                f = t - i
                k = table[i] + f * (table[i + 1] - table[i])
                p = iy * nx + ix
                img[p] += sj * k
                if with_jac:
                    dk = dtable[i] + f * (dtable[i + 1] - dtable[i])
                    if r > 0:
                        g = -sj * dk / r
                        jac[p, 3 * j] = g * dx
                        jac[p, 3 * j + 1] = g * dy
                    else:
                        jac[p, 3 * j] = 0.0
                        jac[p, 3 * j + 1] = 0.0
                    jac[p, 3 * j + 2] = k


class PixelModel:
    """Images and Jacobians of ``sum_i s_i K(|r - r_i|)`` on a grid.

    Parameters
    ----------
    kernel : Kernel
        Isotropic kernel model.
    grid : Grid
    reach : float, optional
        Largest scatterer-pixel distance needed (Å); default covers scatterers up to
        half a field outside the image.
    """

    def __init__(self, kernel: Kernel, grid: Grid, reach: float | None = None) -> None:
        if not kernel.isotropic:
            raise ValueError(f"the detectors model isotropic kernels only; {kernel.name!r} is "
                             "anisotropic (use the file's kernel row, which they treat as "
                             "isotropic, or an isotropic model)")
        self.kernel = kernel
        self.grid = grid
        reach = reach or np.sqrt(2.0) * 1.5 * grid.fov + 1.0
        table = kernel.radial_table(reach)
        self._table = table
        self.step = table.step
        self.table = np.ascontiguousarray(table.values, dtype=np.float64)
        self.dtable = np.gradient(self.table, self.step)
        self.xs = grid.x.astype(np.float64)
        self.ys = self.xs
        self.box = (0, grid.resolution, 0, grid.resolution)  # ix0, ix1, iy0, iy1

    @property
    def npix(self) -> int:
        return len(self.xs) * len(self.ys)

    def window(self, centre, half: int) -> "PixelModel":
        """The model on the pixels within ``half`` pixels of ``centre`` (Å), clipped to
        the grid; ``self.box`` says which (``img[iy0:iy1, ix0:ix1]``)."""
        res = self.grid.resolution
        c = np.rint((np.asarray(centre, float) - self.grid.x[0]) / self.grid.pitch).astype(int)
        ix0, iy0 = (int(np.clip(v - half, 0, res - 1)) for v in c)
        ix1, iy1 = (int(np.clip(v + half + 1, 1, res)) for v in c)
        sub = object.__new__(PixelModel)
        sub.__dict__.update(self.__dict__)
        sub.xs, sub.ys = self.xs[ix0:ix1], self.ys[iy0:iy1]
        sub.box = (ix0, ix1, iy0, iy1)
        return sub

    def crop(self, image: np.ndarray) -> np.ndarray:
        """Flattened pixels of a full ``(R*R,)`` or ``(R, R)`` image inside :attr:`box`."""
        ix0, ix1, iy0, iy1 = self.box
        res = self.grid.resolution
        return np.asarray(image).reshape(res, res)[iy0:iy1, ix0:ix1].ravel()

    def image(self, positions: np.ndarray, strengths: np.ndarray) -> np.ndarray:
        """Flattened image ``(npix,)`` of scatterers at ``positions`` (k, 2)."""
        img = np.zeros(self.npix)
        pos = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 2)
        s = np.ascontiguousarray(strengths, dtype=np.float64).reshape(-1)
        _model_jacobian(self.xs, self.ys, pos, s, self.table, self.dtable, 1.0 / self.step,
                        img, np.empty((1, 1)), False)
        return img

    def image_and_jacobian(self, positions: np.ndarray, strengths: np.ndarray, out=None):
        """``(image (npix,), jacobian (npix, 3k))`` with columns ``d/dx_i, d/dy_i, d/ds_i``.

        ``out``: a C-ordered float32 or float64 array ``(npix, m)``, ``m >= 3k``, to write
        the Jacobian into (its first ``3k`` columns; the rest are left alone).
        """
        pos = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 2)
        s = np.ascontiguousarray(strengths, dtype=np.float64).reshape(-1)
        img = np.zeros(self.npix)
        jac = np.empty((self.npix, 3 * len(pos))) if out is None else out
        if jac.shape[0] != self.npix or jac.shape[1] < 3 * len(pos):
            raise ValueError(f"out has shape {jac.shape}, needs ({self.npix}, >= {3 * len(pos)})")
        _model_jacobian(self.xs, self.ys, pos, s, self.table, self.dtable, 1.0 / self.step,
                        img, jac, True)
        return img, jac

    def kernel_at_offsets(self, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """``K`` at arbitrary offsets (Å), by the same table."""
        return self._table(np.hypot(dx, dy))
