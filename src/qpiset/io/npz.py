"""A compact binary container: NumPy ``.npz`` (a zip of ``.npy`` arrays, no pickles).

Arrays: ``x`` (R,), ``kernel`` (R, R) and ``images`` (N, R, R) indexed ``[iy, ix]``,
``positions`` (N, max_scatterers, 2) with the sentinel 1000 in unused slots, optionally
``strengths`` (N, max_scatterers, NaN in unused slots), and ``meta`` (a JSON string).
Zip entries carry a fixed time stamp, so equal data give equal bytes.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from ..core.dataset import SENTINEL, Dataset, pad_rows
from ..core.errors import FormatError
from ..core.grid import Grid
from .atomic import atomic_output

__all__ = ["write_npz", "read_npz"]

_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_npz(path, ds: Dataset) -> None:
    """Write ``ds`` to ``path`` (atomic, deterministic bytes)."""
    arrays = {
        "x": ds.grid.x,
        "kernel": ds.kernel,
        "images": ds.images,
        "positions": ds.positions_padded(),
        "meta": np.array(json.dumps(ds.meta, sort_keys=True)),
    }
    if ds.strengths is not None:
        arrays["strengths"] = pad_rows(ds.strengths, ds.max_scatterers, np.nan, tail=())
    with atomic_output(path, compress=False) as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, arr in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(arr), allow_pickle=False)


def read_npz(path) -> Dataset:
    """Read a qpiset ``.npz``; malformed content raises :class:`FormatError`."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise FormatError(path, None, None, "no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FormatError(path, None, None, f"not a readable .npz archive ({exc})") from None

    def need(name, ndim):
        if name not in arrays:
            raise FormatError(path, None, None, f"array '{name}' is missing")
        a = arrays[name]
        if a.ndim != ndim or not np.issubdtype(a.dtype, np.number):
            raise FormatError(path, None, None,
                              f"array '{name}' must be numeric with {ndim} dimensions, "
                              f"got {a.dtype} {a.shape}")
        return a.astype(np.float64, copy=False)

    x, kernel, images, pos = need("x", 1), need("kernel", 2), need("images", 3), need("positions", 3)
    try:
        grid = Grid.from_x(x)
    except ValueError as exc:
        raise FormatError(path, None, None, f"array 'x': {exc}") from None
    r = grid.resolution
    n = len(images)
    if kernel.shape != (r, r) or images.shape[1:] != (r, r):
        raise FormatError(path, None, None, f"kernel {kernel.shape} / images {images.shape} do not "
                                            f"match {r} x coordinates")
    if pos.shape[0] != n or pos.shape[2] != 2 or pos.shape[1] < 1:
        raise FormatError(path, None, None, f"array 'positions' has shape {pos.shape}, "
                                            f"expected ({n}, max_scatterers, 2)")
    for name, a in (("kernel", kernel), ("images", images), ("positions", pos)):
        if not np.all(np.isfinite(a)):
            raise FormatError(path, None, None, f"array '{name}' has non-finite values")
    sent = pos == SENTINEL
    if np.any(sent[..., 0] != sent[..., 1]):
        raise FormatError(path, None, None, "array 'positions' has a slot with only one "
                                            f"coordinate equal to the sentinel {SENTINEL:g}")
    positions = [p[~s[:, 0]] for p, s in zip(pos, sent)]
    strengths = None
    if "strengths" in arrays:
        s = need("strengths", 2)
        if s.shape != pos.shape[:2]:
            raise FormatError(path, None, None, f"array 'strengths' has shape {s.shape}, "
                                                f"expected {pos.shape[:2]}")
        strengths = [row[~m[:, 0]] for row, m in zip(s, sent)]
    meta = {}
    if "meta" in arrays:
        try:
            meta = json.loads(str(arrays["meta"]))
        except json.JSONDecodeError as exc:
            raise FormatError(path, None, None, f"array 'meta' is not JSON ({exc})") from None
    return Dataset(grid, kernel, images, positions, pos.shape[1], strengths=strengths, meta=meta)
