"""Which pixel order a row-format file uses, decided from the data (``order="auto"``), and
whether the order a file is read with fits it (:func:`order_mismatch`).

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

__all__ = ["detect_order", "resolve_order", "order_scores", "clearly_better", "order_mismatch",
           "auto_order", "OrderWarning", "ORDER_MARGIN", "ORDER_FLOOR", "ORDER_IMAGES"]

#: How much higher the winning order's mean correlation must be ...
ORDER_MARGIN = 0.05
#: ... and the least it must reach, for one order to fit "clearly better".
ORDER_FLOOR = 0.2
#: Images with scatterers that the scores use (the first ones).
ORDER_IMAGES = 16


class OrderWarning(UserWarning):
    """The pixel order: a file that fits the other order clearly better than the one it is
    read with, or the order ``order="auto"`` chose."""


def resolve_order(order: str) -> str:
    """``"F"``, ``"C"`` or ``"AUTO"`` from what a caller gives (any case)."""
    order = order.upper() if isinstance(order, str) else order
    if order not in ("F", "C", "AUTO"):
        raise ValueError(f"order must be 'F', 'C' or 'auto', got {order!r}")
    return order


def order_scores(kernel_pixels: np.ndarray, pixels: np.ndarray, coords: np.ndarray,
                 x: np.ndarray, limit: int = ORDER_IMAGES) -> dict[str, float] | None:
    """Mean correlation of the first ``limit`` images with scatterers with their
    re-synthesis from the kernel row at the file's positions, under each pixel order:
    ``{"F": ..., "C": ...}``; ``None`` when no image has scatterers.

    ``pixels (n, R²)`` and ``coords (n, 2M)`` are image rows in file order.
    """
    from ..forward import Forward  # numba and the kernel models load only when needed
    from ..physics import ImageKernel

    r = x.size
    grid = Grid.from_x(x)
    usable = [i for i in range(len(pixels)) if np.any(coords[i] != SENTINEL)][:limit]
    if not usable:
        return None
    scores = {}
    for order in ("F", "C"):
        row = images_from_rows(kernel_pixels[None], r, order)[0]
        images = images_from_rows(pixels[usable], r, order)
        positions = []
        for c in coords[usable]:
            xy = c.reshape(-1, 2)
            positions.append(xy[xy[:, 0] != SENTINEL])
        with warnings.catch_warnings():  # zero beyond the row's square is the model here
            warnings.simplefilter("ignore")
            op = Forward(ImageKernel(image=row, fov=grid.fov, taper=0.0), grid)
            models = op.render_batch(positions)
        total = 0.0
        with np.errstate(all="ignore"):
            for img, model in zip(images, models):
                a, b = img - img.mean(), model - model.mean()
                denom = np.sqrt((a * a).sum() * (b * b).sum())
                value = float((a * b).sum() / denom) if denom > 0 else 0.0
                total += value if np.isfinite(value) else 0.0
        scores[order] = total / len(usable)
    return scores


def clearly_better(scores: dict[str, float] | None) -> str | None:
    """The order whose score is higher by :data:`ORDER_MARGIN` and at least
    :data:`ORDER_FLOOR`, or ``None`` when neither fits clearly better."""
    if not scores:
        return None
    best, other = ("F", "C") if scores["F"] >= scores["C"] else ("C", "F")
    if scores[best] - scores[other] < ORDER_MARGIN or scores[best] < ORDER_FLOOR:
        return None
    return best


def _scores_text(scores: dict[str, float]) -> str:
    return f"correlation F {scores['F']:.3f}, C {scores['C']:.3f}"


def _decide(scores: dict[str, float] | None, path: str) -> str:
    if scores is None:
        raise FormatError(path, None, None, "cannot decide the pixel order: no image has "
                                            "scatterers; pass order='F' or order='C'")
    best = clearly_better(scores)
    if best is None:
        raise FormatError(path, None, None,
                          f"cannot decide the pixel order ({_scores_text(scores)}); "
                          "pass order='F' or order='C'")
    return best


def _scores(kernel_pixels, pixels, coords, x, path: str) -> dict[str, float] | None:
    try:
        return order_scores(kernel_pixels, pixels, coords, x)
    except (ValueError, ArithmeticError) as exc:
        raise FormatError(path, None, None, f"cannot decide the pixel order ({exc}); "
                                            "pass order='F' or order='C'") from None


def detect_order(kernel_pixels: np.ndarray, pixels: np.ndarray, coords: np.ndarray,
                 x: np.ndarray, path: str = "<data>") -> str:
    """Decide ``"F"`` or ``"C"`` pixel order from how well each explains the images.

    Under each hypothesis, re-synthesise up to 16 images with scatterers from the kernel
    row at the file's positions and correlate them with the images (:func:`order_scores`);
    the order with the clearly higher mean correlation (by 0.05, and at least 0.2) wins.
    """
    return _decide(_scores(kernel_pixels, pixels, coords, x, path), path)


def auto_order(kernel_pixels, pixels, coords, x, path: str) -> str:
    """:func:`detect_order`, and a one-line :class:`OrderWarning` saying what it chose
    (``order="auto"`` reports its choice; it is also ``ds.meta["order"]``)."""
    scores = _scores(kernel_pixels, pixels, coords, x, path)
    best = _decide(scores, path)
    warnings.warn(OrderWarning(f"{path}: pixel order auto: {best} ({_scores_text(scores)} "
                               "between the images and the kernel row at their positions)"),
                  stacklevel=3)
    return best


def order_mismatch(kernel_pixels: np.ndarray, pixels: np.ndarray, coords: np.ndarray,
                   x: np.ndarray, order: str) -> str | None:
    """What is wrong when the images fit the other pixel order clearly better than
    ``order`` (by the thresholds of :func:`detect_order`): one line ending with the fix,
    for a message after the file's name; else ``None`` (they fit ``order``, or the images
    cannot tell: no scatterers, or no clear difference)."""
    try:
        scores = order_scores(kernel_pixels, pixels, coords, x)
    except (ValueError, ArithmeticError):  # a row the forward operator refuses: no verdict
        return None
    best = clearly_better(scores)
    if best is None or best == order:
        return None
    return (f"the images fit pixel order {best} clearly better than {order} "
            f"({_scores_text(scores)} between the first images and the kernel row at their "
            f"positions); read it with --order {best} (order=\"{best}\")")
