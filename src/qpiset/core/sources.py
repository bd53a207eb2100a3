"""Where a kernel image can be read from, besides a ``.npy`` array: readers that the io
layer adds (every dataset file: its kernel row) and the physics layer's
:class:`~qpiset.physics.ImageKernel` consults. It lives here, below both, so neither layer
imports the other's way."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["KERNEL_IMAGE_SOURCES", "register_kernel_image_source"]

#: ``(accepts(path) -> bool, read(path) -> (image [iy, ix], fov Å))``, tried in order.
KERNEL_IMAGE_SOURCES: list[tuple[Callable[[Path], bool],
                                 Callable[[Path], tuple[np.ndarray, float]]]] = []


def register_kernel_image_source(accepts: Callable[[Path], bool],
                                 read: Callable[[Path], tuple[np.ndarray, float]]) -> None:
    """Let kernel images be read from the files ``accepts`` takes."""
    KERNEL_IMAGE_SOURCES.append((accepts, read))
