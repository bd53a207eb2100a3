"""Small input checks used at the edges of the public functions: one clear ``ValueError``
(or ``TypeError``) naming what is wrong, before any work is done."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["as_image_stack", "as_positions", "real", "whole"]


def as_image_stack(images, resolution: int | None = None,
                   what: str = "images") -> tuple[np.ndarray, bool]:
    """``(stack (n, R, R) float64, was_single)``: one image ``(R, R)`` or a batch
    ``(n, R, R)``, finite, square, and ``resolution`` pixels per side when given.

    Examples
    --------
    >>> stack, single = as_image_stack(np.zeros((4, 4)))
    >>> stack.shape, single
    ((1, 4, 4), True)
    >>> as_image_stack(np.zeros((2, 4, 3)))
    Traceback (most recent call last):
    ...
    ValueError: images must be square, (R, R) or (n, R, R); got shape (2, 4, 3)
    """
    stack = np.asarray(images, dtype=np.float64)
    if stack.ndim not in (2, 3) or stack.shape[-1] != stack.shape[-2]:
        raise ValueError(f"{what} must be square, (R, R) or (n, R, R); got shape {stack.shape}")
    if resolution is not None and stack.shape[-1] != resolution:
        raise ValueError(f"{what} have {stack.shape[-1]} px per side, the grid {resolution}")
    if not np.all(np.isfinite(stack)):
        raise ValueError(f"{what} must be finite (found NaN or inf)")
    single = stack.ndim == 2
    return (stack[None] if single else stack), single


def as_positions(positions, what: str = "positions") -> np.ndarray:
    """Scatterer positions as a finite float array ``(k, 2)`` of ``(x, y)`` in Å.

    Examples
    --------
    >>> as_positions([[1, 2], [3, 4]]).shape
    (2, 2)
    >>> as_positions([]).shape
    (0, 2)
    """
    arr = np.asarray(positions, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{what} must have shape (k, 2) of (x, y) in Å, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be finite")
    return arr


def real(value: Any, what: str, *, minimum: float | None = None, above: float | None = None,
         allow_inf: bool = False) -> float:
    """``value`` as a float: a real number (not a bool), finite unless ``allow_inf``,
    ``>= minimum`` and ``> above`` when given.

    Examples
    --------
    >>> real(2, "t")
    2.0
    >>> real(True, "t")
    Traceback (most recent call last):
    ...
    ValueError: t must be a number, got True
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{what} must be finite, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} must be >= {minimum:g}, got {value!r}")
    if above is not None and not value > above:
        raise ValueError(f"{what} must be > {above:g}, got {value!r}")
    return value


def whole(value: Any, what: str, *, minimum: int | None = None) -> int:
    """``value`` as an int: a whole number (not a bool), ``>= minimum`` when given.

    Examples
    --------
    >>> whole(3.0, "n")
    3
    """
    try:
        ok = not isinstance(value, (bool, np.bool_)) and int(value) == value
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value}")
    return value
