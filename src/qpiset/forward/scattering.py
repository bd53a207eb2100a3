"""Scattering theories of the simulator: how the scatterers of one image combine.

- ``"born"``: the superposition of single-scatterer kernels (the seed dataset's), rendered
  by the forward operator;
- ``"full"``: every multiple-scattering path between the scatterers, for the models that
  declare it (``"full" in kernel.scattering``; the model's
  :meth:`~qpiset.physics.Kernel.multiple_scattering`). A strength scales a site's
  t-matrix, so the image is the Born one plus terms of second order.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .operator import Forward

__all__ = ["SCATTERING", "image_renderer", "check_scattering"]

#: Scattering theories of the simulator.
SCATTERING = ("born", "full")


def check_scattering(kernel, scattering: str) -> None:
    """``ValueError`` unless ``kernel`` supports ``scattering``."""
    if scattering not in SCATTERING:
        raise ValueError(f"scattering must be one of {', '.join(SCATTERING)}, got {scattering!r}")
    if scattering not in kernel.scattering:
        from ..physics import KERNELS

        able = [name for name, cls in KERNELS.items() if scattering in cls.scattering]
        raise ValueError(f"{scattering} multiple scattering is implemented for the "
                         f"{', '.join(able)} models, not {kernel.name!r}")


def image_renderer(op: Forward, scattering: str = "born",
                   threads: int | None = None) -> Callable:
    """``f(positions, strengths, on_images=None) -> images (N, R, R)`` for the chosen
    scattering theory.

    ``on_images(k)`` is called as images are done: once for a Born batch (milliseconds per
    image), after every image for ``"full"`` (seconds per image), so a progress bar moves.
    """
    check_scattering(op.kernel, scattering)
    if scattering == "born":
        def born(positions, strengths, on_images=None):
            images = op.render_batch(positions, strengths, threads=threads)
            if on_images:
                on_images(len(images))
            return images

        return born
    full = op.kernel.multiple_scattering(op.grid)
    r = op.grid.resolution

    def one_by_one(positions, strengths, on_images=None):
        images = np.empty((len(positions), r, r))
        for i, (p, a) in enumerate(zip(positions, strengths)):
            images[i] = np.asarray(full([p], [a])).reshape(r, r)
            if on_images:
                on_images(1)
        return images

    return one_by_one
