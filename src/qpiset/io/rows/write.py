"""Writing the row format: shortest round-trip float text (polars), lines 1-2 padded
with zeros to a rectangle (default) or short (``ragged``), pixels column-major.

Only the padded layout loads with ``pandas.read_csv(path, header=None)``: pandas takes the
width of a file from its first line, so a ragged file's two-field first line makes it stop
at the next ("Expected 2 fields in line 2, saw R"). Writing a ragged file warns so.
"""

from __future__ import annotations

import warnings
from typing import IO, Iterable

import numpy as np

from ...core.dataset import pad_rows
from ...core.grid import Grid
from .parse import rows_from_images

__all__ = ["write_rows", "RAGGED_WARNING"]

#: The one-line warning of a ragged write (the command line shows it as ``warning: ...``).
RAGGED_WARNING = ("layout 'ragged': lines 1-2 are short, so pandas.read_csv(path, header=None) "
                  "cannot read this file (the default layout 'padded' loads with pandas; "
                  "qpiset reads both)")


def _write_matrix(out: IO[bytes], values: np.ndarray) -> None:
    """Rows of numbers as shortest round-trip CSV text, straight into ``out`` (polars)."""
    import polars as pl

    pl.from_numpy(values).write_csv(out, include_header=False, quote_style="never")


def write_rows(
    out: IO[bytes],
    grid: Grid,
    kernel: np.ndarray,
    max_scatterers: int,
    chunks: Iterable[tuple[np.ndarray, list[np.ndarray]]],
    layout: str = "padded",
    batch_rows: int = 2048,
) -> int:
    """Write the row format to an open binary handle; return the number of image rows.

    ``chunks`` yields ``(images (n, R, R) [iy, ix], positions list of (k, 2))``. A
    ``ragged`` layout warns (:data:`RAGGED_WARNING`): pandas cannot read it.
    """
    if layout not in ("padded", "ragged"):
        raise ValueError(f"layout must be 'padded' or 'ragged', got {layout!r}")
    if layout == "ragged":
        warnings.warn(RAGGED_WARNING, UserWarning, stacklevel=2)
    r = grid.resolution
    width = r * r + 2 * max_scatterers
    line1 = [str(r), str(max_scatterers)]
    line2 = [repr(float(v)) for v in grid.x]
    if layout == "padded":
        line1 += ["0"] * (width - 2)
        line2 += ["0"] * (width - r)
    out.write((",".join(line1) + "\n" + ",".join(line2) + "\n").encode())
    kernel_pos = [np.zeros((1, 2))]
    _write_matrix(out, _pack(np.asarray(kernel)[None], kernel_pos, max_scatterers))
    total = 0
    for images, positions in chunks:
        for s in range(0, len(images), batch_rows):
            block = _pack(images[s:s + batch_rows], positions[s:s + batch_rows], max_scatterers)
            _write_matrix(out, block)
        total += len(images)
    return total


def _pack(images: np.ndarray, positions, max_scatterers: int) -> np.ndarray:
    n, r, _ = images.shape
    values = np.empty((n, r * r + 2 * max_scatterers))
    values[:, : r * r] = rows_from_images(images)
    values[:, r * r:] = pad_rows(positions, max_scatterers).reshape(n, -1)
    return values
