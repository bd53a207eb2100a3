"""What every inverse method honours, classical or learned.

- A :class:`Detector` finds scatterers: ``detect(images, op) -> Detections`` for a batch
  of images ``(n, R, R)`` and the forward operator ``op`` of their kernel and grid
  (:class:`~qpiset.forward.Forward`; ``op.kernel_row`` is the file's kernel row). It
  must accept an empty batch (the benchmark warms a detector up with one, so that
  setting up for ``op`` is not timed as the first image).
- A :class:`KernelEstimator` finds the kernel: ``estimate(images, grid, positions=None,
  on_step=None) -> Kernel``; ``kernel.sample(grid)`` is then the estimated kernel row.
  ``steps(n_images)`` says how many times ``estimate`` calls ``on_step(1)`` (a progress
  bar's total).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = ["Detections", "Detector", "KernelEstimator", "check_operator"]


def check_operator(op):
    """``op`` if it is a forward operator, else a ``TypeError`` saying how to make one."""
    from ..forward import Forward

    if not isinstance(op, Forward):
        raise TypeError(f"op must be a forward operator (qpiset.forward.Forward(kernel, grid), "
                        f"or qpiset.inverse.file_operator(kernel_row, grid) for a file), got "
                        f"{type(op).__name__}")
    return op


@dataclass
class Detections:
    """What a detector found in a batch: one entry per image.

    Attributes
    ----------
    positions : list of (k_i, 2) arrays
        Scatterer ``(x, y)`` in Å.
    strengths : list of (k_i,) arrays, optional
        Their strengths, when the method estimates them.
    confidence : list of (k_i,) arrays, optional
        Their confidences in [0, 1], when the method gives them.

    Examples
    --------
    >>> d = Detections([np.zeros((2, 2)), np.ones((1, 2))])
    >>> len(d), d.counts.tolist()
    (2, [2, 1])
    >>> len(Detections.concat([d, d]))
    4
    """

    positions: list[np.ndarray]
    strengths: list[np.ndarray] | None = None
    confidence: list[np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.positions = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in self.positions]
        for name in ("strengths", "confidence"):
            value = getattr(self, name)
            if value is not None:
                if len(value) != len(self.positions):
                    raise ValueError(f"{len(value)} {name} lists for {len(self.positions)} images")
                setattr(self, name, [np.asarray(v, dtype=np.float64).reshape(-1) for v in value])

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def counts(self) -> np.ndarray:
        """Scatterers found in each image."""
        return np.array([len(p) for p in self.positions], dtype=np.int64)

    @classmethod
    def concat(cls, parts: Sequence["Detections"]) -> "Detections":
        """The detections of consecutive batches as one."""
        parts = list(parts)

        def joined(name):
            lists = [getattr(p, name) for p in parts]
            return None if not lists or any(v is None for v in lists) else sum(lists, [])

        return cls(sum((p.positions for p in parts), []), joined("strengths"),
                   joined("confidence"))


@runtime_checkable
class Detector(Protocol):
    """Finds scatterers in a batch of images (module docstring)."""

    def detect(self, images: np.ndarray, op) -> Detections:
        """Detections in ``images`` ``(n, R, R)`` for the forward operator ``op``."""


@runtime_checkable
class KernelEstimator(Protocol):
    """Estimates the single-scatterer kernel from images (module docstring)."""

    def steps(self, n_images: int) -> int:
        """How many steps :meth:`estimate` reports for ``n_images`` images."""

    def estimate(self, images: np.ndarray, grid, positions=None, on_step=None):
        """A kernel model of ``images`` ``(n, R, R)`` on ``grid`` (``positions``: the
        scatterers, when known and the method uses them); ``on_step(k)`` after each step."""
