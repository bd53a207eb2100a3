"""Detector names across the stages: the classical ones (:mod:`qpiset.inverse`) and the
learned ones (:mod:`qpiset.ml`, imported only when asked for, so the core runs without
torch). ``qpiset detect``, ``qpiset bench`` and :func:`qpiset.bench.run_benchmark` resolve
names here.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .grid import Grid
from .physics import Kernel

__all__ = ["CLASSICAL", "LEARNED", "DETECTOR_NAMES", "make_method", "learned_available"]

CLASSICAL = ("matched", "sparse")
#: Learned detectors: name -> what they are (they need the ``ml`` extra).
LEARNED = {"unet": "kernel-conditioned U-Net (qpiset.ml.detector), shipped weights",
           "hybrid": "the U-Net's scatterers refined and model-selected by the physics fit "
                     "of 'sparse' (its stages 3-4)"}
DETECTOR_NAMES = CLASSICAL + tuple(LEARNED)


def learned_available() -> bool:
    """Whether torch (the ``ml`` extra) can be imported."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def make_method(name: str, kernel: Kernel, grid: Grid, kernel_image: np.ndarray,
                weights=None) -> Callable[[np.ndarray], np.ndarray]:
    """A detector ``f(image) -> positions (k, 2) Å``.

    Classical methods use the continuous ``kernel`` model; learned ones read the kernel as
    an image on the grid (``kernel_image``, the file's kernel row) and ``weights``
    (default: the shipped ones).
    """
    if name in CLASSICAL:
        from .inverse import make_detector

        return make_detector(name, kernel, grid)
    if name in LEARNED:
        if not learned_available():
            raise ValueError(f"method {name!r} needs torch: pip install 'qpiset[ml]'")
        from .ml.detector import make_hybrid_detector, make_unet_detector

        if name == "hybrid":
            return make_hybrid_detector(kernel, kernel_image, grid, weights=weights)
        return make_unet_detector(kernel_image, grid, weights=weights)
    raise ValueError(f"unknown method {name!r}; methods: {', '.join(DETECTOR_NAMES)}")
