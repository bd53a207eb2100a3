"""Kernel models: the LDOS pattern of one scatterer, from physics.

``make_kernel(name, **params)`` builds a model by the name ``qpiset generate --kernel``
uses; every model has ``evaluate(x, y)`` at continuous coordinates in Å and
``params()`` to record and recreate it.
"""

from __future__ import annotations

from typing import Any

from .base import GridTable, Kernel, RadialTable, gaussian_blur_radial
from .constants import HBAR2_OVER_2ME
from .friedel import FriedelKernel, phase_shift_from_potential, wavevector
from .image import ImageKernel
from .lattice import LatticeKernel, TightBinding
from .superconductor import BdGKernel, octet_vectors
from .materials import MATERIALS, SurfaceState, material

__all__ = [
    "Kernel", "RadialTable", "GridTable", "FriedelKernel", "ImageKernel", "LatticeKernel",
    "TightBinding", "BdGKernel", "octet_vectors", "KERNELS", "MATERIALS", "SurfaceState",
    "HBAR2_OVER_2ME", "make_kernel", "material", "wavevector", "phase_shift_from_potential",
    "gaussian_blur_radial", "describe_kernels",
]

#: Kernel models by name.
KERNELS: dict[str, type[Kernel]] = {FriedelKernel.name: FriedelKernel,
                                     LatticeKernel.name: LatticeKernel,
                                     BdGKernel.name: BdGKernel,
                                     ImageKernel.name: ImageKernel}


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


def describe_kernels() -> dict[str, Any]:
    """The models (summary line, constructor parameters with defaults) and the material
    presets, for ``qpiset kernels``.

    Examples
    --------
    >>> info = describe_kernels()
    >>> info["models"]["friedel"]["parameters"]["material"]
    'Cu(111)'
    """
    import inspect

    models = {}
    for name, cls in KERNELS.items():
        sig = inspect.signature(cls.__init__)
        params = {p.name: (None if p.default is inspect.Parameter.empty else p.default)
                  for p in list(sig.parameters.values())[1:]
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        summary = (inspect.getdoc(cls) or "").splitlines()[0] if inspect.getdoc(cls) else ""
        models[name] = {"summary": summary, "parameters": params}
    materials = {m.name: {"mass": m.mass, "band_bottom": m.band_bottom}
                 for m in MATERIALS.values()}
    return {"models": models, "materials": materials}
