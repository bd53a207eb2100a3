"""Which pixel order a row-format file uses, decided from the data (``order="auto"``).

Under each hypothesis the kernel row becomes a kernel model (:class:`~qpiset.physics.ImageKernel`,
zero beyond its ±fov/2 square), the forward operator re-synthesises the images at the
file's positions, and the order whose images correlate clearly better with the file's
wins.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..core.dataset import SENTINEL
from ..core.errors import FormatError
from ..core.grid import Grid
from .rows import images_from_rows

__all__ = ["detect_order", "resolve_order"]


def resolve_order(order: str) -> str:
    """``"F"``, ``"C"`` or ``"AUTO"`` from what a caller gives (any case)."""
    order = order.upper() if isinstance(order, str) else order
    if order not in ("F", "C", "AUTO"):
        raise ValueError(f"order must be 'F', 'C' or 'auto', got {order!r}")
    return order


def detect_order(kernel_pixels: np.ndarray, pixels: np.ndarray, coords: np.ndarray,
                 x: np.ndarray, path: str = "<data>") -> str:
    """Decide ``"F"`` or ``"C"`` pixel order from how well each explains the images.

    Under each hypothesis, re-synthesise up to 16 images with scatterers from the kernel
    row at the file's positions and correlate them with the images; the order with the
    clearly higher mean correlation (by 0.05, and at least 0.2) wins.
    """
    from ..forward import Forward  # numba and the kernel models load only when needed
    from ..physics import ImageKernel

    r = x.size
    grid = Grid.from_x(x)
    scores = {}
    usable = [i for i in range(len(pixels)) if np.any(coords[i] != SENTINEL)][:16]
    if not usable:
        raise FormatError(path, None, None, "cannot decide the pixel order: no image has "
                                            "scatterers; pass order='F' or order='C'")
    for order in ("F", "C"):
        row = images_from_rows(kernel_pixels[None], r, order)[0]
        op = Forward(ImageKernel(image=row, fov=grid.fov, taper=0.0), grid)
        images = images_from_rows(pixels[usable], r, order)
        positions = []
        for c in coords[usable]:
            xy = c.reshape(-1, 2)
            positions.append(xy[xy[:, 0] != SENTINEL])
        with warnings.catch_warnings():  # zero beyond the row's square is the model here
            warnings.simplefilter("ignore")
            models = op.render_batch(positions)
        total = 0.0
        for img, model in zip(images, models):
            a, b = img - img.mean(), model - model.mean()
            denom = np.sqrt((a * a).sum() * (b * b).sum())
            total += float((a * b).sum() / denom) if denom > 0 else 0.0
        scores[order] = total / len(usable)
    best, other = ("F", "C") if scores["F"] >= scores["C"] else ("C", "F")
    if scores[best] - scores[other] < 0.05 or scores[best] < 0.2:
        raise FormatError(path, None, None,
                          f"cannot decide the pixel order (correlation F {scores['F']:.3f}, "
                          f"C {scores['C']:.3f}); pass order='F' or order='C'")
    return best
