"""The forward operator: the images a kernel makes on a grid, ``b + sum_i s_i K(r - r_i)``.

One object serves the simulator, the detectors, the benchmark's oracle and
reconstruction, the figures and the reader's pixel-order check:

- :meth:`Forward.render` / :meth:`Forward.render_batch`: the simulator's images. An
  isotropic kernel is tabulated once on a fine radial grid
  (:meth:`~qpiset.physics.RadialKernel.radial_table`) and linearly interpolated,
  accumulated in float32 (maximum error ~1e-5 of the kernel's peak; ``benchmarks/`` and
  the tests measure it against exact evaluation); any other kernel is tabulated on a
  square 2D grid (:meth:`~qpiset.physics.Kernel.grid_table`) and interpolated by cubic
  convolution (third-order accurate). Positions are continuous, never snapped to pixels.
- :attr:`Forward.kernel_row`: the dataset's kernel row, one scatterer of strength 1 at
  (0, 0) (or the row a file gives, when the operator is made from a file's kernel).
- :meth:`Forward.image`, :meth:`Forward.image_and_jacobian`: the model in float64 with
  its Jacobian, for fits: an isotropic kernel by the same radial rule, any other by the
  2D table's cubic convolution and its derivatives; :meth:`Forward.window` restricts
  it to a rectangle of pixels; :meth:`Forward.terms` gives each scatterer's pattern and
  :meth:`Forward.least_squares` fits strengths and a constant background to an image with
  the positions fixed (any kernel).

The loops run in a backend (:mod:`.backends`); the operator prepares tables and inputs.
Images are indexed ``[iy, ix]``; fit images are flattened ``p = iy * R + ix``.
"""

from __future__ import annotations

import copy
import warnings
from typing import NamedTuple, Sequence

import numpy as np

from ..core.dataset import pad_rows
from ..core.grid import Grid

__all__ = ["Forward", "StrengthFit", "MAX_GRID_TABLE"]

#: Largest 2D kernel table (samples per side) before its step is coarsened.
MAX_GRID_TABLE = 4001


class StrengthFit(NamedTuple):
    """Strengths and background fitted by linear least squares (positions fixed)."""

    background: float
    strengths: np.ndarray  # (k,), unconstrained
    fitted: np.ndarray  # the fitted image, shaped like the input image


class Forward:
    """The forward operator of a kernel on a grid.

    Parameters
    ----------
    kernel : Kernel
        Single-scatterer model (:mod:`qpiset.physics`).
    grid : Grid
        Pixel grid.
    row : (R, R) array, optional
        The kernel row when it is known exactly on the grid (a file's line 3); by default
        it is rendered from ``kernel``.
    backend : str or backend object
        Where the loops run: a name of :data:`~.backends.BACKENDS` (``"numba"``,
        ``"torch"``) or a backend object such as ``TorchBackend("cuda")``.
    reach : float, optional
        Largest scatterer-pixel distance (Å) the fitting model covers (along each axis for
        an anisotropic kernel, whose table is square); default: scatterers up to half a
        field (a quarter for an anisotropic kernel) outside the image.

    Examples
    --------
    >>> from qpiset.physics import FriedelKernel
    >>> op = Forward(FriedelKernel(), Grid(32, 50.0))
    >>> a = op.render([[1.0, 2.0]]); b = op.render([[-7.5, 3.3]])
    >>> bool(np.allclose(op.render([[1.0, 2.0], [-7.5, 3.3]]), a + b))
    True
    >>> op.kernel_row.shape
    (32, 32)
    """

    def __init__(self, kernel, grid: Grid, *, row=None, backend="numba",
                 reach: float | None = None) -> None:
        from ..physics import Kernel
        from .backends import get_backend  # the compiled loops load when first needed

        if not isinstance(kernel, Kernel):
            hint = (" (for a kernel image use qpiset.physics.ImageKernel(image=..., fov=...), "
                    "or qpiset.inverse.file_operator(row, grid) for a file's kernel row)"
                    if isinstance(kernel, np.ndarray) else "")
            raise TypeError(f"kernel must be a kernel model (qpiset.physics), got "
                            f"{type(kernel).__name__}{hint}")
        if not isinstance(grid, Grid):
            raise TypeError(f"grid must be a qpiset.Grid, got {type(grid).__name__}")
        self.kernel = kernel
        self.grid = grid
        self.backend = get_backend(backend)
        if row is not None:
            row = np.asarray(row, dtype=np.float64)
            if row.shape != grid.shape:
                raise ValueError(f"kernel row {row.shape} does not match the grid {grid.shape}")
        self._row = row
        self._reach = reach
        self._fit = None
        self.xs = grid.x.astype(np.float64)
        self.ys = self.xs
        self.box = (0, grid.resolution, 0, grid.resolution)  # ix0, ix1, iy0, iy1

    # -- rendering (the simulator) -------------------------------------------------------
    def render_batch(self, positions: Sequence, strengths: Sequence | None = None,
                     threads: int | None = None) -> np.ndarray:
        """Clean images of many scatterer sets, ``(N, R, R)`` indexed ``[iy, ix]``.

        Parameters
        ----------
        positions : sequence of (k_i, 2) arrays
            Scatterer ``(x, y)`` in Å, continuous; may lie outside the field of view.
        strengths : sequence of (k_i,) arrays (or numbers), optional
            Scale of each scatterer's pattern (default 1).
        threads : int, optional
            Threads of the backend (default: all); results do not depend on it. Pixels
            are accumulated in float32 (returned as float64), which keeps the error
            ~1e-5 of the peak, like the table.
        """
        pos, amp, counts, far = self.render_inputs(positions, strengths)
        res = self.grid.resolution
        out = np.zeros((len(counts), res, res), dtype=np.float32)
        kind, table = self.render_table(far)
        if kind == "radial":
            values = table.values.astype(np.float32)
            slope = np.empty_like(values)
            slope[:-1] = np.diff(values)
            slope[-1] = 0.0
            self.backend.render_radial(out, self.grid.x.astype(np.float32), pos, amp, counts,
                                       values, slope, np.float32(1.0 / table.step),
                                       threads=threads)
        else:
            self.backend.render_grid(out, self.grid.x.astype(np.float64), pos, amp, counts,
                                     table.values.astype(np.float32),
                                     np.float64(1.0 / table.step),
                                     np.float64(table.half_width / table.step), threads=threads)
        # the loops fill [ix, iy] (the file's column-major order); memory order is [iy, ix]
        return np.ascontiguousarray(out.transpose(0, 2, 1), dtype=np.float64)

    def render_inputs(self, positions: Sequence, strengths: Sequence | None = None):
        """The renderer's padded inputs: ``(pos (N, K, 2), amp (N, K), counts (N,), far)``
        float64 (padding: position 0, strength 0), ``far`` the largest coordinate (Å)."""
        rows = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in positions]
        n = len(rows)
        counts = np.array([len(p) for p in rows], dtype=np.int64)
        width = max(1, int(counts.max(initial=0)))
        pos = pad_rows(rows, width, 0.0)
        if strengths is None:
            amps = [np.ones(len(p)) for p in rows]
        else:
            if len(strengths) != n:
                raise ValueError(f"{len(strengths)} strength sets for {n} position sets")
            amps = [np.broadcast_to(np.asarray(s, dtype=np.float64).reshape(-1)
                                    if np.ndim(s) else float(s), (len(p),))
                    for p, s in zip(rows, strengths)]
        amp = pad_rows(amps, width, 0.0, tail=())
        if not np.all(np.isfinite(pos)) or not np.all(np.isfinite(amp)):
            raise ValueError("positions and strengths must be finite")
        far = max((float(np.abs(p).max()) for p in rows if len(p)), default=0.0)
        return pos, amp, counts, far

    def render_table(self, far: float):
        """``("radial", RadialTable)`` for an isotropic kernel, else ``("grid", GridTable)``:
        the table the renderer interpolates for scatterers up to ``far`` Å from the centre
        (the kernel caches it, so the same object comes back while ``far`` does not grow)."""
        grid, kernel = self.grid, self.kernel
        if kernel.isotropic:
            return "radial", kernel.radial_table(np.sqrt(2.0) * (grid.fov / 2 + far) + 1.0)
        # 2D table, cubic convolution; reach along the axes suffices for a square table
        reach = grid.fov / 2 + far + 1.0
        extent = kernel.extent
        if extent is not None and extent < reach - 1.0:
            param = kernel.extent_parameter
            hint = f" (raise the model's {param})" if param else ""
            warnings.warn(f"kernel {kernel.name!r} is known to {extent:g} Å from its "
                          f"scatterer, the images need {reach - 1.0:.0f} Å: patterns are "
                          f"cut there{hint}", stacklevel=3)
        step = max(kernel.default_step(), 2 * reach / (MAX_GRID_TABLE - 1))
        return "grid", kernel.grid_table(reach, step)

    def render(self, positions, strengths=None, threads: int | None = None) -> np.ndarray:
        """Clean image ``sum_i s_i K(r - r_i)`` of one scatterer set, ``(R, R)``
        ``[iy, ix]`` (see :meth:`render_batch`)."""
        positions = np.asarray(positions, dtype=float).reshape(-1, 2)
        s = None if strengths is None else [np.asarray(strengths, float).reshape(-1)]
        return self.render_batch([positions], s, threads=threads)[0]

    @property
    def kernel_row(self) -> np.ndarray:
        """The dataset's kernel row ``(R, R)``: one scatterer of strength 1 at (0, 0)."""
        if self._row is None:
            row = self.render(np.zeros((1, 2)))
            row.setflags(write=False)
            self._row = row
        return self._row

    # -- the fitting model ---------------------------------------------------------------
    def require_isotropic(self) -> None:
        """``ValueError`` unless the kernel is isotropic (for methods that model ``K(r)``)."""
        if not self.kernel.isotropic:
            raise ValueError(f"this method models isotropic kernels only; "
                             f"{self.kernel.name!r} is anisotropic")

    def _tables(self):
        """The fitting model's tables (made once): ``("radial", RadialTable, step, table,
        dtable)`` for an isotropic kernel, ``("grid", GridTable, table, 1/step, centre)``
        for any other (a square table, step the model's own or ``pitch / 8``, whichever is
        coarser; cubic convolution)."""
        if self._fit is None:
            if self.kernel.isotropic:
                reach = self._reach or np.sqrt(2.0) * 1.5 * self.grid.fov + 1.0
                table = self.kernel.radial_table(reach)
                values = np.ascontiguousarray(table.values, dtype=np.float64)
                self._fit = ("radial", table, table.step, values,
                             np.gradient(values, table.step))
            else:
                half = self._reach or 1.25 * self.grid.fov + self.grid.pitch
                step = max(self.kernel.default_step(), self.grid.pitch / 8,
                           2 * half / (MAX_GRID_TABLE - 1))
                table = self.kernel.grid_table(half, step)
                values = np.ascontiguousarray(table.values, dtype=np.float64)
                self._fit = ("grid", table, values, 1.0 / table.step,
                             table.half_width / table.step)
        return self._fit

    def _model(self, pos, s, img, jac, with_jac: bool) -> None:
        fit = self._tables()
        if fit[0] == "radial":
            _, _, step, table, dtable = fit
            self.backend.radial_model(self.xs, self.ys, pos, s, table, dtable, 1.0 / step, img,
                                      jac, with_jac)
        else:
            _, _, table, inv_step, centre = fit
            self.backend.grid_model(self.xs, self.ys, pos, s, table, inv_step, centre, img,
                                    jac, with_jac)

    @property
    def npix(self) -> int:
        """Pixels of the fitting model (those of :attr:`box`)."""
        return len(self.xs) * len(self.ys)

    def window(self, centre, half: int) -> "Forward":
        """The fitting model on the pixels within ``half`` pixels of ``centre`` (Å),
        clipped to the grid; ``box`` says which (``img[iy0:iy1, ix0:ix1]``)."""
        self._tables()  # shared with the window
        res = self.grid.resolution
        c = np.rint((np.asarray(centre, float) - self.grid.x[0]) / self.grid.pitch).astype(int)
        ix0, iy0 = (int(np.clip(v - half, 0, res - 1)) for v in c)
        ix1, iy1 = (int(np.clip(v + half + 1, 1, res)) for v in c)
        sub = copy.copy(self)
        sub.xs, sub.ys = self.xs[ix0:ix1], self.ys[iy0:iy1]
        sub.box = (ix0, ix1, iy0, iy1)
        return sub

    def crop(self, image: np.ndarray) -> np.ndarray:
        """Flattened pixels of a full ``(R*R,)`` or ``(R, R)`` image inside :attr:`box`."""
        ix0, ix1, iy0, iy1 = self.box
        res = self.grid.resolution
        return np.asarray(image).reshape(res, res)[iy0:iy1, ix0:ix1].ravel()

    def image(self, positions: np.ndarray, strengths: np.ndarray) -> np.ndarray:
        """Flattened fit image ``(npix,)`` of scatterers at ``positions`` (k, 2)."""
        img = np.zeros(self.npix)
        pos = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 2)
        s = np.ascontiguousarray(strengths, dtype=np.float64).reshape(-1)
        self._model(pos, s, img, np.empty((1, 1)), False)
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
        self._model(pos, s, img, jac, True)
        return img, jac

    def kernel_at_offsets(self, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """``K`` at arbitrary offsets (Å), by the fitting model's table."""
        fit = self._tables()
        return fit[1](np.hypot(dx, dy)) if fit[0] == "radial" else fit[1](dx, dy)

    def terms(self, positions) -> np.ndarray:
        """Each scatterer's pattern at unit strength, ``(k, npix)`` flattened like the
        fitting model's images (the Jacobian's strength columns)."""
        pos = np.asarray(positions, float).reshape(-1, 2)
        _, J = self.image_and_jacobian(pos, np.ones(len(pos)))
        return J[:, 2::3].T  # d/ds_i = K(r - r_i)

    def least_squares(self, image: np.ndarray, positions) -> StrengthFit:
        """Strengths (unconstrained) and a constant background by linear least squares
        for scatterers at ``positions``, and the fitted image.

        Examples
        --------
        >>> from qpiset.physics import FriedelKernel
        >>> op = Forward(FriedelKernel(), Grid(32, 50.0))
        >>> pos = [[1.0, 2.0], [-7.5, 3.3]]
        >>> fit = op.least_squares(op.image(pos, [2.0, 0.5]) + 0.1, pos)
        >>> np.round(fit.strengths, 6).tolist(), round(fit.background, 6)
        ([2.0, 0.5], 0.1)
        """
        y = np.asarray(image, float).ravel()
        A = np.column_stack([np.ones_like(y), self.terms(positions).T])
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        return StrengthFit(float(coef[0]), coef[1:], (A @ coef).reshape(np.shape(image)))

    def __repr__(self) -> str:
        return f"Forward({self.kernel!r}, {self.grid!r}, backend={self.backend.name!r})"
