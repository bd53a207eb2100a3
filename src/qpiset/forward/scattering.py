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
    """``f(positions, strengths) -> images (N, R, R)`` for the chosen scattering theory."""
    check_scattering(op.kernel, scattering)
    if scattering == "born":
        return lambda pos, amp: op.render_batch(pos, amp, threads=threads)
    return op.kernel.multiple_scattering(op.grid)
