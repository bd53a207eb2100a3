"""The base of every noise model, and the small helpers they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from ...core.checks import real

__all__ = ["NoiseModel", "number"]


def number(value: Any, what: str, *, minimum: float | None = 0.0,
           allow_inf: bool = False) -> float:
    """``value`` as a float, checked to be a real number (finite unless ``allow_inf``),
    ``>= minimum`` (default 0)."""
    return real(value, what, minimum=minimum, allow_inf=allow_inf)


def _as_stack(images) -> tuple[np.ndarray, bool]:
    """``(stack (n, ny, nx) float64, was_2d)``; never a copy we write into."""
    stack = np.asarray(images, dtype=np.float64)
    if stack.ndim not in (2, 3):
        raise ValueError(f"images must have shape (n, R, R) or (R, R), got {stack.shape}")
    if not np.all(np.isfinite(stack)):
        raise ValueError("images must be finite (found NaN or inf)")
    if stack.ndim == 2:
        return stack[np.newaxis], True
    return stack, False


def _check_rng(rng, who: str) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{who} needs a numpy.random.Generator (e.g. "
                        f"numpy.random.default_rng(seed)), got {type(rng).__name__}")


def _pitch(grid, shape: tuple[int, ...], who: str) -> float:
    """Pixel pitch (Å) of ``grid``, checked against the image shape."""
    if grid is None:
        raise ValueError(f"{who} works in Å and needs grid= (a qpiset.core.Grid) for the "
                         f"pixel pitch")
    ny, nx = shape[-2:]
    if not (grid.resolution == ny == nx):
        raise ValueError(f"{who}: grid has {grid.resolution} px per side but the images are "
                         f"{ny}x{nx}")
    return float(grid.pitch)


def _image_std(stack: np.ndarray) -> list[float]:
    """Standard deviation of each image over its pixels (as ``float(np.std(img))``)."""
    return [float(np.std(img)) for img in stack]


def _fmt(value: float) -> str:
    """Shortest text that reads back as the same float."""
    return repr(float(value))


class NoiseModel(ABC):
    """Base class: validates the input, keeps it untouched, returns a new float64 array.

    Subclasses implement ``_apply(stack, rng, grid) -> new (n, ny, nx) array``,
    :meth:`params` and :meth:`spec`; ``stochastic`` says whether they draw from ``rng``.
    For the registry (:mod:`.registry`) they declare their ``name`` (the ``"model"`` key of
    :meth:`params`), their ``--noise`` spec names with ``(fewest values, most values,
    meaning)``, and the parameter names :meth:`from_params` requires and allows.
    """

    stochastic: ClassVar[bool] = True
    name: ClassVar[str] = ""
    specs: ClassVar[dict[str, tuple[int, int, str]]] = {}
    required: ClassVar[frozenset[str]] = frozenset()
    optional: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_spec(cls, name: str, values: list[float]) -> "NoiseModel":
        """The model of a ``--noise`` item ``name:v1[:v2...]``."""
        return cls(*values)

    @classmethod
    def from_params(cls, rest: dict) -> "NoiseModel":
        """The model of recorded parameters (``params()`` without its ``"model"`` key)."""
        if not cls.required <= set(rest) <= cls.required | cls.optional:
            raise ValueError(f"{cls.name} parameters need {sorted(cls.required)} (optional "
                             f"{sorted(cls.optional)}), got {sorted(rest)}")
        return cls(**rest)

    def __call__(self, images, rng: np.random.Generator | None = None, grid=None) -> np.ndarray:
        """Apply the model to ``images`` (``(n, R, R)`` or ``(R, R)``); return a new array."""
        stack, was_2d = _as_stack(images)
        if self.stochastic:
            _check_rng(rng, type(self).__name__)
        out = self._apply(stack, rng, grid)
        return out[0] if was_2d else out

    @abstractmethod
    def _apply(self, stack: np.ndarray, rng, grid) -> np.ndarray:
        """The model on a stack ``(n, ny, nx)``: a new array."""

    @abstractmethod
    def params(self) -> dict:
        """JSON-serialisable record with a ``"model"`` key (see :func:`noise_from_params`)."""

    @abstractmethod
    def spec(self) -> str:
        """The :func:`parse_noise` text for this model."""
