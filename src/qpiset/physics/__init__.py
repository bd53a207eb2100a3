"""Kernel models: the LDOS pattern of one scatterer, from physics.

``make_kernel(name, **params)`` builds a model by the name ``qpiset generate --kernel``
uses (:data:`KERNELS`); every model has ``evaluate(x, y)`` at continuous coordinates in Å
and ``params()`` to record and recreate it. Isotropic models are
:class:`RadialKernel`\\ s (``radial(r)``); what else a model can do is declared on its
class (:class:`Kernel`).
"""

from .base import (ISOTROPIC, GridTable, Kernel, RadialKernel, RadialTable, gaussian_blur_radial,
                   measure_rotational_symmetry)
from .constants import HBAR2_OVER_2ME
from .friedel import FriedelKernel, phase_shift_from_potential, wavevector
from .image import ImageKernel
from .lattice import LatticeKernel
from .materials import MATERIALS, SurfaceState, material
from .registry import KERNELS, describe_kernels, kernel_from_record, make_kernel, register_kernel
from .sampled import SampledKernel, SampledKernel2D, SplineKernel
from .superconductor import BdGKernel, octet_vectors
from .tight_binding import TightBinding

__all__ = [
    "Kernel", "RadialKernel", "RadialTable", "GridTable", "FriedelKernel", "ImageKernel",
    "LatticeKernel", "TightBinding", "BdGKernel", "SampledKernel", "SampledKernel2D", "SplineKernel",
    "octet_vectors", "KERNELS",
    "MATERIALS", "SurfaceState", "HBAR2_OVER_2ME", "make_kernel", "kernel_from_record",
    "register_kernel", "material", "wavevector",
    "phase_shift_from_potential", "gaussian_blur_radial", "describe_kernels", "ISOTROPIC",
    "measure_rotational_symmetry",
]
