"""Kernel models: the LDOS pattern of one scatterer, from physics.

``make_kernel(name, **params)`` builds a model by the name ``qpiset generate --kernel``
uses; every model has ``evaluate(x, y)`` at continuous coordinates in Å and
``params()`` to record and recreate it.
"""

from __future__ import annotations

from typing import Any

from .base import Kernel, RadialTable, gaussian_blur_radial
from .constants import HBAR2_OVER_2ME
from .friedel import FriedelKernel, phase_shift_from_potential, wavevector
from .materials import MATERIALS, SurfaceState, material

__all__ = [
    "Kernel", "RadialTable", "FriedelKernel", "KERNELS", "MATERIALS", "SurfaceState",
    "HBAR2_OVER_2ME", "make_kernel", "material", "wavevector", "phase_shift_from_potential",
    "gaussian_blur_radial",
]

#: Kernel models by name.
KERNELS: dict[str, type[Kernel]] = {FriedelKernel.name: FriedelKernel}


def make_kernel(model: str = "friedel", **params: Any) -> Kernel:
    """Build a kernel model by name; ``make_kernel(**k.params())`` recreates ``k``.

    Examples
    --------
    >>> make_kernel("friedel", material="Ag(111)", energy=0.0).material
    'Ag(111)'
    """
    try:
        cls = KERNELS[model]
    except KeyError:
        raise ValueError(f"unknown kernel model {model!r}; models: {', '.join(KERNELS)}") from None
    return cls(**params)
