"""Scan-line artefacts: offsets and lateral jitter per line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import ndimage

from .base import NoiseModel, _fmt, _image_std, _pitch, number

__all__ = ["ScanLines"]


@dataclass(frozen=True)
class ScanLines(NoiseModel):
    """Scan-line artefacts: a random offset per line and optional random x-shift per line.

    For each image and each scan line (row) ``iy``::

        out[iy, x] = img[iy, x - s_iy] + d_iy
        d_iy ~ N(0, (offset * std(img))^2)     (offset: dimensionless fraction of the std)
        s_iy ~ N(0, jitter^2)                  (jitter: Å; the line moves by +s_iy in x)

    The offsets model the feedback/z-drift steps between lines (a constant added along a
    line); the shifts model lateral line jitter (tip/piezo noise, thermal drift). Shifts are
    applied by cubic-spline interpolation along ``x`` (``scipy.ndimage.map_coordinates``,
    order 3); pixels shifted in from beyond the image edge take the edge value (mode
    ``"nearest"``). The shift is applied first, then the offset. ``jitter > 0`` needs
    ``grid`` for the pitch; with ``jitter == 0`` the image is not interpolated at all.

    Draws ``rng.standard_normal((n, R))`` for the offsets, then ``rng.standard_normal((n, R))``
    for the shifts (always both, whatever the parameters).

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> clean = rng.normal(size=(1, 8, 8))
    >>> step = ScanLines(0.3)(clean, rng) - clean
    >>> bool(np.allclose(step, step[:, :, :1]))    # constant along each line
    True
    """

    name: ClassVar[str] = "lines"
    specs: ClassVar[dict] = {"lines": (1, 2, "offset[:jitter Å]")}
    required: ClassVar[frozenset] = frozenset({"offset"})
    optional: ClassVar[frozenset] = frozenset({"jitter"})


    offset: float
    jitter: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "offset", number(self.offset, "scan-line offset (fraction "
                                                                "of the image std)"))
        object.__setattr__(self, "jitter", number(self.jitter, "scan-line jitter (Å)"))

    def _apply(self, stack, rng, grid):
        n, ny, nx = stack.shape
        z_offset = rng.standard_normal((n, ny))
        z_shift = rng.standard_normal((n, ny))
        shifted = stack
        if self.jitter > 0 and stack.size:
            pixels = self.jitter / _pitch(grid, stack.shape, "ScanLines jitter") * z_shift
            rows = stack.reshape(n * ny, nx)
            row_index = np.broadcast_to(np.arange(n * ny, dtype=float)[:, None], rows.shape)
            source_x = np.arange(nx, dtype=float)[None, :] - pixels.reshape(-1, 1)
            shifted = ndimage.map_coordinates(rows, [row_index, source_x], order=3,
                                              mode="nearest").reshape(stack.shape)
        scale = np.array([self.offset * s for s in _image_std(stack)])
        return shifted + (scale[:, None] * z_offset)[:, :, None]

    def params(self) -> dict:
        return {"model": "lines", "offset": self.offset, "jitter": self.jitter}

    def spec(self) -> str:
        return f"lines:{_fmt(self.offset)}:{_fmt(self.jitter)}"
